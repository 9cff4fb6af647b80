"""The progressive rollout controller (docs/rollout.md): one transaction per change, on the store given.

The stage IS the experiment's coverage (API.md §2). Every change goes through the one write path
(service/transitions.py ``write_plan_step``), which writes in ONE transaction the plan (version + 1,
``lastChange``), its ``rolloutEvents`` document and, when the stage moves, the experiment's coverage with
its own version and event. The plan's state machine is domain/rollout_plan.py; the sweep's decision table
and the stage requirements are domain/rollout.py.

Refusals (progressing while blocked, acting on a finished rollout) raise FAILED_PRECONDITION before
anything is written. The evidence (exposure counts, SRM, guardrails, open alerts) is read *before* the
transaction — aggregation queries and metric totals are not state we write — and the transaction checks
that the plan it was judged on is still the current one (else ABORTED: safe to retry).

Time: manual actions use the wall clock; the sweep passes the tick's time (API.md §6) down to every rule,
so minimum-time-at-stage is judged on the tick's clock and a test drives days of schedule in seconds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from offerlab.domain import rollout as rules
from offerlab.domain.actors import Actor, Caller, actor_of
from offerlab.domain.clock import parse_rfc3339, utcnow
from offerlab.domain.errors import Aborted, FailedPrecondition, NotFound
from offerlab.domain.fanout import tick_stamp
from offerlab.domain.lifecycle import TERMINAL, Command, check_actor
from offerlab.domain.rollout_plan import PlanCommand, plan_step
from offerlab.domain.types import ExperimentStatus, RolloutStatus
from offerlab.service import aggregation
from offerlab.service.aggregation import Streamed
from offerlab.service.guardrails import check_experiment, guardrail_metrics, srm_p
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import transition_experiment_and_plan, write_plan_step
from offerlab.store.documents import OfferExperiment, RolloutPlan, RolloutStage

log = logging.getLogger("offerlab.rollouts")

SWEEP_ACTOR = "rollout_sweep"
STEP_SCOPE = "rollout-step"          # apply_once scope: one effect per (experiment, tick)
CHECK_TOPIC = "rollout-checks"       # the sweep's fan-out topic: one message per ACTIVE plan

# What the sweep's decisions do to the plan.
DECISION_COMMANDS = {
    rules.Decision.PROGRESS: PlanCommand.PROGRESS,
    rules.Decision.PAUSE: PlanCommand.PAUSE,
    rules.Decision.ROLLBACK: PlanCommand.ROLLBACK,
}


# --- reading the plan and the evidence ------------------------------------------------------------------


def _plan(uow: UnitOfWork, experiment_id: str) -> RolloutPlan:
    plan = uow.plans.find(experiment_id)
    if plan is None:
        raise NotFound("The experiment has no rollout plan.")
    return plan


def requirements_of(stage: RolloutStage) -> rules.StageRequirements:
    return rules.StageRequirements(
        min_hours_at_stage=stage.min_hours_at_stage, min_exposures_per_arm=stage.min_exposures_per_arm,
        require_no_srm=stage.require_no_srm, require_no_guardrail_violation=stage.require_no_guardrail_violation,
        require_no_open_issues=stage.require_no_open_issues,
    )


def guardrail_breaches(store: Store, experiment: OfferExperiment, streamed: Streamed | None = None
                       ) -> tuple[rules.GuardrailBreach, ...]:
    """The guardrail evaluation of check_guardrails/monitor_experiment (service/guardrails.py), so the
    rollout gate and they never disagree. It needs enough treatment users before it can call a breach;
    until then the guardrail counts as met."""
    checks = check_experiment(store, experiment, streamed)
    return tuple(rules.GuardrailBreach(c.kpi_name, c.metric, c.observed if c.observed is not None else float("nan"),
                                       c.threshold, c.direction) for c in checks if c.breached)


def gather_facts(store: Store, plan: RolloutPlan, experiment: OfferExperiment, now: datetime) -> rules.StageFacts:
    """The evidence for the plan's current stage at ``now`` (non-transactional reads): the experiment's
    streamed shards (exposures and guardrails, one bounded read) and its open alerts (at most 20)."""
    index = plan.current_stage_index or 0
    stage = plan.stages[index]
    data = aggregation.streamed(store, experiment)
    counts = dict(data.stats.exposures)
    srm = srm_p(counts, experiment.treatment_percentage) if stage.require_no_srm else None
    breaches: tuple[rules.GuardrailBreach, ...] = ()
    if stage.require_no_guardrail_violation and guardrail_metrics(experiment):
        breaches = guardrail_breaches(store, experiment, data)
    issues: tuple[str, ...] = ()
    if stage.require_no_open_issues:
        issues = tuple(_describe_alert(a) for a in store.alerts.open_for(experiment.experiment_id))
    entered = plan.stage_entered_at or now
    return rules.StageFacts(
        hours_at_stage=rules.hours_between(entered, now), exposures=counts, srm_p_value=srm,
        guardrail_breaches=breaches, open_issues=issues, stage_percentage=stage.percentage,
        next_percentage=plan.stages[index + 1].percentage if index + 1 < len(plan.stages) else None,
    )


def _describe_alert(alert: dict[str, Any]) -> str:
    kind = str(alert.get("type") or "alert").replace("_", " ").lower()
    when = alert.get("detectedAt")
    return f"{kind}" + (f" detected at {when}" if isinstance(when, str) else "")


@dataclass(frozen=True)
class Judgement:
    plan: RolloutPlan
    experiment: OfferExperiment
    facts: rules.StageFacts
    readiness: rules.Readiness


def judge(store: Store, experiment_id: str, now: datetime) -> Judgement:
    plan = _plan(store, experiment_id)
    experiment = store.experiments.get(experiment_id)
    if plan.current_stage_index is None:
        raise FailedPrecondition(f"The rollout has not started (plan {plan.status.value}); starting the experiment "
                                 "puts it at its first stage.")
    facts = gather_facts(store, plan, experiment, now)
    readiness = rules.evaluate(requirements_of(plan.stages[plan.current_stage_index]), facts)
    return Judgement(plan, experiment, facts, readiness)


def _evidence(judgement: Judgement) -> dict[str, Any]:
    facts = judgement.facts
    return {**judgement.readiness.as_dict(), "hoursAtStage": round(facts.hours_at_stage, 3),
            "exposures": dict(facts.exposures), "srmPValue": facts.srm_p_value}


def _view(plan: RolloutPlan, readiness: rules.Readiness | None = None) -> dict[str, Any]:
    """The plan as JSON plus ``stage``: the coverage it implies (0 once aborted, None before the start)."""
    index = plan.current_stage_index
    if plan.status == RolloutStatus.ABORTED:
        stage = 0.0
    else:
        stage = plan.stages[index].percentage if index is not None else None
    out = {**plan.model_dump(mode="json", by_alias=True), "stage": stage}
    if readiness is not None:
        out["readiness"] = readiness.as_dict()
    return out


# --- callables ------------------------------------------------------------------------------------------


def check_stage_progress(store: Store, caller: Caller, experiment_id: str) -> dict[str, Any]:
    """``{ready, met[], blocking[]}`` for the current stage, now; read-only."""
    now = utcnow()
    judgement = judge(store, experiment_id, now)
    plan = judgement.plan
    readiness = judgement.readiness
    index = plan.current_stage_index
    return {
        "experimentId": experiment_id, "ready": readiness.ready and plan.status == RolloutStatus.ACTIVE,
        "met": readiness.met,
        "blocking": readiness.blocking + ([f"The rollout is {plan.status.value}, not ACTIVE."]
                                          if plan.status != RolloutStatus.ACTIVE else []),
        "checks": readiness.as_dict()["checks"], "status": plan.status.value, "stageIndex": index,
        "stage": plan.stages[index].percentage, "nextStage": judgement.facts.next_percentage,
        "exposures": dict(judgement.facts.exposures), "srmPValue": judgement.facts.srm_p_value,
        "hoursAtStage": round(judgement.facts.hours_at_stage, 3), "evaluatedAt": now,
    }


def _author_check(actor: Actor, experiment: OfferExperiment) -> None:
    # "rollout plans of their experiments" (API.md §1): the author, or an admin — PAUSE carries that rule.
    check_actor(Command.PAUSE, actor, author=experiment.author, approvers=experiment.approvers)


def _operate(store: Store, caller: Caller, experiment_id: str, command: PlanCommand, *, reason: str | None = None,
             judgement: Judgement | None = None) -> dict[str, Any]:
    """A person's rollout command: one transaction, the plan's table deciding (domain/rollout_plan.py).
    With ``judgement`` (PROGRESS) the plan must still be the version that was judged (else ABORTED)."""
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> RolloutPlan:
        plan = _plan(uow, experiment_id)
        experiment = uow.experiments.get(experiment_id)
        if judgement is not None and plan.version != judgement.plan.version:
            raise Aborted("The rollout changed while it was being checked; please retry.")
        _author_check(actor, experiment)
        step = plan_step(command, plan.status, plan.current_stage_index, len(plan.stages),
                         experiment_status=experiment.status,
                         readiness=judgement.readiness if judgement is not None else None)
        return write_plan_step(uow, plan, step, experiment, actor.name, utcnow(), reason=reason,
                               evidence=_evidence(judgement) if judgement is not None else None)

    return _view(store.transaction(body))


def progress_rollout(store: Store, caller: Caller, experiment_id: str) -> dict[str, Any]:
    """Raise coverage to the next stage, only when every requirement of the current one is met."""
    _author_check(actor_of(caller), store.experiments.get(experiment_id))  # before the evidence is read
    return _operate(store, caller, experiment_id, PlanCommand.PROGRESS, judgement=judge(store, experiment_id, utcnow()))


def start_rollout(store: Store, caller: Caller, experiment_id: str) -> dict[str, Any]:
    """Resume a PAUSED rollout at its current stage (starting the experiment starts the rollout itself)."""
    return _operate(store, caller, experiment_id, PlanCommand.RESUME)


def pause_rollout(store: Store, caller: Caller, experiment_id: str, reason: str) -> dict[str, Any]:
    """Hold the rollout at its current stage (users keep their arms; the sweep no longer progresses it)."""
    return _operate(store, caller, experiment_id, PlanCommand.PAUSE, reason=reason)


def rollback_rollout(store: Store, caller: Caller, experiment_id: str, reason: str) -> dict[str, Any]:
    """Lower coverage to the previous stage and hold it there (PAUSED) until someone resumes it."""
    return _operate(store, caller, experiment_id, PlanCommand.ROLLBACK, reason=reason)


def abort_rollout(store: Store, caller: Caller, experiment_id: str, reason: str) -> dict[str, Any]:
    """Admin only: everyone back to the status quo. Coverage 0, plan ABORTED, and the experiment KILLED with
    the reason (the ordinary KILL transition, so its event and the ledger say who and why) — all in one
    transaction. A withdrawn treatment leaves biased evidence behind, so the experiment cannot resume."""
    actor = actor_of(caller)

    def change(experiment: OfferExperiment, transition: Any, now: datetime):
        return ({"coverage": 0.0, "ended_at": now, "status_reason": reason},
                {"reason": reason, "source": "abort_rollout", "coverage": 0.0})

    def body(uow: UnitOfWork) -> RolloutPlan:
        plan = _plan(uow, experiment_id)
        experiment = uow.experiments.get(experiment_id)
        plan_step(PlanCommand.ABORT, plan.status, plan.current_stage_index, len(plan.stages),
                  experiment_status=experiment.status)  # the rollout's refusals first
        _, aborted = transition_experiment_and_plan(uow, experiment_id, Command.KILL, actor, change,
                                                    ending_plan_command=PlanCommand.ABORT)
        return aborted

    return _view(store.transaction(body))


# --- the sweep --------------------------------------------------------------------------------------------


def sweep(store: Store, schedule_time: datetime) -> dict[str, Any]:
    """Fan out one ``rollout-checks`` message per ACTIVE plan for this tick (harmless at any time: each step
    is idempotent per (experiment, tick)). If publishing fails, the steps run here instead."""
    tick = tick_stamp(schedule_time)
    ids = store.plans.active_ids()
    if not ids:
        return {"tick": tick, "plans": 0, "published": 0, "inline": 0}
    messages = [{"experimentId": i, "tick": tick} for i in ids]
    try:
        store.messages.publish_many(CHECK_TOPIC, messages)
        return {"tick": tick, "plans": len(ids), "published": len(ids), "inline": 0}
    except Exception:  # publishing is the fan-out's optimisation, not its correctness: fall back to inline
        log.exception("rollout_sweep: publishing %d checks failed; running them inline", len(ids))
    done = 0
    for experiment_id in ids:
        try:
            run_step(store, experiment_id, tick)
            done += 1
        except Exception:
            log.exception("rollout_sweep: step for %s at %s failed", experiment_id, tick)
    return {"tick": tick, "plans": len(ids), "published": 0, "inline": done}


class StepOutcome:
    """What one sweep step did, beside the ``rules.Decision`` values."""

    CLOSED = "CLOSED"        # the experiment had ended: the plan is closed
    DUPLICATE = "DUPLICATE"  # this tick was already applied
    SKIPPED = "SKIPPED"      # not ACTIVE / not RUNNING / no plan / changed since judged


def run_step(store: Store, experiment_id: str, tick: str) -> str:
    """One sweep step for one experiment at one tick, exactly once in effect (``apply_once``).

    Returns a ``rules.Decision`` value or a ``StepOutcome``.
    """
    now = parse_rfc3339(tick)
    event_key = f"{experiment_id}:{tick}"
    if store.already_processed(STEP_SCOPE, event_key):
        return StepOutcome.DUPLICATE
    plan = store.plans.find(experiment_id)
    if plan is None or plan.status != RolloutStatus.ACTIVE or plan.current_stage_index is None:
        return StepOutcome.SKIPPED
    try:
        experiment = store.experiments.get(experiment_id)
    except NotFound:
        return StepOutcome.SKIPPED
    judgement = None
    if experiment.status == ExperimentStatus.RUNNING:
        facts = gather_facts(store, plan, experiment, now)
        readiness = rules.evaluate(requirements_of(plan.stages[plan.current_stage_index]), facts)
        judgement = Judgement(plan, experiment, facts, readiness)
    outcome: list[str] = []

    def effect(uow: UnitOfWork) -> None:
        outcome.clear()
        current = _plan(uow, experiment_id)
        exp = uow.experiments.get(experiment_id)
        if current.version != plan.version or current.status != RolloutStatus.ACTIVE:
            outcome.append(StepOutcome.SKIPPED)  # changed since judged: the next tick judges the new state
            return
        if exp.status in TERMINAL:
            # An experiment that ended without closing its plan (written before ending closed it): close it
            # now with the same step the lifecycle takes, so the sweep stops visiting it.
            step = plan_step(PlanCommand.CLOSE, current.status, current.current_stage_index, len(current.stages),
                             experiment_status=exp.status,
                             experiment_completed=exp.status is ExperimentStatus.COMPLETED)
            write_plan_step(uow, current, step, None, SWEEP_ACTOR, now,
                            reason=f"the experiment is {exp.status.value}", tick=tick)
            outcome.append(StepOutcome.CLOSED)
            return
        if exp.status != ExperimentStatus.RUNNING or judgement is None or exp.version != judgement.experiment.version:
            outcome.append(StepOutcome.SKIPPED)
            return
        decision = rules.decide(judgement.readiness, auto_progress=current.auto_progress,
                                pause_on_violation=current.pause_on_violation,
                                rollback_on_failure=current.rollback_on_failure,
                                stage_index=current.current_stage_index)
        outcome.append(decision.value)
        if decision is rules.Decision.NOTHING:
            return
        reason = None if decision is rules.Decision.PROGRESS else "; ".join(
            c.message for c in judgement.readiness.checks if not c.ok and c.gate in rules.SAFETY_GATES)[:4000]
        step = plan_step(DECISION_COMMANDS[decision], current.status, current.current_stage_index,
                         len(current.stages), experiment_status=exp.status)
        write_plan_step(uow, current, step, exp, SWEEP_ACTOR, now, reason=reason, tick=tick,
                        evidence=_evidence(judgement))

    if not store.apply_once(STEP_SCOPE, event_key, effect):
        return StepOutcome.DUPLICATE
    return outcome[-1] if outcome else StepOutcome.SKIPPED

"""The progressive rollout controller (issue 7; docs/rollout.md): one Firestore transaction per change.

The stage IS the experiment's coverage (API.md §2). Every change writes, in ONE transaction:

* the plan (``rolloutPlans/{experimentId}``) with ``version + 1`` and ``lastChange``;
* ``rolloutEvents/{experimentId}_{planVersion:06d}`` (created: two changes racing from one version collide);
* when the coverage moves, the experiment's ``coverage``/``stageIndex`` with ``version + 1`` and ``lastChange``
  (the ledger's trigger flags any unstamped change as unauthorised, docs/ledger.md §7).

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

from offerlab.api.auth import Caller, Role
from offerlab.domain import rollout as rules
from offerlab.domain.clock import parse_rfc3339, utcnow
from offerlab.domain.errors import Aborted, FailedPrecondition, NotFound
from offerlab.domain.lifecycle import Actor, Command, check_actor
from offerlab.domain.types import ExperimentStatus, RolloutStatus
from offerlab.service.rollout_plans import rollout_event, write_plan
from offerlab.store import experiments as experiments_repo
from offerlab.store import exposures as exposures_repo
from offerlab.store import rollouts as repo
from offerlab.store.documents import ExperimentEvent, LastChange, OfferExperiment, RolloutPlan, RolloutStage
from offerlab.store.transaction import run_in_transaction

log = logging.getLogger("offerlab.rollouts")

SWEEP_ACTOR = "rollout_sweep"
STEP_SCOPE = "rollout-step"          # apply_once scope: one effect per (experiment, tick)
CHECK_TOPIC = "rollout-checks"       # the sweep's fan-out topic: one message per ACTIVE plan

FINISHED = frozenset({RolloutStatus.COMPLETED, RolloutStatus.ABORTED})
TERMINAL_EXPERIMENT = frozenset({ExperimentStatus.COMPLETED, ExperimentStatus.KILLED})

EVENT = {
    rules.Decision.PROGRESS: "ROLLOUT_PROGRESSED",
    rules.Decision.PAUSE: "ROLLOUT_PAUSED",
    rules.Decision.ROLLBACK: "ROLLOUT_ROLLED_BACK",
}
RESUMED = "ROLLOUT_RESUMED"
ABORTED = "ROLLOUT_ABORTED"
CLOSED = "ROLLOUT_CLOSED"


# --- reading the plan and the evidence ------------------------------------------------------------------


def _actor(caller: Caller) -> Actor:
    from offerlab.service.experiments import actor_of  # noqa: PLC0415 - avoids an import cycle

    return actor_of(caller)


def close_plan_in(transaction: Any, plan: RolloutPlan, experiment: OfferExperiment, actor: str, now: datetime) -> None:
    """Close an open plan in the transaction that ends its experiment (kill, complete, kill-switch), with
    its ROLLOUT_CLOSED event: the plan's status follows at once instead of at the next rollout_sweep
    (which still closes a plan whose experiment ended some other way). The coverage is left as it was:
    get_offer serves nobody the treatment of an ended experiment anyway."""
    if plan.status not in (RolloutStatus.PLANNED, RolloutStatus.ACTIVE, RolloutStatus.PAUSED):
        return
    status = RolloutStatus.COMPLETED if experiment.status == ExperimentStatus.COMPLETED else RolloutStatus.ABORTED
    _commit(transaction, plan, experiment, event_type=CLOSED, actor=actor, now=now, status=status,
            to_index=plan.current_stage_index, reason=f"the experiment is {experiment.status.value}",
            move_experiment=False)


def _plan(experiment_id: str, transaction: Any = None) -> RolloutPlan:
    plan = repo.find_plan(experiment_id, transaction)
    if plan is None:
        raise NotFound("The experiment has no rollout plan.")
    return plan


def requirements_of(stage: RolloutStage) -> rules.StageRequirements:
    return rules.StageRequirements(
        min_hours_at_stage=stage.min_hours_at_stage, min_exposures_per_arm=stage.min_exposures_per_arm,
        require_no_srm=stage.require_no_srm, require_no_guardrail_violation=stage.require_no_guardrail_violation,
        require_no_open_issues=stage.require_no_open_issues,
    )


def guardrail_breaches(experiment: OfferExperiment) -> tuple[rules.GuardrailBreach, ...]:
    """The analytics area's guardrail evaluation (service/guardrails.py ``check_experiment``: the TREATMENT arm
    against each absolute limit with the always-valid one-sided sequential test, docs/statistics.md), so the
    rollout gate and check_guardrails/monitor_experiment never disagree. It needs enough treatment users
    (``stats.sequential.DEFAULT_MIN_N``) before it can call a breach; until then the guardrail counts as met."""
    from offerlab.service.analysis_source import FirestoreAnalysisSource  # noqa: PLC0415 - heavy: stats
    from offerlab.service.guardrails import check_experiment  # noqa: PLC0415

    checks = check_experiment(experiment, FirestoreAnalysisSource())
    return tuple(rules.GuardrailBreach(c.kpi_name, c.metric, c.observed if c.observed is not None else float("nan"),
                                       c.threshold, c.direction) for c in checks if c.breached)


def gather_facts(plan: RolloutPlan, experiment: OfferExperiment, now: datetime) -> rules.StageFacts:
    """The evidence for the plan's current stage at ``now`` (non-transactional reads)."""
    index = plan.current_stage_index or 0
    stage = plan.stages[index]
    counts = exposures_repo.count_by_arm(experiment.experiment_id)
    srm = None
    if stage.require_no_srm and counts.get("CONTROL", 0) + counts.get("TREATMENT", 0) > 0:
        from offerlab.stats.frequentist import srm_p_value  # noqa: PLC0415 - scipy: heavy, only here

        t = experiment.treatment_percentage
        srm = srm_p_value({"CONTROL": counts.get("CONTROL", 0), "TREATMENT": counts.get("TREATMENT", 0)},
                          {"CONTROL": 100.0 - t, "TREATMENT": t})
    breaches: tuple[rules.GuardrailBreach, ...] = ()
    if stage.require_no_guardrail_violation and experiment.guardrails:
        breaches = guardrail_breaches(experiment)
    issues: tuple[str, ...] = ()
    if stage.require_no_open_issues:
        issues = tuple(_describe_alert(a) for a in repo.open_alerts(experiment.experiment_id))
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


def judge(experiment_id: str, now: datetime) -> Judgement:
    plan = _plan(experiment_id)
    experiment = experiments_repo.get_experiment(experiment_id)
    if plan.current_stage_index is None:
        raise FailedPrecondition(f"The rollout has not started (plan {plan.status.value}); starting the experiment "
                                 "puts it at its first stage.")
    facts = gather_facts(plan, experiment, now)
    readiness = rules.evaluate(requirements_of(plan.stages[plan.current_stage_index]), facts)
    return Judgement(plan, experiment, facts, readiness)


def _evidence(judgement: Judgement) -> dict[str, Any]:
    facts = judgement.facts
    return {**judgement.readiness.as_dict(), "hoursAtStage": round(facts.hours_at_stage, 3),
            "exposures": dict(facts.exposures), "srmPValue": facts.srm_p_value}


# --- the one write path ---------------------------------------------------------------------------------


def _refuse_if_finished(plan: RolloutPlan, experiment: OfferExperiment) -> None:
    if plan.status in FINISHED:
        raise FailedPrecondition(f"The rollout is {plan.status.value}: it can no longer change.",
                                 {"rolloutStatus": plan.status.value})
    if experiment.status in TERMINAL_EXPERIMENT:
        raise FailedPrecondition(f"The experiment is {experiment.status.value}: its rollout is over.",
                                 {"experimentStatus": experiment.status.value})


def _commit(transaction: Any, plan: RolloutPlan, experiment: OfferExperiment, *, event_type: str, actor: str,
            now: datetime, status: RolloutStatus, to_index: int | None, reason: str | None = None,
            tick: str | None = None, evidence: dict[str, Any] | None = None,
            move_experiment: bool = True) -> RolloutPlan:
    """Write the plan (version + 1), its event, and — when the stage moves — the experiment's coverage."""
    from_index = plan.current_stage_index
    from_stage = plan.stages[from_index].percentage if from_index is not None else None
    to_stage = plan.stages[to_index].percentage if to_index is not None else None
    version = plan.version + 1
    updates: dict[str, Any] = {
        "status": status, "current_stage_index": to_index, "version": version, "status_reason": reason,
        "last_change": LastChange(action=event_type, actor=actor, at=now, version=version),
    }
    moved = to_index != from_index
    if moved:
        updates["stage_entered_at"] = now
    after = plan.model_copy(update=updates)
    event = rollout_event(after, event_type, actor, now, from_stage, to_stage if to_index is not None else None,
                          reason).model_copy(update={"tick": tick, "evidence": evidence})
    if moved and move_experiment:
        _move_experiment(transaction, experiment, event_type, actor, now, to_stage, to_index, after.version)
    write_plan(transaction, after, event)
    return after


def _move_experiment(transaction: Any, experiment: OfferExperiment, event_type: str, actor: str, now: datetime,
                     coverage: float, stage_index: int, plan_version: int) -> None:
    """The experiment's coverage/stageIndex with version + 1, lastChange, and its experimentEvents document
    (the lifecycle's invariant: one event per experiment version, docs/lifecycle.md). The status is unchanged."""
    version = experiment.version + 1
    transaction.update(experiments_repo.experiment_ref(experiment.experiment_id), {
        "coverage": coverage, "stageIndex": stage_index, "version": version,
        "lastChange": LastChange(action=event_type, actor=actor, at=now, version=version).to_firestore(),
    })
    event = ExperimentEvent(
        experiment_id=experiment.experiment_id, event_type=event_type, actor=actor, from_status=experiment.status,
        to_status=experiment.status, version=version, occurred_at=now,
        payload={"coverage": coverage, "stageIndex": stage_index, "fromCoverage": experiment.coverage,
                 "rolloutPlanVersion": plan_version},
    )
    transaction.create(experiments_repo.event_ref(experiment.experiment_id, version), event.to_firestore())


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


def _same_plan(seen: RolloutPlan, transaction: Any) -> tuple[RolloutPlan, OfferExperiment]:
    """Re-read plan and experiment inside the transaction; ABORTED when the plan moved since it was judged."""
    plan = _plan(seen.experiment_id, transaction)
    experiment = experiments_repo.get_experiment(seen.experiment_id, transaction)
    if plan.version != seen.version:
        raise Aborted("The rollout changed while it was being checked; please retry.")
    return plan, experiment


# --- callables ------------------------------------------------------------------------------------------


def check_stage_progress(caller: Caller, experiment_id: str) -> dict[str, Any]:
    """``{ready, met[], blocking[]}`` for the current stage, now; read-only."""
    now = utcnow()
    judgement = judge(experiment_id, now)
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


def progress_rollout(caller: Caller, experiment_id: str) -> dict[str, Any]:
    """Raise coverage to the next stage, only when every requirement of the current one is met."""
    actor = _actor(caller)
    now = utcnow()
    _author_check(actor, experiments_repo.get_experiment(experiment_id))  # before the evidence is read
    judgement = judge(experiment_id, now)

    def body(transaction: Any) -> RolloutPlan:
        plan, experiment = _same_plan(judgement.plan, transaction)
        _author_check(actor, experiment)
        _refuse_if_finished(plan, experiment)
        if plan.status != RolloutStatus.ACTIVE:
            raise FailedPrecondition(f"The rollout is {plan.status.value}; resume it with start_rollout first.")
        if experiment.status != ExperimentStatus.RUNNING:
            raise FailedPrecondition(f"The experiment is {experiment.status.value}, not RUNNING.")
        if not judgement.readiness.ready:
            raise FailedPrecondition("The current stage has not met its requirements.",
                                     {"blocking": judgement.readiness.blocking, "met": judgement.readiness.met})
        return _commit(transaction, plan, experiment, event_type=EVENT[rules.Decision.PROGRESS], actor=actor.name,
                       now=now, status=RolloutStatus.ACTIVE, to_index=plan.current_stage_index + 1,
                       evidence=_evidence(judgement))

    return _view(run_in_transaction(body))


def start_rollout(caller: Caller, experiment_id: str) -> dict[str, Any]:
    """Resume a PAUSED rollout at its current stage (starting the experiment starts the rollout itself)."""
    actor = _actor(caller)

    def body(transaction: Any) -> RolloutPlan:
        plan = _plan(experiment_id, transaction)
        experiment = experiments_repo.get_experiment(experiment_id, transaction)
        _author_check(actor, experiment)
        _refuse_if_finished(plan, experiment)
        if plan.status == RolloutStatus.PLANNED:
            raise FailedPrecondition("The rollout starts with the experiment: call start_experiment.")
        if plan.status == RolloutStatus.ACTIVE:
            raise FailedPrecondition("The rollout is already ACTIVE.")
        if experiment.status != ExperimentStatus.RUNNING:
            raise FailedPrecondition(f"The experiment is {experiment.status.value}; resume the experiment first.")
        return _commit(transaction, plan, experiment, event_type=RESUMED, actor=actor.name, now=utcnow(),
                       status=RolloutStatus.ACTIVE, to_index=plan.current_stage_index)

    return _view(run_in_transaction(body))


def pause_rollout(caller: Caller, experiment_id: str, reason: str) -> dict[str, Any]:
    """Hold the rollout at its current stage (users keep their arms; the sweep no longer progresses it)."""
    actor = _actor(caller)

    def body(transaction: Any) -> RolloutPlan:
        plan = _plan(experiment_id, transaction)
        experiment = experiments_repo.get_experiment(experiment_id, transaction)
        _author_check(actor, experiment)
        _refuse_if_finished(plan, experiment)
        if plan.status != RolloutStatus.ACTIVE:
            raise FailedPrecondition(f"Only an ACTIVE rollout can be paused; it is {plan.status.value}.")
        return _commit(transaction, plan, experiment, event_type=EVENT[rules.Decision.PAUSE], actor=actor.name,
                       now=utcnow(), status=RolloutStatus.PAUSED, to_index=plan.current_stage_index, reason=reason)

    return _view(run_in_transaction(body))


def _rollback_target(plan: RolloutPlan) -> int:
    if plan.status not in (RolloutStatus.ACTIVE, RolloutStatus.PAUSED) or plan.current_stage_index is None:
        raise FailedPrecondition(f"The rollout is {plan.status.value}: there is no stage to roll back.")
    if plan.current_stage_index == 0:
        raise FailedPrecondition("The rollout is at its first stage: there is no earlier stage. Pause it, or ask an "
                                 "admin to abort it.")
    return plan.current_stage_index - 1


def rollback_rollout(caller: Caller, experiment_id: str, reason: str) -> dict[str, Any]:
    """Lower coverage to the previous stage and hold it there (PAUSED) until someone resumes it."""
    actor = _actor(caller)

    def body(transaction: Any) -> RolloutPlan:
        plan = _plan(experiment_id, transaction)
        experiment = experiments_repo.get_experiment(experiment_id, transaction)
        _author_check(actor, experiment)
        _refuse_if_finished(plan, experiment)
        target = _rollback_target(plan)
        return _commit(transaction, plan, experiment, event_type=EVENT[rules.Decision.ROLLBACK], actor=actor.name,
                       now=utcnow(), status=RolloutStatus.PAUSED, to_index=target, reason=reason)

    return _view(run_in_transaction(body))


def abort_rollout(caller: Caller, experiment_id: str, reason: str) -> dict[str, Any]:
    """Admin only: everyone back to the status quo. Coverage 0, plan ABORTED, and the experiment KILLED with
    the reason (the ordinary KILL transition, so its event and the ledger say who and why) — all in one
    transaction. A withdrawn treatment leaves biased evidence behind, so the experiment cannot resume."""
    from offerlab.service.experiments import transition_in  # noqa: PLC0415 - avoids an import cycle

    actor = _actor(caller)

    def change(experiment: OfferExperiment, transition: Any, now: datetime):
        return ({"coverage": 0.0, "ended_at": now, "status_reason": reason},
                {"reason": reason, "source": "abort_rollout", "coverage": 0.0})

    def body(transaction: Any) -> RolloutPlan:
        plan = _plan(experiment_id, transaction)
        experiment = experiments_repo.get_experiment(experiment_id, transaction)
        _refuse_if_finished(plan, experiment)
        if plan.status == RolloutStatus.PLANNED:
            raise FailedPrecondition("The rollout has not started; nothing to abort.")
        killed = transition_in(transaction, experiment_id, Command.KILL, actor, change, close_plan=False)
        return _commit(transaction, plan, killed, event_type=ABORTED, actor=actor.name, now=killed.last_change.at,
                       status=RolloutStatus.ABORTED, to_index=plan.current_stage_index, reason=reason,
                       move_experiment=False)

    return _view(run_in_transaction(body))


# --- the sweep --------------------------------------------------------------------------------------------


def tick_id(schedule_time: datetime) -> str:
    """The tick's identity and clock: its schedule time in RFC 3339 (UTC, 'Z')."""
    from datetime import timezone  # noqa: PLC0415

    if schedule_time.tzinfo is None:  # the SDK yields a naive time when the header has no zone: it is UTC
        schedule_time = schedule_time.replace(tzinfo=timezone.utc)
    return schedule_time.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def sweep(schedule_time: datetime) -> dict[str, Any]:
    """Fan out one ``rollout-checks`` message per ACTIVE plan for this tick (harmless at any time: each step
    is idempotent per (experiment, tick)). If publishing fails, the steps run here instead."""
    tick = tick_id(schedule_time)
    ids = repo.active_plan_ids()
    if not ids:
        return {"tick": tick, "plans": 0, "published": 0, "inline": 0}
    messages = [{"experimentId": i, "tick": tick} for i in ids]
    try:
        from offerlab.store.pubsub import publish_many  # noqa: PLC0415 - lazy (cold start)

        publish_many(CHECK_TOPIC, messages)
        return {"tick": tick, "plans": len(ids), "published": len(ids), "inline": 0}
    except Exception:  # publishing is the fan-out's optimisation, not its correctness: fall back to inline
        log.exception("rollout_sweep: publishing %d checks failed; running them inline", len(ids))
    done = 0
    for experiment_id in ids:
        try:
            run_step(experiment_id, tick)
            done += 1
        except Exception:
            log.exception("rollout_sweep: step for %s at %s failed", experiment_id, tick)
    return {"tick": tick, "plans": len(ids), "published": 0, "inline": done}


def run_step(experiment_id: str, tick: str) -> str:
    """One sweep step for one experiment at one tick, exactly once in effect (``apply_once``).

    Returns what it did: a ``Decision`` value, ``CLOSED`` (the experiment ended: the plan is closed),
    ``DUPLICATE`` (this tick was already applied) or ``SKIPPED`` (not ACTIVE / not RUNNING / no plan).
    """
    from offerlab.store.idempotency import already_processed, apply_once  # noqa: PLC0415

    now = parse_rfc3339(tick)
    event_key = f"{experiment_id}:{tick}"
    if already_processed(STEP_SCOPE, event_key):
        return "DUPLICATE"
    plan = repo.find_plan(experiment_id)
    if plan is None or plan.status != RolloutStatus.ACTIVE or plan.current_stage_index is None:
        return "SKIPPED"
    try:
        experiment = experiments_repo.get_experiment(experiment_id)
    except NotFound:
        return "SKIPPED"
    judgement = None
    if experiment.status == ExperimentStatus.RUNNING:
        facts = gather_facts(plan, experiment, now)
        readiness = rules.evaluate(requirements_of(plan.stages[plan.current_stage_index]), facts)
        judgement = Judgement(plan, experiment, facts, readiness)
    outcome: list[str] = []

    def effect(transaction: Any) -> None:
        outcome.clear()
        current = _plan(experiment_id, transaction)
        exp = experiments_repo.get_experiment(experiment_id, transaction)
        if current.version != plan.version or current.status != RolloutStatus.ACTIVE:
            outcome.append("SKIPPED")  # changed since judged: the next tick judges the new state
            return
        if exp.status in TERMINAL_EXPERIMENT:
            # The experiment ended through its lifecycle: close the plan so the sweep stops visiting it.
            status = RolloutStatus.COMPLETED if exp.status == ExperimentStatus.COMPLETED else RolloutStatus.ABORTED
            _commit(transaction, current, exp, event_type=CLOSED, actor=SWEEP_ACTOR, now=now, status=status,
                    to_index=current.current_stage_index, reason=f"the experiment is {exp.status.value}", tick=tick)
            outcome.append(CLOSED)
            return
        if exp.status != ExperimentStatus.RUNNING or judgement is None or exp.version != judgement.experiment.version:
            outcome.append("SKIPPED")
            return
        decision = rules.decide(judgement.readiness, auto_progress=current.auto_progress,
                                pause_on_violation=current.pause_on_violation,
                                rollback_on_failure=current.rollback_on_failure,
                                stage_index=current.current_stage_index)
        outcome.append(decision.value)
        if decision is rules.Decision.NOTHING:
            return
        index = current.current_stage_index
        to_index, status = {
            rules.Decision.PROGRESS: (index + 1, RolloutStatus.ACTIVE),
            rules.Decision.PAUSE: (index, RolloutStatus.PAUSED),
            rules.Decision.ROLLBACK: (index - 1, RolloutStatus.PAUSED),
        }[decision]
        reason = None if decision is rules.Decision.PROGRESS else "; ".join(
            c.message for c in judgement.readiness.checks if not c.ok and c.gate in rules.SAFETY_GATES)[:4000]
        _commit(transaction, current, exp, event_type=EVENT[decision], actor=SWEEP_ACTOR, now=now, status=status,
                to_index=to_index, reason=reason, tick=tick, evidence=_evidence(judgement))

    if not apply_once(STEP_SCOPE, event_key, effect):
        return "DUPLICATE"
    return outcome[-1] if outcome else "SKIPPED"


# Roles of the callables (API.md §1): experimenters act on their own experiments' rollouts (checked per
# experiment above), analysts may read readiness, only admins abort.
ACTORS = [Role.EXPERIMENTER]
READERS = [Role.EXPERIMENTER, Role.ANALYST]
ABORTERS = [Role.ADMIN]

"""Experiment lifecycle use cases (OfferExperimentOrchestrator): one Firestore transaction each.

Every transition reads the experiment, checks the guards of ``domain.lifecycle`` (who may act, and the
transition table), then writes the experiment with ``version + 1`` and a ``lastChange`` stamp, plus
``experimentEvents/{experimentId}_{version:06d}``. The event id is deterministic, so two transitions racing
from the same version cannot both commit (the loser is retried by the client, re-reads the new state and
then fails its guard, or gets ABORTED). docs/lifecycle.md describes the table and the guards.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from offerlab.api.auth import Caller, Role
from offerlab.domain import checklist
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from offerlab.domain.assignment import new_salt
from offerlab.domain.lifecycle import (
    EVENT_TYPES, Actor, Command, Transition, check_actor, check_not_already_approved, plan_transition,
)
from offerlab.domain.types import ExperimentStatus
from offerlab.service import rollout_plans
from offerlab.store import experiments as repo
from offerlab.store import holdouts as holdouts_repo
from offerlab.store import rollouts as rollouts_repo
from offerlab.store.documents import (
    Approval, ExperimentEvent, Guardrail, Hypothesis, KillSwitch, Kpi, LastChange, OfferExperiment,
)
from offerlab.store.transaction import run_in_transaction

# The kill-switch topic's actor: authorised by who may publish to the topic (IAM), named by the message.
KILL_SWITCH_SOURCE = "experiment-kill-switch"


def actor_of(caller: Caller) -> Actor:
    return Actor(name=caller.actor, email=caller.email, is_admin=Role.ADMIN in caller.roles,
                 is_approver=Role.APPROVER in caller.roles)


def system_actor(name: str) -> Actor:
    return Actor(name=name, email=None, is_system=True)


# --- the one write path of every transition ----------------------------------------------------------


def _commit(transaction: Any, before: OfferExperiment | None, after: OfferExperiment, transition: Transition,
            actor: Actor, now: datetime, payload: dict[str, Any]) -> OfferExperiment:
    """Write the new state (version + 1, lastChange) and its event. Callers have done all their reads."""
    version = (before.version if before is not None else 0) + 1
    stamped = after.model_copy(update={
        "version": version,
        "last_change": LastChange(action=transition.event_type, actor=actor.name, at=now, version=version),
    })
    event = ExperimentEvent(
        experiment_id=after.experiment_id, event_type=transition.event_type, actor=actor.name,
        from_status=transition.from_status if before is not None else None, to_status=transition.to_status,
        version=version, payload=payload, occurred_at=now,
    )
    if before is None:
        transaction.create(repo.experiment_ref(after.experiment_id), stamped.to_firestore())
    else:
        transaction.set(repo.experiment_ref(after.experiment_id), stamped.to_firestore())
    transaction.create(repo.event_ref(after.experiment_id, version), event.to_firestore())
    return stamped


def transition_in(transaction: Any, experiment_id: str, command: Command, actor: Actor,
                  change: Callable[[OfferExperiment, Transition, datetime], tuple[dict[str, Any], dict[str, Any]]]
                  | None = None, *, allowed_from: frozenset[ExperimentStatus] | None = None,
                  close_plan: bool = True) -> OfferExperiment:
    """Apply one table transition inside ``transaction`` (shared with apply_once by the kill-switch).

    ``change(experiment, transition, now)`` returns (field updates, event payload); ``allowed_from``
    narrows the table (the kill-switch's "*" kills only RUNNING/PAUSED experiments). A transition that ends
    the experiment also closes its open rollout plan, unless the caller writes the plan itself
    (``close_plan=False``: abort_rollout).
    """
    experiment = repo.get_experiment(experiment_id, transaction)
    check_actor(command, actor, author=experiment.author, approvers=experiment.approvers)
    if allowed_from is not None and experiment.status not in allowed_from:
        raise FailedPrecondition(f"The experiment is {experiment.status.value}.")
    transition = plan_transition(command, experiment.status)
    ending = close_plan and transition.to_status in (ExperimentStatus.KILLED, ExperimentStatus.COMPLETED)
    plan = rollouts_repo.find_plan(experiment_id, transaction) if ending else None  # all reads before writes
    now = utcnow()
    updates, payload = change(experiment, transition, now) if change else ({}, {})
    after = experiment.model_copy(update={"status": transition.to_status, **updates})
    committed = _commit(transaction, experiment, after, transition, actor, now, payload)
    if plan is not None:
        from offerlab.service.rollouts import close_plan_in  # noqa: PLC0415 - avoids an import cycle

        close_plan_in(transaction, plan, committed, actor.name, now)
    return committed


def _run(experiment_id: str, command: Command, actor: Actor, change=None) -> OfferExperiment:
    return run_in_transaction(lambda t: transition_in(t, experiment_id, command, actor, change))


# --- create and edit ---------------------------------------------------------------------------------


def _definition(fields: dict[str, Any]) -> dict[str, Any]:
    """Request fields (snake_case, api models) as document field values."""
    out = dict(fields)
    if out.get("hypothesis") is not None:
        out["hypothesis"] = Hypothesis.model_validate(out["hypothesis"].model_dump(mode="json"))
    if out.get("kpis") is not None:
        out["kpis"] = [Kpi.model_validate(k.model_dump(mode="json")) for k in out["kpis"]]
    if out.get("guardrails") is not None:
        out["guardrails"] = [Guardrail.model_validate(g.model_dump(mode="json")) for g in out["guardrails"]]
    return out


def _check_definition(author: str, approvers: list[str], start: datetime, end: datetime) -> None:
    problems = []
    if author in approvers:
        problems.append({"path": "approvers", "message": "the author cannot approve their own experiment"})
    if end <= start:
        problems.append({"path": "plannedEndDate", "message": "must be after plannedStartDate"})
    if problems:
        raise InvalidArgument("The request is invalid.", {"fields": problems})


def _require_cohort(cohort_id: str, transaction: Any) -> None:
    try:
        holdouts_repo.get_cohort(cohort_id, transaction)
    except NotFound:
        raise InvalidArgument("The request is invalid.",
                              {"fields": [{"path": "holdoutCohortId", "message": "no such holdout cohort"}]}) from None


def create_experiment(caller: Caller, request: Any) -> OfferExperiment:
    """A DRAFT experiment authored by the caller (their email); salt generated here, never changed."""
    if caller.email is None:
        raise InvalidArgument("An experiment's author is identified by email: the token has none.",
                              {"fields": [{"path": "(token).email", "message": "required"}]})
    fields = _definition({name: getattr(request, name) for name in type(request).model_fields})
    _check_definition(caller.email, fields["approvers"], fields["planned_start_date"], fields["planned_end_date"])
    ref = repo.new_experiment_ref()
    actor = actor_of(caller)

    def body(transaction: Any) -> OfferExperiment:
        _require_cohort(fields["holdout_cohort_id"], transaction)
        now = utcnow()
        experiment = OfferExperiment(
            experiment_id=ref.id, author=caller.email, salt=new_salt(), status=ExperimentStatus.DRAFT,
            created_at=now, version=0, kill_switch=KillSwitch(enabled=True, subscribed_at=now), **fields,
        )
        transition = Transition(Command.CREATE, ExperimentStatus.DRAFT, ExperimentStatus.DRAFT,
                                EVENT_TYPES[Command.CREATE])
        payload = {"name": experiment.name, "offerType": experiment.offer_type.value,
                   "holdoutCohortId": experiment.holdout_cohort_id,
                   "treatmentPercentage": experiment.treatment_percentage, "approvers": experiment.approvers}
        return _commit(transaction, None, experiment, transition, actor, now, payload)

    return run_in_transaction(body)


def update_experiment(caller: Caller, request: Any) -> OfferExperiment:
    """Edit before it runs; an edit after submission voids every approval and returns it to DRAFT."""
    changed = {name: getattr(request, name) for name in request.model_fields_set if name != "experiment_id"}
    fields = _definition(changed)
    actor = actor_of(caller)

    def change(experiment: OfferExperiment, transition: Transition, now: datetime):
        merged = experiment.model_copy(update=fields)
        _check_definition(experiment.author, merged.approvers, merged.planned_start_date, merged.planned_end_date)
        voided = sorted(experiment.approvals)
        payload = {"changedFields": sorted(_camel(n) for n in fields), "approvalsVoided": voided}
        return {**fields, "approvals": {}, "status_reason": None}, payload

    def body(transaction: Any) -> OfferExperiment:
        if "holdout_cohort_id" in fields:
            _require_cohort(fields["holdout_cohort_id"], transaction)
        return transition_in(transaction, request.experiment_id, Command.UPDATE, actor, change)

    return run_in_transaction(body)


# --- approvals ---------------------------------------------------------------------------------------


def submit_for_approval(caller: Caller, experiment_id: str) -> OfferExperiment:
    return _run(experiment_id, Command.SUBMIT, actor_of(caller),
                lambda e, t, now: ({"status_reason": None}, {"approvers": e.approvers}))


def approve_experiment(caller: Caller, experiment_id: str, comment: str | None) -> OfferExperiment:
    """Record the caller's approval; the experiment becomes APPROVED once every listed approver approved."""
    actor = actor_of(caller)

    def body(transaction: Any) -> OfferExperiment:
        experiment = repo.get_experiment(experiment_id, transaction)
        check_actor(Command.APPROVE, actor, author=experiment.author, approvers=experiment.approvers)
        plan_transition(Command.APPROVE, experiment.status)  # the state guard first: a clear refusal
        check_not_already_approved(actor.email, experiment.approvals)
        approvals_after = set(experiment.approvals) | {actor.email}
        transition = plan_transition(Command.APPROVE, experiment.status, approvals_after=approvals_after,
                                     approvers=experiment.approvers)
        now = utcnow()
        approvals = {**experiment.approvals, actor.email: Approval(approver=actor.email, approved_at=now, comment=comment)}
        after = experiment.model_copy(update={"status": transition.to_status, "approvals": approvals})
        payload = {"approver": actor.email, "comment": comment,
                   "approved": sorted(approvals_after), "required": sorted(experiment.approvers)}
        return _commit(transaction, experiment, after, transition, actor, now, payload)

    return run_in_transaction(body)


def reject_experiment(caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    return _run(experiment_id, Command.REJECT, actor_of(caller), lambda e, t, now: (
        {"approvals": {}, "status_reason": reason}, {"reason": reason, "approvalsVoided": sorted(e.approvals)}))


# --- start: the launch checklist ---------------------------------------------------------------------


def launch_facts(experiment: OfferExperiment, transaction: Any) -> tuple[checklist.LaunchFacts, Any]:
    """Read what the checklist needs (inside the start transaction); also returns the rollout plan."""
    try:
        cohort = holdouts_repo.get_cohort(experiment.holdout_cohort_id, transaction)
    except NotFound:
        cohort = None
    plan = rollouts_repo.find_plan(experiment.experiment_id, transaction)
    created = repo.event_exists(experiment.experiment_id, 1, transaction)
    facts = checklist.LaunchFacts(
        cohort_status=cohort.status.value if cohort else None,
        cohort_spillover_policy={k.value: v.value for k, v in cohort.spillover_policy.items()} if cohort else {},
        hypothesis_statement=experiment.hypothesis.statement,
        success_criteria=tuple(experiment.hypothesis.success_criteria),
        kpi_types=tuple(k.type for k in experiment.kpis), guardrail_count=len(experiment.guardrails),
        approvers=tuple(experiment.approvers), approved_by=tuple(experiment.approvals),
        kill_switch_enabled=experiment.kill_switch is None or experiment.kill_switch.enabled,
        creation_event_recorded=created,
        rollout_plan_status=plan.status.value if plan else None,
        rollout_stage_count=len(plan.stages) if plan else 0,
    )
    return facts, plan


def start_experiment(caller: Caller, experiment_id: str) -> OfferExperiment:
    """APPROVED → RUNNING at the rollout plan's first stage, only when the whole checklist holds."""
    actor = actor_of(caller)

    def body(transaction: Any) -> OfferExperiment:
        experiment = repo.get_experiment(experiment_id, transaction)
        check_actor(Command.START, actor, author=experiment.author, approvers=experiment.approvers)
        facts, plan = launch_facts(experiment, transaction)
        items = checklist.evaluate(facts)
        details = {"checklist": [i.as_dict() for i in items]}
        if not checklist.is_ready(items):
            raise FailedPrecondition("The launch checklist is not complete.", details)
        try:
            transition = plan_transition(Command.START, experiment.status)
        except FailedPrecondition as err:
            raise FailedPrecondition(err.message, {**(err.details or {}), **details}) from None
        now = utcnow()
        started_plan, rollout_event = rollout_plans.begin_first_stage(plan, actor.name, now)
        after = experiment.model_copy(update={
            "status": transition.to_status, "coverage": started_plan.stages[0].percentage, "stage_index": 0,
            "started_at": now, "status_reason": None,
        })
        saved = _commit(transaction, experiment, after, transition, actor, now,
                        {"coverage": after.coverage, "stageIndex": 0, "checklist": details["checklist"]})
        rollout_plans.write_plan(transaction, started_plan, rollout_event)
        return saved

    return run_in_transaction(body)


# --- running ------------------------------------------------------------------------------------------


def pause_experiment(caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    return _run(experiment_id, Command.PAUSE, actor_of(caller),
                lambda e, t, now: ({"status_reason": reason}, {"reason": reason}))


def resume_experiment(caller: Caller, experiment_id: str) -> OfferExperiment:
    return _run(experiment_id, Command.RESUME, actor_of(caller),
                lambda e, t, now: ({"status_reason": None}, {}))


def complete_experiment(caller: Caller, experiment_id: str) -> OfferExperiment:
    return _run(experiment_id, Command.COMPLETE, actor_of(caller),
                lambda e, t, now: ({"ended_at": now}, {}))


def kill_change(reason: str, source: str, message_id: str | None = None):
    def change(experiment: OfferExperiment, transition: Transition, now: datetime):
        payload = {"reason": reason, "source": source}
        if message_id:
            payload["messageId"] = message_id
        return {"ended_at": now, "status_reason": reason}, payload
    return change


def kill_experiment(caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    return _run(experiment_id, Command.KILL, actor_of(caller), kill_change(reason, "kill_experiment"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# --- for other areas: automated pauses/kills and coverage changes, through the same write path ----------


def system_pause(experiment_id: str, actor_name: str, reason: str, transaction: Any = None) -> OfferExperiment:
    """Pause on behalf of automation (a guardrail's PAUSE action): RUNNING → PAUSED, event EXPERIMENT_PAUSED
    with ``payload {reason, source: "system"}``. Pass ``transaction`` to join a caller's transaction."""
    change = lambda e, t, now: ({"status_reason": reason}, {"reason": reason, "source": "system"})  # noqa: E731
    if transaction is not None:
        return transition_in(transaction, experiment_id, Command.PAUSE, system_actor(actor_name), change)
    return _run(experiment_id, Command.PAUSE, system_actor(actor_name), change)


def system_kill(experiment_id: str, actor_name: str, reason: str, transaction: Any = None) -> OfferExperiment:
    """Kill on behalf of automation (a guardrail's KILL action); same event as kill_experiment."""
    change = kill_change(reason, "system")
    if transaction is not None:
        return transition_in(transaction, experiment_id, Command.KILL, system_actor(actor_name), change)
    return _run(experiment_id, Command.KILL, system_actor(actor_name), change)


COVERAGE_CHANGED = "EXPERIMENT_COVERAGE_CHANGED"


def change_coverage_in(transaction: Any, experiment_id: str, coverage: float, stage_index: int, actor_name: str,
                       reason: str | None = None) -> OfferExperiment:
    """For the rollout controller: move a RUNNING or PAUSED experiment to another stage inside the caller's
    transaction (which also writes the plan and its rolloutEvent). Writes the experiment with version + 1,
    lastChange and ``experimentEvents`` ``EXPERIMENT_COVERAGE_CHANGED`` ``{fromCoverage, toCoverage,
    stageIndex, reason}``; the status does not change. Arms never change: coverage and arm hashes are
    independent (API.md §2), so raising coverage only adds users."""
    experiment = repo.get_experiment(experiment_id, transaction)
    if experiment.status not in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
        raise FailedPrecondition(f"Coverage changes only while RUNNING or PAUSED; the experiment is {experiment.status.value}.")
    now = utcnow()
    transition = Transition(Command.START, experiment.status, experiment.status, COVERAGE_CHANGED)
    after = experiment.model_copy(update={"coverage": coverage, "stage_index": stage_index})
    payload = {"fromCoverage": experiment.coverage, "toCoverage": coverage, "stageIndex": stage_index, "reason": reason}
    return _commit(transaction, experiment, after, transition, Actor(name=actor_name, email=None, is_system=True),
                   now, payload)

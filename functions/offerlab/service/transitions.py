"""The one write path of experiments and rollout plans: every change of their state goes through here.

``write_experiment`` applies a domain transition (domain/lifecycle.py) and writes, in the caller's unit of
work, the experiment with ``version + 1`` and its ``lastChange`` stamp, plus its
``experimentEvents/{experimentId}_{version:06d}`` document, which the ledger trigger records. The event id
is deterministic: two transitions racing from one version cannot both commit (docs/lifecycle.md). The
ledger flags any experiment write whose stamp does not advance by one as unauthorised (docs/ledger.md §7).

``write_plan_step`` does the same for a rollout plan (domain/rollout_plan.py): the plan with
``version + 1``, ``lastChange`` and its ``rolloutEvents`` document, and — when the stage moves — the
experiment's coverage through ``write_experiment`` (a MOVE_STAGE transition), all in one transaction.

``transition_experiment`` is a whole lifecycle step for the use cases: read, check who acts, plan the
transition, write; a transition that ends the experiment also closes its open rollout plan here, the only
place that does.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from offerlab.domain.actors import Actor
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.lifecycle import Command, Transition, check_actor, plan_transition
from offerlab.domain.rollout_plan import PlanCommand, PlanTransition, is_open, plan_step
from offerlab.domain.types import ExperimentStatus
from offerlab.service.ports import UnitOfWork
from offerlab.store.documents import ExperimentEvent, LastChange, OfferExperiment, RolloutEvent, RolloutPlan

# change(experiment, transition, now) -> (field updates, event payload)
Change = Callable[[OfferExperiment, Transition, datetime], tuple[dict[str, Any], dict[str, Any]]]


def write_experiment(uow: UnitOfWork, before: OfferExperiment | None, after: OfferExperiment,
                     transition: Transition, actor: str, now: datetime, payload: dict[str, Any]) -> OfferExperiment:
    """Write ``after`` (version + 1, lastChange) and its event. The caller has done all its reads."""
    version = (before.version if before is not None else 0) + 1
    stamped = after.model_copy(update={
        "version": version,
        "last_change": LastChange(action=transition.event_type, actor=actor, at=now, version=version),
    })
    event = ExperimentEvent(
        experiment_id=after.experiment_id, event_type=transition.event_type, actor=actor,
        from_status=transition.from_status if before is not None else None, to_status=transition.to_status,
        version=version, payload=payload, occurred_at=now,
    )
    if before is None:
        uow.experiments.create(stamped)
    else:
        uow.experiments.save(stamped)
    uow.experiments.record_event(event)
    return stamped


def transition_experiment(uow: UnitOfWork, experiment_id: str, command: Command, actor: Actor,
                          change: Change | None = None, *, allowed_from: frozenset[ExperimentStatus] | None = None,
                          ending_plan_command: PlanCommand = PlanCommand.CLOSE, now: datetime | None = None
                          ) -> OfferExperiment:
    """One lifecycle step inside ``uow``: read, check who acts, plan the transition, write.

    ``change(experiment, transition, now)`` returns (field updates, event payload); ``allowed_from``
    narrows the table (the kill-switch's "*" kills only RUNNING/PAUSED experiments). A step that ends the
    experiment closes its open rollout plan with ``ending_plan_command`` (CLOSE; abort_rollout: ABORT).
    """
    return transition_experiment_and_plan(uow, experiment_id, command, actor, change, allowed_from=allowed_from,
                                          ending_plan_command=ending_plan_command, now=now)[0]


def transition_experiment_and_plan(uow: UnitOfWork, experiment_id: str, command: Command, actor: Actor,
                                   change: Change | None = None, *,
                                   allowed_from: frozenset[ExperimentStatus] | None = None,
                                   ending_plan_command: PlanCommand = PlanCommand.CLOSE, now: datetime | None = None
                                   ) -> tuple[OfferExperiment, RolloutPlan | None]:
    """``transition_experiment``, also returning the plan as this step left it (None when untouched)."""
    experiment = uow.experiments.get(experiment_id)
    check_actor(command, actor, author=experiment.author, approvers=experiment.approvers)
    if allowed_from is not None and experiment.status not in allowed_from:
        raise FailedPrecondition(f"The experiment is {experiment.status.value}.")
    transition = plan_transition(command, experiment.status)
    plan = uow.plans.find(experiment_id) if transition.ends else None  # every read before the first write
    now = now or utcnow()
    updates, payload = change(experiment, transition, now) if change else ({}, {})
    after = experiment.model_copy(update={"status": transition.to_status, **updates})
    committed = write_experiment(uow, experiment, after, transition, actor.name, now, payload)
    if plan is None or not is_open(plan.status):
        return committed, None
    step = plan_step(ending_plan_command, plan.status, plan.current_stage_index, len(plan.stages),
                     experiment_status=experiment.status,
                     experiment_completed=committed.status is ExperimentStatus.COMPLETED)
    reason = updates.get("status_reason") if ending_plan_command is PlanCommand.ABORT else None
    closed = write_plan_step(uow, plan, step, None, actor.name, now,
                             reason=reason or f"the experiment is {committed.status.value}")
    return committed, closed


def write_plan(uow: UnitOfWork, plan: RolloutPlan, event: RolloutEvent) -> None:
    """The plan and its event ``rolloutEvents/{experimentId}_{planVersion:06d}`` (created: collisions abort)."""
    uow.plans.save(plan)
    uow.plans.record_event(event)


def new_plan_version(plan: RolloutPlan, event_type: str, actor: str, now: datetime, **fields: Any) -> RolloutPlan:
    version = plan.version + 1
    return plan.model_copy(update={
        **fields, "version": version, "last_change": LastChange(action=event_type, actor=actor, at=now, version=version),
    })


def write_plan_step(uow: UnitOfWork, plan: RolloutPlan, step: PlanTransition, experiment: OfferExperiment | None,
                    actor: str, now: datetime, *, reason: str | None = None, tick: str | None = None,
                    evidence: dict[str, Any] | None = None) -> RolloutPlan:
    """Apply ``step`` to ``plan``: the plan (version + 1), its event, and — when the stage moves and an
    experiment is given — the experiment's coverage and stage index (version + 1, its own event).

    ``experiment=None``: the coverage is not this step's to move (closing the plan of an experiment that
    ended keeps the coverage as it was: nobody is served an ended experiment's treatment anyway; the start
    and the abort set the coverage in the experiment's own transition)."""
    stages = plan.stages
    from_stage = stages[step.from_index].percentage if step.from_index is not None else None
    to_stage = stages[step.to_index].percentage if step.to_index is not None else None
    fields: dict[str, Any] = {"status": step.to_status, "current_stage_index": step.to_index, "status_reason": reason}
    if step.moves_stage:
        fields["stage_entered_at"] = now
    after = new_plan_version(plan, step.event_type, actor, now, **fields)
    event = RolloutEvent(experiment_id=plan.experiment_id, event_type=step.event_type, actor=actor,
                         from_stage=from_stage, to_stage=to_stage, reason=reason, version=after.version,
                         occurred_at=now, tick=tick, evidence=evidence)
    if step.moves_stage and experiment is not None and to_stage is not None:
        move = plan_transition(Command.MOVE_STAGE, experiment.status, event_type=step.event_type)
        moved = experiment.model_copy(update={"coverage": to_stage, "stage_index": step.to_index})
        write_experiment(uow, experiment, moved, move, actor, now,
                         {"coverage": to_stage, "stageIndex": step.to_index, "fromCoverage": experiment.coverage,
                          "rolloutPlanVersion": after.version})
    write_plan(uow, after, event)
    return after

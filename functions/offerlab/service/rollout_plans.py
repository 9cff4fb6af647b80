"""Rollout plans: their shape, ``create_rollout_plan``, and putting a plan at its first stage when the
experiment starts. The rollout controller (service/rollouts.py, issue 7) builds on these helpers.

Default stages 1, 5, 10, 25, 50 % (API.md §3); default per-stage requirements (docs/lifecycle.md):
at least ``DEFAULT_MIN_HOURS_AT_STAGE`` hours and ``DEFAULT_MIN_EXPOSURES_PER_ARM`` exposures in each of
CONTROL and TREATMENT, no sample-ratio mismatch, no guardrail violation, no open (unacknowledged) alert
(docs/rollout.md; judged by domain/rollout.py).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from offerlab.api.auth import Caller
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition, InvalidArgument
from offerlab.domain.lifecycle import Command, check_actor
from offerlab.domain.types import ExperimentStatus, RolloutStatus
from offerlab.store import experiments as experiments_repo
from offerlab.store import rollouts as repo
from offerlab.store.documents import LastChange, RolloutEvent, RolloutPlan, RolloutStage
from offerlab.store.transaction import run_in_transaction

DEFAULT_STAGES = (1.0, 5.0, 10.0, 25.0, 50.0)
DEFAULT_MIN_HOURS_AT_STAGE = 24.0
DEFAULT_MIN_EXPOSURES_PER_ARM = 100

# A plan may be (re)configured until the experiment starts; it then governs the running rollout.
CONFIGURABLE = frozenset({ExperimentStatus.DRAFT, ExperimentStatus.PENDING_APPROVAL, ExperimentStatus.APPROVED})


def normalise_stages(stages: Iterable[Any] | None) -> list[RolloutStage]:
    """Numbers or ``{percentage, ...requirements}`` objects → stages with every requirement filled in.

    Percentages must be strictly increasing within (0, 100] (raising coverage only adds users, API.md §2).
    """
    out: list[RolloutStage] = []
    for raw in (stages if stages is not None else DEFAULT_STAGES):
        if isinstance(raw, (int, float)):
            fields: dict[str, Any] = {"percentage": float(raw)}
        elif isinstance(raw, dict):
            fields = dict(raw)
        else:  # an api StageIn
            fields = {k: v for k, v in raw.model_dump().items() if v is not None}
        out.append(RolloutStage(
            percentage=float(fields["percentage"]),
            min_hours_at_stage=fields.get("min_hours_at_stage", DEFAULT_MIN_HOURS_AT_STAGE),
            min_exposures_per_arm=fields.get("min_exposures_per_arm", DEFAULT_MIN_EXPOSURES_PER_ARM),
            require_no_srm=fields.get("require_no_srm", True),
            require_no_guardrail_violation=fields.get("require_no_guardrail_violation", True),
            require_no_open_issues=fields.get("require_no_open_issues", True),
        ))
    problems = [{"path": f"stages.{i}", "message": "must be above the previous stage and within (0, 100]"}
                for i, stage in enumerate(out)
                if not 0 < stage.percentage <= 100 or (i > 0 and stage.percentage <= out[i - 1].percentage)]
    if problems:
        raise InvalidArgument("The request is invalid.", {"fields": problems})
    return out


def rollout_event(plan: RolloutPlan, event_type: str, actor: str, now: datetime, from_stage: float | None,
                  to_stage: float | None, reason: str | None = None) -> RolloutEvent:
    return RolloutEvent(experiment_id=plan.experiment_id, event_type=event_type, actor=actor, from_stage=from_stage,
                        to_stage=to_stage, reason=reason, version=plan.version, occurred_at=now)


def write_plan(transaction: Any, plan: RolloutPlan, event: RolloutEvent) -> None:
    """The plan and its event ``rolloutEvents/{experimentId}_{planVersion:06d}`` (created: collisions abort)."""
    transaction.set(repo.plan_ref(plan.experiment_id), plan.to_firestore())
    transaction.create(repo.rollout_event_ref(plan.experiment_id, plan.version), event.to_firestore())


def begin_first_stage(plan: RolloutPlan, actor: str, now: datetime) -> tuple[RolloutPlan, RolloutEvent]:
    """The plan ACTIVE at stage 0 (the experiment's start, in the same transaction)."""
    if plan.status != RolloutStatus.PLANNED:
        raise FailedPrecondition(f"The rollout plan is {plan.status.value}, not PLANNED.")
    version = plan.version + 1
    started = plan.model_copy(update={
        "status": RolloutStatus.ACTIVE, "current_stage_index": 0, "stage_entered_at": now, "version": version,
        "last_change": LastChange(action="ROLLOUT_STARTED", actor=actor, at=now, version=version),
    })
    return started, rollout_event(started, "ROLLOUT_STARTED", actor, now, None, started.stages[0].percentage)


def create_rollout_plan(caller: Caller, request: Any) -> RolloutPlan:
    """Configure (or, before the start, replace) the experiment's plan; author or admin only."""
    from offerlab.service.experiments import actor_of  # noqa: PLC0415 - avoids an import cycle

    stages = normalise_stages(request.stages)
    actor = actor_of(caller)

    def body(transaction: Any) -> RolloutPlan:
        experiment = experiments_repo.get_experiment(request.experiment_id, transaction)
        check_actor(Command.UPDATE, actor, author=experiment.author, approvers=experiment.approvers)
        if experiment.status not in CONFIGURABLE:
            raise FailedPrecondition(f"The rollout plan cannot change once the experiment is {experiment.status.value}.")
        existing = repo.find_plan(request.experiment_id, transaction)
        if existing is not None and existing.status != RolloutStatus.PLANNED:
            raise FailedPrecondition(f"The rollout plan is {existing.status.value}; it can no longer be replaced.")
        now = utcnow()
        version = (existing.version if existing else 0) + 1
        action = "ROLLOUT_PLAN_REPLACED" if existing else "ROLLOUT_PLAN_CREATED"
        plan = RolloutPlan(
            experiment_id=experiment.experiment_id, stages=stages, auto_progress=request.auto_progress,
            pause_on_violation=request.pause_on_violation, rollback_on_failure=request.rollback_on_failure,
            status=RolloutStatus.PLANNED, version=version,
            last_change=LastChange(action=action, actor=actor.name, at=now, version=version),
        )
        write_plan(transaction, plan, rollout_event(plan, action, actor.name, now, None, None))
        return plan

    return run_in_transaction(body)

"""Rollout plans: their shape and ``create_rollout_plan`` (the experiment's start puts the plan at its first
stage: service/experiments.py; the controller moves it on: service/rollouts.py).

Default stages 1, 5, 10, 25, 50 % (API.md §3); default per-stage requirements (docs/lifecycle.md):
at least ``DEFAULT_MIN_HOURS_AT_STAGE`` hours and ``DEFAULT_MIN_EXPOSURES_PER_ARM`` exposures in each of
CONTROL and TREATMENT, no sample-ratio mismatch, no guardrail violation, no open (unacknowledged) alert
(docs/rollout.md; judged by domain/rollout.py).
"""
from __future__ import annotations

from typing import Any, Iterable

from offerlab.domain.actors import Caller, actor_of
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition, InvalidArgument
from offerlab.domain.lifecycle import Command, check_actor
from offerlab.domain.rollout_plan import EVENT_TYPES, PlanCommand, plan_step
from offerlab.domain.types import ExperimentStatus, RolloutStatus
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import write_plan
from offerlab.store.documents import LastChange, RolloutEvent, RolloutPlan, RolloutStage

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


def create_rollout_plan(store: Store, caller: Caller, request: Any) -> RolloutPlan:
    """Configure (or, before the start, replace) the experiment's plan; author or admin only."""
    stages = normalise_stages(request.stages)
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> RolloutPlan:
        experiment = uow.experiments.get(request.experiment_id)
        check_actor(Command.UPDATE, actor, author=experiment.author, approvers=experiment.approvers)
        if experiment.status not in CONFIGURABLE:
            raise FailedPrecondition(f"The rollout plan cannot change once the experiment is {experiment.status.value}.")
        existing = uow.plans.find(request.experiment_id)
        command = PlanCommand.CREATE
        if existing is not None:
            command = plan_step(PlanCommand.REPLACE, existing.status, existing.current_stage_index,
                                len(existing.stages), experiment_status=experiment.status).command
        now = utcnow()
        version = (existing.version if existing else 0) + 1
        event_type = EVENT_TYPES[command]
        plan = RolloutPlan(
            experiment_id=experiment.experiment_id, stages=stages, auto_progress=request.auto_progress,
            pause_on_violation=request.pause_on_violation, rollback_on_failure=request.rollback_on_failure,
            status=RolloutStatus.PLANNED, version=version,
            last_change=LastChange(action=event_type, actor=actor.name, at=now, version=version),
        )
        write_plan(uow, plan, RolloutEvent(experiment_id=plan.experiment_id, event_type=event_type, actor=actor.name,
                                           version=version, occurred_at=now))
        return plan

    return store.transaction(body)

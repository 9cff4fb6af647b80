"""Request models of the rollout callables (API.md §3, Rollouts): the plan and the controller's commands."""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from offerlab.api.models import ApiModel, Id, Percentage, Reason

StagePercentage = Annotated[Percentage, Field(gt=0, le=100)]


class StageIn(ApiModel):
    """One stage with requirements that override the defaults of docs/lifecycle.md."""

    percentage: StagePercentage
    min_hours_at_stage: Annotated[float, Field(ge=0, le=24 * 90, allow_inf_nan=False)] | None = None
    min_exposures_per_arm: Annotated[int, Field(ge=0, le=100_000_000)] | None = None
    require_no_srm: bool | None = None
    require_no_guardrail_violation: bool | None = None
    require_no_open_issues: bool | None = None


class CreateRolloutPlan(ApiModel):
    experiment_id: Id
    stages: Annotated[list[Union[StagePercentage, StageIn]], Field(min_length=1, max_length=20)] | None = None
    auto_progress: bool = False
    pause_on_violation: bool = True
    rollback_on_failure: bool = True


# --- the rollout controller (docs/rollout.md) -----------------------------------------------------------

class RolloutRef(ApiModel):
    experiment_id: Id


class RolloutWithReason(ApiModel):
    experiment_id: Id
    reason: Reason

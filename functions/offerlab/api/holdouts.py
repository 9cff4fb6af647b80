"""Request models of the holdout callables (API.md §3, Holdouts)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from offerlab.api.models import MAX_LIST, ApiModel, Id, Name, Percentage, Placement, Reason, Text, UserId
from offerlab.domain.metrics import Metric
from offerlab.domain.types import OfferType, SpilloverAction, SpilloverChannel

# 0 < p <= 50, resolution 0.01 (a basis point).
CohortPercentage = Annotated[Percentage, Field(gt=0, le=50)]


class CohortScopeIn(ApiModel):
    """API.md §10: omitted or empty = global. An unknown offer type is refused (``scope.offerTypes.N``)."""

    placements: list[Placement] = Field(default_factory=list, max_length=MAX_LIST)
    offer_types: list[OfferType] = Field(default_factory=list, max_length=len(OfferType))


class CreateHoldoutCohort(ApiModel):
    name: Name
    percentage: CohortPercentage
    description: Text = ""
    spillover_policy: dict[SpilloverChannel, SpilloverAction] | None = None
    scope: CohortScopeIn | None = None


class CohortRef(ApiModel):
    cohort_id: Id


class UpdateHoldoutCohort(ApiModel):
    """Edit a DRAFT cohort; the salt never changes, and a frozen cohort refuses every edit."""

    cohort_id: Id
    name: Name | None = None
    percentage: CohortPercentage | None = None
    description: Text | None = None
    spillover_policy: dict[SpilloverChannel, SpilloverAction] | None = None
    scope: CohortScopeIn | None = None


class RetireHoldoutCohort(ApiModel):
    cohort_id: Id
    reason: Reason


class IsUserInHoldout(ApiModel):
    user_id: UserId | None = None


class CheckSpillover(ApiModel):
    from_user_id: UserId
    to_user_id: UserId
    channel: SpilloverChannel
    experiment_id: Id | None = None


class AnalyzeHoldout(ApiModel):
    cohort_id: Id
    metric: Metric

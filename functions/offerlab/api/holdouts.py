"""Request models of the holdout callables (API.md §3, Holdouts)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from offerlab.api.models import ApiModel, Id, Name, Percentage, Text
from offerlab.domain.types import SpilloverAction, SpilloverChannel


class CreateHoldoutCohort(ApiModel):
    name: Name
    # 0 < p <= 50, resolution 0.01 (a basis point).
    percentage: Annotated[Percentage, Field(gt=0, le=50)]
    description: Text = ""
    spillover_policy: dict[SpilloverChannel, SpilloverAction] | None = None


class CohortRef(ApiModel):
    cohort_id: Id

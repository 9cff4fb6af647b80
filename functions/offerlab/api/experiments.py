"""Request models of the experiment callables and get_offer (API.md §3, Experiments)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from offerlab.api.models import MAX_LIST, ApiModel, Id, JsonObject, Name, Placement, Reason, Region, Text
from offerlab.domain.eligibility import Audience
from offerlab.domain.iso import COUNTRIES
from offerlab.domain.metrics import Metric
from offerlab.domain.types import Direction, KpiType, OfferType, ShipArm, ViolationAction


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (RFC 3339)")
    return value


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254,
                                         pattern=r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class HypothesisIn(ApiModel):
    statement: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    expected_impact: Text = ""
    risks_identified: list[Text] = Field(default_factory=list, max_length=MAX_LIST)
    success_criteria: list[Text] = Field(default_factory=list, max_length=MAX_LIST)


class KpiIn(ApiModel):
    name: Name
    type: KpiType
    metric: Metric
    baseline_value: Finite | None = None
    target_value: Finite | None = None
    threshold: Finite | None = None
    direction: Direction


class GuardrailIn(ApiModel):
    kpi_name: Name
    metric: Metric
    max_threshold: Finite | None = None
    min_threshold: Finite | None = None
    violation_action: ViolationAction

    @model_validator(mode="after")
    def _some_threshold(self) -> "GuardrailIn":
        if self.max_threshold is None and self.min_threshold is None:
            raise ValueError("a guardrail needs maxThreshold or minThreshold")
        if self.max_threshold is not None and self.min_threshold is not None and self.min_threshold > self.max_threshold:
            raise ValueError("minThreshold is above maxThreshold")
        return self


# Treatment share of the enrolled users: strictly between 0 and 100 (both arms non-empty), basis points.
def _treatment(value: float) -> float:
    if not 0 < value < 100:
        raise ValueError("must be above 0 and below 100")
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError("percentages have a resolution of 0.01")
    return value


TreatmentPercentage = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_treatment)]


# The placement's share an experiment may enroll: 0 < p <= 100, basis points (API.md §10).
def _traffic(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError("must be above 0 and at most 100")
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError("percentages have a resolution of 0.01")
    return value


TrafficPercentage = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_traffic)]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("approvers must be unique")
    return values


Approvers = Annotated[list[Email], Field(min_length=1, max_length=20), AfterValidator(_unique)]


def _unique_regions(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("a region is listed twice")
    return values


RegionList = Annotated[list[Region], Field(max_length=len(COUNTRIES)), AfterValidator(_unique_regions)]


class RegionsIn(ApiModel):
    """Where the experiment may enrol users (API.md §13, domain/eligibility.py): ``allow`` (empty: every
    region not denied) and ``deny``; ISO 3166-1 alpha-2, never both for one code."""

    allow: RegionList = Field(default_factory=list)
    deny: RegionList = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> "RegionsIn":
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"allowed and denied at once: {', '.join(both)}")
        return self


class ExperimentFields(ApiModel):
    """Every field of create_experiment, all optional: the shape of update_experiment's edits."""

    name: Name | None = None
    description: Text | None = None
    hypothesis: HypothesisIn | None = None
    kpis: list[KpiIn] | None = Field(default=None, max_length=MAX_LIST)
    guardrails: list[GuardrailIn] | None = Field(default=None, max_length=MAX_LIST)
    holdout_cohort_id: Id | None = None
    treatment_percentage: TreatmentPercentage | None = None
    offer_type: OfferType | None = None
    offer_config: JsonObject | None = None
    control_config: JsonObject | None = None
    planned_start_date: UtcDateTime | None = None
    planned_end_date: UtcDateTime | None = None
    approvers: Approvers | None = None
    placement: Placement | None = None
    traffic_percentage: TrafficPercentage | None = None
    regions: RegionsIn | None = None
    audience: Audience | None = None


class CreateExperiment(ApiModel):
    name: Name
    description: Text = ""
    hypothesis: HypothesisIn
    kpis: list[KpiIn] = Field(min_length=1, max_length=MAX_LIST)
    guardrails: list[GuardrailIn] = Field(default_factory=list, max_length=MAX_LIST)
    holdout_cohort_id: Id
    treatment_percentage: TreatmentPercentage
    offer_type: OfferType
    offer_config: JsonObject
    control_config: JsonObject = Field(default_factory=dict)
    planned_start_date: UtcDateTime
    planned_end_date: UtcDateTime
    approvers: Approvers
    placement: Placement = "default"
    traffic_percentage: TrafficPercentage = 100.0
    regions: RegionsIn | None = None
    audience: Audience | None = None  # None: the offer type's default (domain/eligibility.py)

    @model_validator(mode="after")
    def _dates(self) -> "CreateExperiment":
        if self.planned_end_date <= self.planned_start_date:
            raise ValueError("plannedEndDate must be after plannedStartDate")
        return self


class UpdateExperiment(ExperimentFields):
    experiment_id: Id

    @model_validator(mode="after")
    def _some_edit(self) -> "UpdateExperiment":
        if not self.model_fields_set - {"experiment_id"}:
            raise ValueError("name at least one field to change")
        return self


class ApproveExperiment(ApiModel):
    experiment_id: Id
    comment: Text | None = None


class ExperimentWithReason(ApiModel):
    experiment_id: Id
    reason: Reason


class ShipExperiment(ApiModel):
    experiment_id: Id
    arm: ShipArm
    reason: Reason


UnshipExperiment = ExperimentWithReason

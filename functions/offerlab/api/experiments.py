"""Request models of the experiment callables and get_offer (API.md §3, Experiments)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from offerlab.api.models import MAX_LIST, ApiModel, Id, JsonObject, Name, Placement, Reason, Region, Text
from offerlab.domain.eligibility import Audience
from offerlab.domain.iso import COUNTRIES
from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind
from offerlab.domain.types import Direction, KpiType, OfferType, ShipArm, ViolationAction


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (RFC 3339)")
    return value


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254,
                                         pattern=r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


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
    # A GUARDRAIL KPI's tolerated relative change against CONTROL (0.05 = 5 %, API.md §11).
    threshold: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    direction: Direction
    violation_action: ViolationAction | None = None  # GUARDRAIL KPIs: what a breach does (default PAUSE)

    @model_validator(mode="after")
    def _crossable(self) -> "KpiIn":
        if self.type is KpiType.GUARDRAIL and self.direction is Direction.INCREASE and (self.threshold or 0) >= 1:
            raise ValueError("a metric cannot fall by 100 % or more: threshold must be below 1")
        return self


# Percent, resolution 0.01 like every percentage of the API; below 100 so "falls by more than it" can happen.
RelativeDelta = Annotated[float, Field(gt=0, lt=100, allow_inf_nan=False)]


class GuardrailIn(ApiModel):
    kpi_name: Name
    metric: Metric
    max_threshold: Finite | None = None
    min_threshold: Finite | None = None
    max_relative_delta: RelativeDelta | None = None
    violation_action: ViolationAction

    @model_validator(mode="after")
    def _some_threshold(self) -> "GuardrailIn":
        if self.max_threshold is None and self.min_threshold is None and self.max_relative_delta is None:
            raise ValueError("a guardrail needs maxThreshold, minThreshold or maxRelativeDelta")
        if self.max_threshold is not None and self.min_threshold is not None and self.min_threshold > self.max_threshold:
            raise ValueError("minThreshold is above maxThreshold")
        return self


def _caps(value: dict[Metric, float]) -> dict[str, float]:
    """Winsorizing caps of the streamed statistics: positive, finite, on mean metrics (a proportion is
    0/1 and a ratio's parts are counts: nothing to cap)."""
    out = {}
    for metric, cap in value.items():
        if METRIC_KINDS[metric] is not MetricKind.MEAN:
            raise ValueError(f"{metric.value} is not a mean metric: only net_ltv and arpu take a cap")
        out[metric.value] = cap
    return out


PositiveCap = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
MetricCaps = Annotated[dict[Metric, PositiveCap], Field(max_length=len(Metric)), AfterValidator(_caps)]


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
    metric_caps: MetricCaps | None = None
    expected_daily_users: Positive | None = None
    primary_metric_std_dev: Positive | None = None


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
    metric_caps: MetricCaps = Field(default_factory=dict)
    # The power plan's inputs (service/planning.py): the expected CONTROL + TREATMENT users per day, and the
    # PRIMARY metric's per-user standard deviation (a mean or ratio metric; a proportion's comes from its
    # baseline and target).
    expected_daily_users: Positive | None = None
    primary_metric_std_dev: Positive | None = None

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


class AcknowledgeAlert(ApiModel):
    experiment_id: Id
    alert_id: Id
    comment: Reason

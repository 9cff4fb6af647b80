"""Typed models of the stored documents (API.md §8), camelCase in Firestore like on the wire.

These describe what the services write; ``extra="allow"`` keeps documents readable when a later
version adds fields. Times are ``datetime`` (stored as Firestore timestamps). Enumerations live in
``offerlab.domain.types`` so the pure domain can use them too.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from offerlab.domain.types import (
    CohortStatus, ExperimentStatus, OfferType, RolloutStatus, SpilloverAction, SpilloverChannel,
)


class Document(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_firestore(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python", exclude_none=False)

    @classmethod
    def from_firestore(cls, data: dict[str, Any]):
        return cls.model_validate(data)


class LastChange(Document):
    """Stamped by every service write, so the ledger trigger can tell a change made through the
    functions (version advanced by one, action named) from an edit made by hand in the console."""

    action: str
    actor: str
    at: datetime
    version: int


class HoldoutCohort(Document):  # holdoutCohorts/{cohortId}
    cohort_id: str
    name: str
    description: str = ""
    percentage: float
    salt: str
    status: CohortStatus
    spillover_policy: dict[SpilloverChannel, SpilloverAction]
    created_by: str
    created_at: datetime
    frozen_at: datetime | None = None
    frozen_by: str | None = None
    retired_at: datetime | None = None
    version: int = 1
    last_change: LastChange | None = None
    # Added by holdouts (issue 4; docs/holdouts.md): who retired it and why (admin only).
    retired_by: str | None = None
    retirement_reason: str | None = None


class HoldoutAssignment(Document):  # holdoutAssignments/{cohortId}_{userId}: written once
    cohort_id: str
    user_id: str
    in_holdout: bool
    bucket: int
    assigned_at: datetime


class HoldoutSpilloverEvent(Document):  # holdoutSpilloverEvents/{auto}
    from_user_id: str
    to_user_id: str
    channel: SpilloverChannel
    experiment_id: str | None = None
    violation: bool
    action: SpilloverAction
    reason: str
    cohort_ids: list[str] = Field(default_factory=list)
    actor: str
    recorded_at: datetime
    # Added by holdouts (issue 4; docs/holdouts.md): what the contamination trigger acts on.
    contaminated_cohort_ids: list[str] = Field(default_factory=list)  # recipient contaminated in these
    contaminates_experiment: bool = False  # recipient (CONTROL/HOLDOUT of experimentId) contaminated for it
    from_arm: str | None = None            # arms in experimentId, when one was given
    to_arm: str | None = None


class Hypothesis(Document):
    statement: str
    expected_impact: str = ""
    risks_identified: list[str] = Field(default_factory=list)
    success_criteria: list[str] = Field(default_factory=list)


class Kpi(Document):
    name: str
    type: str
    metric: str
    baseline_value: float | None = None
    target_value: float | None = None
    threshold: float | None = None
    direction: str


class Guardrail(Document):
    kpi_name: str
    metric: str
    max_threshold: float | None = None
    min_threshold: float | None = None
    violation_action: str


class Approval(Document):
    approver: str
    approved_at: datetime
    comment: str | None = None


class KillSwitch(Document):
    """Whether the experiment obeys the experiment-kill-switch topic (launch checklist: 'kill-switch subscribed')."""

    enabled: bool = True
    subscribed_at: datetime | None = None


class OfferExperiment(Document):  # offerExperiments/{experimentId}
    experiment_id: str
    name: str
    description: str = ""
    hypothesis: Hypothesis
    kpis: list[Kpi]
    guardrails: list[Guardrail]
    holdout_cohort_id: str
    treatment_percentage: float
    offer_type: OfferType
    offer_config: dict[str, Any]
    control_config: dict[str, Any] = Field(default_factory=dict)
    planned_start_date: datetime
    planned_end_date: datetime
    approvers: list[str]
    approvals: dict[str, Approval] = Field(default_factory=dict)  # keyed by approver email
    author: str
    salt: str
    status: ExperimentStatus
    coverage: float | None = None      # current rollout stage, percent; None before the rollout starts
    stage_index: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    created_at: datetime
    version: int = 1
    last_change: LastChange | None = None
    # Added by the lifecycle (issue 5): optional so older documents still read.
    kill_switch: KillSwitch | None = None  # None reads as enabled (the default at creation)
    status_reason: str | None = None       # why it was last paused, killed or rejected


class ExperimentSnapshot(Document):  # experimentSnapshots/{experimentId}_{tick}
    experiment_id: str
    taken_at: datetime
    exposures: dict[str, int]
    metrics: dict[str, dict[str, dict[str, float]]]  # metric -> arm -> sufficient statistics
    tick_id: str | None = None       # the tick (YYYYMMDDTHHMMSSZ), also the id's suffix
    status: str | None = None        # the experiment's status when taken
    coverage: float | None = None    # and its coverage


class ExperimentEvent(Document):  # experimentEvents/{experimentId}_{version}: one per transition
    experiment_id: str
    event_type: str
    actor: str
    from_status: ExperimentStatus | None = None
    to_status: ExperimentStatus | None = None
    version: int
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime


class BiasAdjustment(Document):
    type: str
    affected_user_count: int
    severity: str
    by_arm: dict[str, int]


class ExperimentAnalysis(Document):  # experimentAnalyses/{analysisId}: immutable
    analysis_id: str
    experiment_id: str
    metric: str
    raw_percent_change: float | None
    corrected_percent_change: float | None
    p_value: float | None
    confidence_interval: list[float | None]
    sample_sizes: dict[str, int]
    srm_p_value: float | None
    bias_adjustments: list[BiasAdjustment]
    data_quality: str
    recommendation: str
    method: str
    inputs_digest: str
    created_by: str
    created_at: datetime


class RolloutStage(Document):
    percentage: float
    min_hours_at_stage: float
    min_exposures_per_arm: int
    require_no_srm: bool = True
    require_no_guardrail_violation: bool = True
    require_no_open_issues: bool = True  # added by the rollout controller (issue 7; docs/rollout.md)


class RolloutPlan(Document):  # rolloutPlans/{experimentId}
    experiment_id: str
    stages: list[RolloutStage]
    auto_progress: bool
    pause_on_violation: bool
    rollback_on_failure: bool
    status: RolloutStatus
    current_stage_index: int | None = None
    stage_entered_at: datetime | None = None
    version: int = 1
    last_change: LastChange | None = None
    # Added by the rollout controller (issue 7; docs/rollout.md): why it was last paused/rolled back/aborted.
    status_reason: str | None = None


class RolloutEvent(Document):  # rolloutEvents/{experimentId}_{version}
    experiment_id: str
    event_type: str
    actor: str
    from_stage: float | None = None
    to_stage: float | None = None
    reason: str | None = None
    version: int
    occurred_at: datetime
    # Added by the rollout controller (issue 7): the sweep tick that acted, and the evidence it judged.
    tick: str | None = None
    evidence: dict[str, Any] | None = None


class LedgerEntry(Document):  # experimentLedger/{chainId}_{sequence:012d}; see docs/ledger.md
    experiment_id: str
    sequence: int
    event_type: str
    actor: str
    source_document: str
    payload: dict[str, Any]
    snapshot_digest: str | None = None
    recorded_at: str  # RFC 3339 string: hashed as text, so a re-read entry hashes the same
    prev_hash: str
    hash: str
    # experiment_id is the chain id (an experiment id or "cohort:<cohortId>"); which trigger recorded it:
    source_kind: str | None = None  # EXPERIMENT_EVENT, ROLLOUT_EVENT, ANALYSIS, SPILLOVER_VIOLATION, *_DOCUMENT


# --- Added by the lifecycle, offer delivery and metric ingestion (issue 5; docs/lifecycle.md) -----------


class ExperimentExposure(Document):  # experimentExposures/{experimentId}_{userId}: created once, never updated
    experiment_id: str
    user_id: str
    arm: str                       # HOLDOUT | CONTROL | TREATMENT (NOT_ENROLLED users are not exposed)
    first_exposed_at: datetime
    coverage: float | None         # the rollout stage (percent) when the user was first exposed
    stage_index: int | None = None
    experiment_version: int


class UserMetricTotals(Document):  # userMetricTotals/{experimentId}_{userId}
    experiment_id: str
    user_id: str
    arm: str
    first_exposed_at: datetime
    # Written by blind merges (domain/metrics.py TotalsDelta): a field appears with its first event.
    counts: dict[str, int] = Field(default_factory=dict)    # per event type, events at or after first exposure
    amounts: dict[str, float] = Field(default_factory=dict)  # per money type (purchase, renewal, refund, chargeback)
    sandbox_events: int = 0
    sandbox: bool = False
    pre_exposure: dict[str, float] = Field(default_factory=dict)  # CUPED covariate: purchases before exposure
    last_region: str | None = None
    last_platform: str | None = None
    last_currency: str | None = None
    last_event_micros: int | None = None  # latest counted event (epoch µs: Firestore's Maximum needs a number)
    last_event_at: datetime | None = None  # the same as a timestamp, in documents seeded directly
    updated_at: datetime


class FraudScore(Document):  # fraudScores/{userId}
    user_id: str
    max_score: float
    last_score: float
    reasons: list[str]
    signals: int
    last_occurred_at: datetime
    updated_at: datetime


# --- Added by holdouts (issue 4; docs/holdouts.md) ------------------------------------------------------


class HoldoutContamination(Document):  # holdoutContaminations/{cohortId or experimentId}_{userId}: created once
    user_id: str
    cohort_id: str | None = None       # set for a holdout cohort's contaminated member
    experiment_id: str | None = None   # set for an experiment's contaminated CONTROL/HOLDOUT user
    arm: str | None = None             # the user's arm in experiment_id
    channel: SpilloverChannel
    from_user_id: str
    spillover_event_id: str            # the holdoutSpilloverEvents document that contaminated the user first
    contaminated_at: datetime

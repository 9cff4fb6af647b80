"""Typed models of the stored documents (API.md §8), camelCase in Firestore like on the wire.

One class per document kind, grouped by entity: holdouts, experiments, rollouts, analytics, the ledger.
Each field's docstring says what it is, who writes it and who reads it (``use_attribute_docstrings``
also makes it the field's description). Collection names live in store/collections.py; the layout of
every collection (id scheme, writers, readers) is docs/data-model.md. ``extra="allow"`` keeps a document
readable when a later version adds fields; times are ``datetime`` (Firestore timestamps). Enumerations
live in ``offerlab.domain.types`` so the pure domain uses the same names.
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
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow",
                              use_attribute_docstrings=True)

    def to_firestore(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python", exclude_none=False)

    @classmethod
    def from_firestore(cls, data: dict[str, Any]):
        return cls.model_validate(data)


class LastChange(Document):
    """The stamp of every write made through the functions, so the ledger trigger can tell such a change
    (version advanced by one, action named) from an edit made by hand in the console (docs/ledger.md §7)."""

    action: str
    """The event that made this version (EXPERIMENT_STARTED, ROLLOUT_PROGRESSED, COHORT_FROZEN, ...)."""
    actor: str
    """Who made it: a caller's email (or ``uid:<uid>``), or a system actor's name (the sweeps, the kill switch)."""
    at: datetime
    """When it was written (the tick's time for the sweeps)."""
    version: int
    """The document's version this stamp belongs to; equal to the document's ``version``."""


# --- holdouts ------------------------------------------------------------------------------------------


class CohortScope(Document):
    """Which experiments a cohort covers (API.md §10); empty lists = global. Set at creation (editable
    while DRAFT); read by the coverage rule (domain/program.py) wherever coverage is decided."""

    placements: list[str] = Field(default_factory=list)
    """Placements whose experiments and shipped offers the cohort covers."""
    offer_types: list[OfferType] = Field(default_factory=list)
    """Offer types whose experiments and shipped offers the cohort covers."""


class HoldoutCohort(Document):
    """holdoutCohorts/{cohortId}. Written by service/holdouts.py (create, edit, freeze, retire: one
    transaction each, stamped); read by the cohort cache (store/cohort_cache.py), get_offer's views, the
    launch checklist, spillover checks, the health report and the ledger trigger."""

    cohort_id: str
    """The document id (Firestore auto id)."""
    name: str
    """A person's name for it; editable while DRAFT."""
    description: str = ""
    """Free text; editable while DRAFT."""
    percentage: float
    """Share of all users held out, 0 < p ≤ 50, resolution 0.01: members are ``bucket(salt, userId) <
    round(percentage * 100)`` (API.md §2)."""
    salt: str
    """Random, generated at creation and never changed: with the percentage it fixes membership forever."""
    status: CohortStatus
    """DRAFT (editable, assigns nobody) → FROZEN (immutable, protects experiments) → RETIRED (use stops)."""
    spillover_policy: dict[SpilloverChannel, SpilloverAction]
    """Per channel (referral, gift, shared_wallet): BLOCK or FLAG a benefit passing into the cohort; read by
    check_spillover (domain/spillover.py) and the launch checklist's spillover_isolation item."""
    created_by: str
    """The creator's actor name."""
    created_at: datetime
    """When it was created."""
    frozen_at: datetime | None = None
    """When it was frozen (orders cohortIds[] in is_user_in_holdout answers)."""
    frozen_by: str | None = None
    """Who froze it."""
    retired_at: datetime | None = None
    """When an admin retired it."""
    retired_by: str | None = None
    """Which admin retired it."""
    retirement_reason: str | None = None
    """Why it was retired (recorded in the ledger)."""
    version: int = 1
    """Advanced by one by every write through the functions."""
    last_change: LastChange | None = None
    """The stamp of the write that made ``version``."""
    scope: CohortScope = Field(default_factory=CohortScope)
    """What it covers: global (the default, and what documents written before scopes existed read as), or
    the listed placements and offer types (API.md §10)."""


class HoldoutAssignment(Document):
    """holdoutAssignments/{cohortId}_{userId}: a user evaluated against a frozen cohort, in or out, created
    once (is_user_in_holdout, check_spillover); counted by the health report's aggregation queries."""

    cohort_id: str
    """The cohort evaluated."""
    user_id: str
    """The user evaluated."""
    in_holdout: bool
    """Whether the user is a member (the observed share's numerator)."""
    bucket: int
    """The user's bucket in [0, 10000) under the cohort's salt (reproducible from API.md §2)."""
    assigned_at: datetime
    """When the user was first evaluated."""


class HoldoutSpilloverEvent(Document):
    """holdoutSpilloverEvents/{auto}: every check_spillover call and its decision, created once by
    service/spillover.py; the contamination trigger and the ledger trigger (violations) read it."""

    from_user_id: str
    """Who passes the benefit (referrer, giver, wallet owner)."""
    to_user_id: str
    """Who receives it."""
    channel: SpilloverChannel
    """referral, gift or shared_wallet."""
    experiment_id: str | None = None
    """The experiment the benefit belongs to, when the caller named one."""
    violation: bool
    """Whether the pass breaks isolation (API.md §3 check_spillover)."""
    action: SpilloverAction
    """ALLOW, BLOCK or FLAG: what the caller must do (the strictest policy of the cohorts involved)."""
    reason: str
    """Why, in words."""
    cohort_ids: list[str] = Field(default_factory=list)
    """The frozen cohorts the recipient is a member of."""
    actor: str
    """The backend that asked (service role)."""
    recorded_at: datetime
    """When the check was made."""
    contaminated_cohort_ids: list[str] = Field(default_factory=list)
    """Cohorts in which a FLAGged recipient becomes contaminated (the contamination trigger acts on it)."""
    contaminates_experiment: bool = False
    """A TREATMENT benefit reached a CONTROL/HOLDOUT user of ``experiment_id``: that user is contaminated for it."""
    from_arm: str | None = None
    """The giver's arm in ``experiment_id``, when one was given."""
    to_arm: str | None = None
    """The recipient's arm in ``experiment_id``, when one was given."""


class HoldoutContamination(Document):
    """holdoutContaminations/{cohortId or experimentId}_{userId}: a contaminated user, created once by the
    contamination trigger (service/spillover.py mark_contamination); counted by the health report and
    excluded by analyses (the ``spillover`` bias adjustment)."""

    user_id: str
    """The contaminated user."""
    cohort_id: str | None = None
    """Set for a holdout cohort's contaminated member."""
    experiment_id: str | None = None
    """Set for an experiment's contaminated CONTROL/HOLDOUT user."""
    arm: str | None = None
    """The user's arm in ``experiment_id``."""
    channel: SpilloverChannel | None = None
    """The channel of the first contaminating pass (``cause`` spillover)."""
    from_user_id: str | None = None
    """Who passed the benefit first (``cause`` spillover)."""
    spillover_event_id: str | None = None
    """The holdoutSpilloverEvents document that contaminated the user first (later ones do not overwrite)."""
    contaminated_at: datetime
    """When the record was created."""
    cause: str = "spillover"
    """``spillover`` (the contamination trigger), or ``served`` (get_offer found, at the member's first
    HOLDOUT answer, that a treatment or a shipped offer in the cohort's scope had been served to them)."""
    served_exposure_ids: list[str] = Field(default_factory=list)
    """For ``served``: the exposures (scope ids) that served the treatment or shipped offer."""


# --- experiments ---------------------------------------------------------------------------------------


class Hypothesis(Document):
    """What the experiment expects and why; required by the launch checklist's hypothesis item."""

    statement: str
    """The hypothesis, in one or a few sentences."""
    expected_impact: str = ""
    """The impact expected (free text, e.g. "+15% net LTV")."""
    risks_identified: list[str] = Field(default_factory=list)
    """Risks the approvers should weigh."""
    success_criteria: list[str] = Field(default_factory=list)
    """How success is judged; at least one for the checklist."""


class Kpi(Document):
    """One KPI of the experiment (API.md §3); read by analyses (the KPI family, desired direction) and, for
    GUARDRAIL KPIs, by the guardrail monitor."""

    name: str
    """Its display name."""
    type: str
    """PRIMARY (exactly one), SECONDARY or GUARDRAIL (domain.types.KpiType)."""
    metric: str
    """One of API.md §7's metrics."""
    baseline_value: float | None = None
    """The metric's expected value without the change (planning)."""
    target_value: float | None = None
    """The value the change is expected to reach (planning)."""
    threshold: float | None = None
    """For GUARDRAIL KPIs: the tolerated change, a fraction relative to CONTROL (0.05 = 5 %), on the side
    opposite ``direction`` (MAINTAIN: either side); None reads as 0 (any credible change on the bad side)."""
    direction: str
    """INCREASE, DECREASE or MAINTAIN (domain.types.Direction)."""
    violation_action: str | None = None
    """For GUARDRAIL KPIs: ALERT, PAUSE or KILL when breached; None reads as PAUSE (stop the damage, keep
    the data). Read by the guardrail monitor."""


class Guardrail(Document):
    """One guardrail (API.md §3, §11): a limit on a metric and what its breach does; written by
    create/update_experiment, read by the guardrail monitor (service/guardrails.py) and the rollout gates."""

    kpi_name: str
    """The guardrail's display name."""
    metric: str
    """One of API.md §7's metrics."""
    max_threshold: float | None = None
    """The treatment arm's value must stay at or below this."""
    min_threshold: float | None = None
    """The treatment arm's value must stay at or above this."""
    max_relative_delta: float | None = None
    """Percent: TREATMENT may be worse than CONTROL by at most this (a relative guardrail, API.md §11);
    "worse" is against the metric's desired direction (domain/analysis_rules.desired_direction)."""
    violation_action: str
    """ALERT, PAUSE or KILL (domain.types.ViolationAction); the strongest breached one acts."""


class Approval(Document):
    """One approver's sign-off, kept in ``OfferExperiment.approvals`` under the approver's email."""

    approver: str
    """The approver's email (from their token)."""
    approved_at: datetime
    """When they approved."""
    comment: str | None = None
    """What they said."""


class KillSwitch(Document):
    """Whether the experiment obeys the experiment-kill-switch topic (launch checklist: 'kill-switch subscribed')."""

    enabled: bool = True
    """Obeys the topic (set at creation; a disabled switch blocks the launch)."""
    subscribed_at: datetime | None = None
    """When it was subscribed (the creation time)."""


class OfferExperiment(Document):
    """offerExperiments/{experimentId}. Written only through service/transitions.py ``write_experiment``
    (every lifecycle step, every stage move: version + 1, lastChange, one experimentEvents document); read
    by every use case, get_offer's views (store/experiment_cache.py), the sweeps and the ledger trigger."""

    experiment_id: str
    """The document id (Firestore auto id)."""
    name: str
    """Its display name."""
    description: str = ""
    """Free text."""
    hypothesis: Hypothesis
    """What it expects (the checklist requires a statement and success criteria)."""
    kpis: list[Kpi]
    """Its KPIs: exactly one PRIMARY for the checklist."""
    guardrails: list[Guardrail]
    """Its guardrails: at least one for the checklist."""
    holdout_cohort_id: str
    """The holdout cohort it names; its users get arm HOLDOUT (API.md §2)."""
    treatment_percentage: float
    """Share of enrolled users in TREATMENT, 0 < p < 100 (the arm hash, API.md §2)."""
    offer_type: OfferType
    """PRICE_CHANGE, PAYWALL, PROMO, BUNDLE or TRIAL (the regional policy and analyses read it)."""
    offer_config: dict[str, Any]
    """What TREATMENT users are served by get_offer; never changes while RUNNING or PAUSED."""
    control_config: dict[str, Any] = Field(default_factory=dict)
    """The status quo: what CONTROL, HOLDOUT and NOT_ENROLLED users are served."""
    planned_start_date: datetime
    """When it is planned to start."""
    planned_end_date: datetime
    """When it is planned to end (after the start)."""
    approvers: list[str]
    """Emails whose approval it needs (never the author's)."""
    approvals: dict[str, Approval] = Field(default_factory=dict)
    """Approvals received, by approver email; voided by an edit or a rejection."""
    author: str
    """The creator's email: the only experimenter who may change it (admins too)."""
    salt: str
    """Random, generated at creation and never changed: the coverage and arm hashes use it (API.md §2)."""
    status: ExperimentStatus
    """The lifecycle state (domain/lifecycle.py)."""
    coverage: float | None = None
    """The current rollout stage, percent of the users outside the holdout; None before the start, 0 after
    an abort. Written by the start and by rollout stage moves."""
    stage_index: int | None = None
    """Index of the rollout plan's current stage."""
    started_at: datetime | None = None
    """When it started."""
    ended_at: datetime | None = None
    """When it was completed or killed."""
    created_at: datetime
    """When it was created."""
    kill_switch: KillSwitch | None = None
    """Whether it obeys the kill-switch topic; None (older documents) reads as enabled."""
    status_reason: str | None = None
    """Why it was last paused, killed or rejected (cleared when it resumes or is resubmitted)."""
    metric_caps: dict[str, float] = Field(default_factory=dict)
    """Winsorizing caps of the streamed statistics, per mean metric (net_ltv, arpu): a user's value above
    its cap counts as the cap (docs/monitoring.md). Set by create/update_experiment, so fixed before
    launch; read by metric ingestion (domain/aggregates.py) and the monitors."""
    version: int = 1
    """Advanced by one by every write through the functions."""
    last_change: LastChange | None = None
    """The stamp of the write that made ``version``."""
    placement: str = "default"
    """Where its offer is shown (API.md §10); experiments RUNNING or PAUSED in one placement are mutually
    exclusive. Set at creation (editable before the start); read by the start's allocation and get_offer."""
    traffic_percentage: float = 100.0
    """Share of the placement's users it may enroll, 0 < p ≤ 100: the width of its traffic segments."""
    traffic_segments: list["TrafficSegment"] = Field(default_factory=list)
    """Its layer-bucket segments (domain/placements.py), allocated by the start and kept afterwards (the
    record of who could have been enrolled); read by get_offer's views and spillover checks."""
    covering_cohort_ids: list[str] = Field(default_factory=list)
    """The FROZEN cohorts whose scope included it when it started (API.md §10 coverage), written by the
    start; get_offer holds their members out (minus cohorts since retired). Freezing a cohort that would
    cover it later is refused while it runs (docs/program.md §4), so this list is its coverage."""
    ship: "Ship | None" = None
    """The current (or last) ship request of a COMPLETED experiment: written by ship_experiment, its
    approvals and unship_experiment; read by get_offer (SHIPPED views) and analyze_holdout."""
    regions: "RegionRules | None" = None
    """Where it may enrol users (API.md §13; None: every region the regional policy allows). Set at creation,
    editable before the start; read by get_offer's views (domain/eligibility.py) and the launch checklist."""
    audience: str | None = None
    """NEW_CUSTOMERS or ALL (domain/eligibility.py Audience); None: the offer type's default (NEW_CUSTOMERS
    for PRICE_CHANGE). Set at creation, editable before the start; read by get_offer's views."""
    expected_daily_users: float | None = None
    """The CONTROL + TREATMENT users it expects per day, set at creation (editable before the start): the
    power plan's traffic before any is observed (service/planning.py)."""
    primary_metric_std_dev: float | None = None
    """The PRIMARY metric's per-user standard deviation as planned (a mean or ratio metric)."""
    planning: dict[str, Any] | None = None
    """The power plan from the definition (power and MDE at the planned end, days to 80 % power), computed
    by create/update_experiment (service/planning.py); read by the launch checklist's WARNING item and the
    console. monitor_experiment computes the live one from observed traffic."""


class RegionRules(Document):
    """An experiment's ``regions`` (ISO 3166-1 alpha-2, upper case; never one code in both lists)."""

    allow: list[str] = Field(default_factory=list)
    """If not empty, the only regions it may serve."""
    deny: list[str] = Field(default_factory=list)
    """Regions it may never serve (the regional policy adds its own for the offer type)."""


class TrafficSegment(Document):
    """One range ``[start, end)`` of layer buckets (Firestore arrays cannot hold arrays: a map per segment)."""

    start: int
    """First bucket in the segment."""
    end: int
    """One past the last bucket."""


class Ship(Document):
    """A request to make one arm of a COMPLETED experiment the placement's offer (API.md §10)."""

    arm: str
    """TREATMENT or CONTROL: whose config the placement's users (outside the covering holdouts) get."""
    reason: str
    """Why, as the requester gave it (recorded in the ledger)."""
    requested_by: str
    """The author or admin who asked."""
    requested_at: datetime
    """When."""
    approvals: dict[str, Approval] = Field(default_factory=dict)
    """Ship approvals received, by approver email (the experiment's approvers, four eyes again)."""
    shipped_at: datetime | None = None
    """When the last approval shipped it."""
    covering_cohort_ids: list[str] = Field(default_factory=list)
    """The FROZEN cohorts covering it when it shipped: their members keep the status quo (get_offer)."""
    rejected_by: str | None = None
    """The approver who rejected the request (status back to COMPLETED)."""
    rejection_reason: str | None = None
    """Why it was rejected."""
    unshipped_at: datetime | None = None
    """When an admin unshipped it."""
    unshipped_by: str | None = None
    """Which admin."""
    unship_reason: str | None = None
    """Why."""


class PlacementHolder(Document):
    """An experiment's hold on a placement's layer buckets (``PlacementLayer.holders``)."""

    experiment_id: str
    """The experiment."""
    segments: list[TrafficSegment]
    """Its segments (the same as the experiment's ``trafficSegments``)."""
    since: datetime
    """When it started holding them."""


class PlacementLayer(Document):
    """placementLayers/{placement}: who holds which layer buckets of a placement and what is shipped there.

    The serialisation point of a placement: the start (allocation), the ship approval (one shipped
    experiment at a time) and the unship read and write it in their own transactions, so two racing
    starts cannot take the same buckets. Holders stay listed until a later start prunes them after their
    cooldown (domain/placements.py). Read by get_offer's placement views (store/experiment_cache.py)."""

    placement: str
    """The placement (also the document id)."""
    holders: list[PlacementHolder] = Field(default_factory=list)
    """Experiments that hold or held segments and are not yet pruned (live, cooling down, or ended)."""
    shipped_experiment_id: str | None = None
    """The SHIPPED experiment whose arm the placement serves, or None."""
    version: int = 0
    """Advanced by one by every write."""
    last_change: LastChange | None = None
    """The stamp of the write that made ``version`` (the experiment event it belongs to)."""


class ProgramLock(Document):
    """programLocks/coverage: written by every change of what covers what (a start, a ship approval, a
    cohort freeze or retirement), read by each of them first, so they are serialised: a freeze cannot
    race a start into covering a running experiment unnoticed (docs/program.md §4). Read by nobody else."""

    version: int = 0
    """Advanced by one by every coverage change."""
    last_action: str | None = None
    """The last change (e.g. ``EXPERIMENT_STARTED:<id>``, ``COHORT_FROZEN:<id>``)."""
    at: datetime | None = None
    """When."""


class ExperimentEvent(Document):
    """experimentEvents/{experimentId}_{version:06d}: one per experiment version, created in the same
    transaction as the version (service/transitions.py); the ledger trigger turns it into an entry."""

    experiment_id: str
    """The experiment."""
    event_type: str
    """An ExperimentEventType (domain/lifecycle.py), or the rollout's event for a stage move."""
    actor: str
    """Who acted (LastChange.actor)."""
    from_status: ExperimentStatus | None = None
    """The status before (None for the creation)."""
    to_status: ExperimentStatus | None = None
    """The status after."""
    version: int
    """The experiment version this event made (also the id's suffix)."""
    payload: dict[str, Any] = Field(default_factory=dict)
    """What changed and why (reason, approver, checklist, coverage...), as the ledger records it."""
    occurred_at: datetime
    """When."""


class ExperimentExposure(Document):
    """experimentExposures/{experimentId}_{userId}: a user's first exposure, created once by get_offer and
    never updated; counted per arm by aggregation (monitoring, rollout gates); read by metric ingestion
    (which experiments a user's events count for) and analyses."""

    experiment_id: str
    """The experiment, or ``program:<cohortId>`` for a holdout cohort's program exposure."""
    user_id: str
    """The user."""
    arm: str
    """HOLDOUT, CONTROL or TREATMENT (NOT_ENROLLED users are not exposed); HOLDOUT or PROGRAM on a program
    exposure."""
    first_exposed_at: datetime
    """When get_offer first answered for this user: metrics count from here (API.md §7)."""
    coverage: float | None
    """The rollout stage (percent) when the user was first exposed."""
    stage_index: int | None = None
    """The stage's index."""
    experiment_version: int
    """The experiment version get_offer's view held then."""
    placement: str | None = None
    """The experiment's placement (contamination checks match it against cohort scopes)."""
    offer_type: str | None = None
    """The experiment's offer type (the same)."""
    region: str | None = None
    """The ``region`` get_offer was asked with at the first exposure (ISO 3166-1 alpha-2, upper case), or None."""
    cohort_id: str | None = None
    """Set on a holdout cohort's *program exposure* (``experimentId`` = ``program:<cohortId>``): the user
    got a get_offer answer decided by an experiment or shipped offer the cohort covers (docs/program.md §5).
    Metric ingestion credits the user's events to it like to any exposure; analyze_holdout reads them."""
    in_holdout: bool | None = None
    """On a program exposure: the user is a member of the cohort (arm HOLDOUT; else arm PROGRAM)."""
    served_arm: str | None = None
    """What the first answer served (TREATMENT, CONTROL, SHIPPED, HOLDOUT, NOT_ENROLLED)."""
    reason: str | None = None
    """The first answer's reason (domain/program.py OfferReason), when a rule decided it."""


class OfferRefusal(Document):
    """offerRefusals/{experimentId}_{userId}: a user kept out of an experiment *before* enrolment (API.md §13,
    domain/eligibility.py), created once by get_offer at the first such answer, when the user had no exposure;
    never updated. Its existence keeps the user out for the experiment's life (docs/regions.md §2). Read by
    get_offer (the user's first decision), counted per reason by monitor_experiment (``notEnrolled``)."""

    experiment_id: str
    """The experiment."""
    user_id: str
    """The user."""
    reason: str
    """``region`` (a region it may not serve, or none where it has an allow list) or ``audience`` (an
    existing subscriber of a NEW_CUSTOMERS experiment)."""
    region: str | None = None
    """The region get_offer was asked with then (None: none given)."""
    subscriber_source: str | None = None
    """For ``audience``: what said the user subscribes: ``backend`` (get_offer's ``subscriber`` from the
    service role), ``history`` (ingested purchases and renewals, customerStatus)."""
    placement: str | None = None
    """The experiment's placement."""
    experiment_version: int
    """The experiment version get_offer's view held."""
    refused_at: datetime
    """When."""


class CustomerStatus(Document):
    """customerStatus/{userId}: whether the user has an active subscription, from their ingested history
    (API.md §5 events), written blind by metric ingestion with ``Maximum`` transforms (so deliveries in any
    order and duplicates agree); read by get_offer for NEW_CUSTOMERS experiments (docs/regions.md §2)."""

    user_id: str
    """The user."""
    last_activation_micros: int | None = None
    """The latest purchase or renewal's occurredAt, epoch µs."""
    last_deactivation_micros: int | None = None
    """The latest refund, chargeback or cancellation's occurredAt, epoch µs."""


class PriceServed(Document):
    """priceSeries/{placement}|{region}/served/{day}|{currency}|{amount}|{R|D}: one price get_offer served in a
    placement and region on a UTC day, created at the first such answer (each instance remembers what it
    created: no write per call); never updated. The price history of API.md §13: read by get_offer for the
    reference price of offers shown as a reduction (domain/reference_price.py)."""

    placement: str
    """The placement."""
    region: str
    """The region (ISO 3166-1 alpha-2)."""
    day: str
    """The UTC day it was served, ``YYYY-MM-DD`` (the range the reference-price query reads)."""
    currency: str | None = None
    """The price's currency (ISO 4217) as the offer config gave it, or None."""
    amount: str
    """The price as a decimal string (exact)."""
    discount: bool
    """It was served shown as a reduction (``displayAsDiscount``): never a reference price itself."""
    experiment_id: str | None = None
    """The experiment whose answer first served it that day."""
    arm: str | None = None
    """That answer's arm."""
    first_served_at: datetime
    """When it was first served that day (by the instance that created the document)."""


class ExchangeRates(Document):
    """exchangeRates/{date}_{base}: one day's rates against one base currency, created once by
    set_exchange_rates (admin) and never changed (events already converted with them stay reproducible;
    docs/regions.md §5); read by metric ingestion (conversion) and the ledger trigger (chain
    ``exchange-rates``)."""

    date: str
    """The day the rates apply to, ``YYYY-MM-DD`` (a UTC date)."""
    base: str
    """The base currency (ISO 4217): 1 base = ``rates[C]`` C."""
    rates: dict[str, str]
    """Currency → units per base unit, decimal strings (> 0)."""
    set_by: str
    """The admin who set them."""
    set_at: datetime
    """When."""


# --- rollouts ------------------------------------------------------------------------------------------


class RolloutStage(Document):
    """One stage of a rollout plan and what it must show before the next (docs/rollout.md)."""

    percentage: float
    """The experiment's coverage at this stage; stages strictly increase within (0, 100]."""
    min_hours_at_stage: float
    """Hours the stage must run (on the sweep's clock) before it may progress."""
    min_exposures_per_arm: int
    """Exposed users each of CONTROL and TREATMENT need before it may progress."""
    require_no_srm: bool = True
    """A sample-ratio mismatch blocks progression (and pauses, with pauseOnViolation)."""
    require_no_guardrail_violation: bool = True
    """A guardrail breach blocks progression (and rolls back, with rollbackOnFailure)."""
    require_no_open_issues: bool = True
    """An unacknowledged alert blocks progression."""


class RolloutPlan(Document):
    """rolloutPlans/{experimentId}. Written only through service/transitions.py (``write_plan``,
    ``write_plan_step``: version + 1, lastChange, one rolloutEvents document); read by the start (launch
    checklist), the rollout controller and its sweep (ACTIVE plans)."""

    experiment_id: str
    """The experiment (also the document id)."""
    stages: list[RolloutStage]
    """The stages, in order."""
    auto_progress: bool
    """The sweep progresses a stage that met every requirement."""
    pause_on_violation: bool
    """The sweep pauses on a failed safety gate (SRM, open alert)."""
    rollback_on_failure: bool
    """The sweep rolls back one stage on a guardrail breach."""
    status: RolloutStatus
    """PLANNED → ACTIVE ⇄ PAUSED → COMPLETED / ABORTED (domain/rollout_plan.py)."""
    current_stage_index: int | None = None
    """The stage the plan is at (None while PLANNED)."""
    stage_entered_at: datetime | None = None
    """When the current stage was entered (minimum time at stage counts from here)."""
    status_reason: str | None = None
    """Why it was last paused, rolled back, aborted or closed."""
    version: int = 1
    """Advanced by one by every write through the functions."""
    last_change: LastChange | None = None
    """The stamp of the write that made ``version``."""


class RolloutEvent(Document):
    """rolloutEvents/{experimentId}_{planVersion:06d}: one per plan version, created in the same transaction
    (service/transitions.py); the ledger trigger records it, the audit report draws the stage timeline."""

    experiment_id: str
    """The experiment."""
    event_type: str
    """A RolloutEventType (domain/rollout_plan.py)."""
    actor: str
    """Who acted (a person, or ``rollout_sweep``)."""
    from_stage: float | None = None
    """The coverage before (None before the start)."""
    to_stage: float | None = None
    """The coverage after."""
    reason: str | None = None
    """Why (pause, rollback, abort, close)."""
    version: int
    """The plan version this event made (also the id's suffix)."""
    occurred_at: datetime
    """When (the tick's time for the sweep)."""
    tick: str | None = None
    """The sweep tick that acted (RFC 3339), None for a person's action."""
    evidence: dict[str, Any] | None = None
    """What the step judged: readiness checks, hours at stage, exposures, SRM p-value."""


# --- analytics -----------------------------------------------------------------------------------------


class UserMetricTotals(Document):
    """userMetricTotals/{experimentId}_{userId}: one exposed user's metric sums since first exposure, written
    by metric ingestion and exclusion signals through store/aggregates.py (a compare-and-swap that also
    moves the user's terms in experimentAggregates); a field appears with its first event. Read by
    ingestion itself (the previous state), analyses, the Firestore analysis source and the reconciliation."""

    experiment_id: str
    """The experiment."""
    user_id: str
    """The user."""
    arm: str
    """The user's arm (copied from the exposure)."""
    first_exposed_at: datetime
    """The exposure's time (copied): events from here count."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Events per type at or after first exposure (purchase, renewal, refund, ...)."""
    amounts: dict[str, float] = Field(default_factory=dict)
    """Money per type (purchase, renewal, refund, chargeback) at or after first exposure."""
    sandbox_events: int = 0
    """Sandbox (test-store) events: any excludes the user."""
    sandbox: bool = False
    """Set by the first sandbox event."""
    pre_exposure: dict[str, float] = Field(default_factory=dict)
    """Events before first exposure: the CUPED covariate (purchaseAmount, purchaseCount, events)."""
    last_region: str | None = None
    """The region of the latest delivered event (the regional policy reads it)."""
    last_platform: str | None = None
    """The platform of the latest delivered event."""
    last_currency: str | None = None
    """The currency of the latest delivered event."""
    last_event_micros: int | None = None
    """The latest counted event's time in epoch µs (a number: Firestore's Maximum transform needs one)."""
    last_event_at: datetime | None = None
    """The same as a timestamp, in documents seeded directly (the demo's bulk history)."""
    updated_at: datetime
    """When ingestion last merged into it."""
    excluded_by: dict[str, bool] = Field(default_factory=dict)
    """Exclusions signalled for the user: ``fraud`` (fraud-signals at or above the threshold), ``spillover``
    (a contamination). Set by store/aggregates.py's compare-and-swap, with the move of the user's terms out
    of the kept streamed sums; read by the streamed statistics (bot, sandbox and region are derived from
    the totals themselves)."""


class ExperimentAggregate(Document):
    """experimentAggregates/{experimentId}_{arm}_{shard:02d}: one shard of an arm's streamed sums
    (domain/aggregates.py). Written ONLY by blind ``Increment`` transforms: ``exposures`` in the batch that
    creates an exposure (store/exposures.py), everything else in the batch that changes a user's totals
    (store/aggregates.py). Read by check_guardrails, monitor_experiment, the guardrail sweep, the rollout
    gates, kpi_snapshot and the reconciliation."""

    experiment_id: str
    """The experiment."""
    arm: str
    """CONTROL, TREATMENT or HOLDOUT."""
    shard: int
    """0 … SHARDS − 1: hash of the user id (domain/aggregates.shard_of)."""
    exposures: int = 0
    """Users first exposed in this arm and shard."""
    users: int = 0
    """Of them, users with a totals document (an event, or an exclusion flag)."""
    kept_users: int = 0
    """Of those, users no exclusion removes."""
    exclusions: dict[str, int] = Field(default_factory=dict)
    """Users flagged per exclusion reason (fraud, bot, sandbox, spillover, regional_policy)."""
    metrics: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    """metric → "all" | "kept" → {sumY, sumY2, sumX, sumX2, sumXY}: the sums of the users' (winsorized)
    terms; x is the ratio denominator for ratio metrics, the CUPED covariate otherwise. Users without a
    totals document are counted by the reader in closed form (all-zero values)."""


class FraudScore(Document):
    """fraudScores/{userId}: the fraud system's verdicts on a user (fraud-signals topic, service/metrics.py);
    analyses exclude users at or above the fraud threshold."""

    user_id: str
    """The user."""
    max_score: float
    """The highest score received (0..1)."""
    last_score: float
    """The score of the latest signal (by occurredAt)."""
    reasons: list[str]
    """The union of reasons, at most 50."""
    signals: int
    """How many signals were received."""
    last_occurred_at: datetime
    """When the latest signal occurred."""
    updated_at: datetime
    """When this document was last written."""


class ExperimentSnapshot(Document):
    """experimentSnapshots/{experimentId}_{tickId}: per-arm sufficient statistics at an hourly tick, created
    once by kpi_snapshot's fan-out (service/snapshots.py); dashboards difference consecutive snapshots."""

    experiment_id: str
    """The experiment."""
    taken_at: datetime
    """The tick's time."""
    exposures: dict[str, int]
    """Exposed users per arm."""
    metrics: dict[str, dict[str, dict[str, float]]]
    """metric → arm → sufficient statistics of the kept users (exclusions applied, streamed caps):
    n, Σy, Σy², Σx, Σx², Σxy with x the ratio denominator or, for mean and proportion metrics, the CUPED
    covariate."""
    tick_id: str | None = None
    """The tick (YYYYMMDDTHHMMSSZ), also the id's suffix."""
    status: str | None = None
    """The experiment's status when taken."""
    coverage: float | None = None
    """The experiment's coverage when taken."""


class BiasAdjustment(Document):
    """One exclusion reason an analysis applied (API.md §3 biasAdjustments)."""

    type: str
    """fraud, bot, sandbox, spillover or regional_policy."""
    affected_user_count: int
    """Users it excluded."""
    severity: str
    """How much it matters for the result."""
    by_arm: dict[str, int]
    """Users it excluded per arm (a differential exclusion biases the result)."""


class ExperimentAnalysis(Document):
    """experimentAnalyses/{analysisId}: an analysis, created once by analyze_experiment and never updated;
    the ledger trigger records it, the audit report shows it. Extra fields (the uncapped result, the KPI
    family, the settings...) are stored camelCased beside these (service/analytics.py build_analysis)."""

    analysis_id: str
    """The document id (Firestore auto id)."""
    experiment_id: str
    """The experiment analysed."""
    metric: str
    """The metric analysed (API.md §7)."""
    raw_percent_change: float | None
    """TREATMENT vs CONTROL relative change before any correction, percent."""
    corrected_percent_change: float | None
    """The same after exclusions, winsorizing and CUPED, percent."""
    p_value: float | None
    """The corrected two-sided p-value."""
    confidence_interval: list[float | None]
    """The corrected interval of the relative change, percent [lo, hi]."""
    sample_sizes: dict[str, int]
    """Users kept per arm."""
    srm_p_value: float | None
    """The sample-ratio chi-square p-value over all exposed users."""
    bias_adjustments: list[BiasAdjustment]
    """Every exclusion reason, always all five."""
    data_quality: str
    """HIGH, MEDIUM, LOW or INSUFFICIENT (domain/analysis_rules.py)."""
    recommendation: str
    """What the evidence supports (SHIP, DO_NOT_SHIP, CONTINUE, INVESTIGATE...)."""
    method: str
    """How it was computed (e.g. welch+cuped+winsorized_p99_nonzero+exclusions)."""
    inputs_digest: str
    """sha256 of the canonical inputs: anyone with the same data re-derives it (docs/analytics.md)."""
    created_by: str
    """Who asked for it."""
    created_at: datetime
    """When it was computed."""


class ShippedLift(Document):
    """One shipped experiment in a holdout read-out (``HoldoutAnalysis.shipped_experiments``)."""

    experiment_id: str
    """The SHIPPED experiment the cohort covers."""
    arm: str
    """The arm shipped."""
    shipped_at: datetime | None = None
    """When it shipped."""
    experiment_lift_percent: float | None = None
    """Its own measured lift of the shipped arm vs CONTROL on the read-out's metric, percent (the same
    pure computation as analyze_experiment; 0 when CONTROL itself was shipped)."""
    experiment_lift_se_percent: float | None = None
    """The standard error of that lift, percent (from the corrected confidence interval)."""
    shrunk_lift_percent: float | None = None
    """The lift after empirical-Bayes shrinkage toward 0 (stats/shrinkage.py: the winner's-curse correction)."""


class HoldoutAnalysis(Document):
    """experimentAnalyses/{analysisId} with ``kind`` HOLDOUT: a holdout cohort's read-out (API.md §10),
    created once by analyze_holdout (service/holdout_analysis.py) and never updated. It lives beside the
    experiments' analyses so the ledger's analysis trigger records it, on the cohort's chain
    (``cohort:<cohortId>``, ledger/drafts.py); rules deny clients as for every analysis."""

    analysis_id: str
    """The document id (Firestore auto id)."""
    kind: str = "HOLDOUT"
    """Tells it apart from an experiment's analysis (which has ``experimentId``)."""
    cohort_id: str
    """The cohort read out."""
    metric: str
    """The metric (API.md §7)."""
    holdout_users: int
    """Exposed holdout members kept after the exclusions."""
    comparison_users: int
    """Exposed users outside the holdout kept after the exclusions."""
    holdout_mean: float | None
    """The holdout members' corrected mean (ratio metrics: the ratio)."""
    comparison_mean: float | None
    """The comparison users' corrected mean."""
    lift_percent: float | None
    """Comparison vs holdout, relative, percent: the cumulative effect of everything in scope."""
    confidence_interval: list[float | None]
    """Its interval, percent [lo, hi]."""
    p_value: float | None
    """Two-sided p-value of no cumulative effect."""
    shipped_experiments: list[ShippedLift] = Field(default_factory=list)
    """The SHIPPED experiments the cohort covers, each with its measured and its shrunk lift."""
    method: str
    """How it was computed (the analysis method, the shrinkage method)."""
    inputs_digest: str
    """sha256 of the canonical inputs (as analyze_experiment's)."""
    created_by: str
    """Who asked for it."""
    created_at: datetime
    """When it was computed."""


# --- the ledger ----------------------------------------------------------------------------------------


class LedgerEntry(Document):
    """experimentLedger/{chainId}_{sequence:012d}: one sealed, hash-chained entry (docs/ledger.md); written
    only by the ledger's sequencer (store/ledger.py), read by the audit trail, verification and reports."""

    experiment_id: str
    """The chain id: an experiment id, or ``cohort:<cohortId>`` for a holdout cohort's chain."""
    sequence: int
    """Position in the chain, from 1."""
    event_type: str
    """What happened (the source event's type)."""
    actor: str
    """Who made it happen."""
    source_document: str
    """The Firestore path of the source event or document."""
    payload: dict[str, Any]
    """The source event's content, canonicalised (docs/ledger.md §3)."""
    snapshot_digest: str | None = None
    """sha256 of the source document's state, for document writes."""
    recorded_at: str
    """RFC 3339 text (hashed as text, so a re-read entry hashes the same)."""
    prev_hash: str
    """The previous entry's hash (the chain)."""
    hash: str
    """sha256 over this entry's canonical bytes, prev_hash included."""
    source_kind: str | None = None
    """Which trigger recorded it: EXPERIMENT_EVENT, ROLLOUT_EVENT, ANALYSIS, SPILLOVER_VIOLATION, *_DOCUMENT."""


OfferExperiment.model_rebuild()

"""What the use cases need from the outside world, as protocols (cosmicpython ch. 6, "Unit of Work").

Every use case takes a ``Store`` as its first parameter. ``store.transaction(body)`` runs ``body(uow)``
in one transaction: ``uow`` holds the repositories bound to that transaction; the body does all its reads
before its writes (a Firestore rule), may run more than once under contention, and writes nothing if it
raises. The same repositories on ``store`` itself read outside any transaction and refuse to write.

Two implementations: ``store.firestore_store.FirestoreStore`` (production and the emulator suite) and an
in-memory fake in ``tests/unit/fakes.py``, so the lifecycle, approvals, rollout progression, guardrail
actions and the kill switch are unit-tested without an emulator. Only ``store/`` knows collection names.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

from offerlab.domain.eligibility import FirstDecision
from offerlab.domain.holdouts import CohortView
from offerlab.domain.aggregates import UserChange
from offerlab.domain.types import CohortStatus, ExperimentStatus
from offerlab.store.experiment_cache import OfferView, PlacementView
from offerlab.store.documents import (
    CustomerStatus, ExchangeRates, ExperimentAnalysis, ExperimentEvent, ExperimentExposure, ExperimentSnapshot,
    FraudScore, HoldoutAnalysis, HoldoutAssignment, HoldoutCohort, HoldoutContamination, HoldoutSpilloverEvent,
    OfferExperiment, OfferRefusal, PlacementLayer, PriceServed, ProgramLock, RolloutEvent, RolloutPlan,
)

T = TypeVar("T")


class ExperimentRepository(Protocol):
    def get(self, experiment_id: str) -> OfferExperiment:
        """The experiment, or NOT_FOUND."""

    def new_id(self) -> str:
        """A fresh experiment id (nothing is written)."""

    def create(self, experiment: OfferExperiment) -> None:
        """Write a new experiment; the commit fails if the id exists."""

    def save(self, experiment: OfferExperiment) -> None:
        """Replace the stored experiment with this version."""

    def record_event(self, event: ExperimentEvent) -> None:
        """Create ``experimentEvents/{experimentId}_{version:06d}``: two writers of one version collide."""

    def event_recorded(self, experiment_id: str, version: int) -> bool: ...

    def ids_with_status(self, statuses: Iterable[ExperimentStatus]) -> list[str]: ...

    def with_status(self, statuses: Iterable[ExperimentStatus]) -> list[OfferExperiment]:
        """The experiments in any of ``statuses`` (inside a transaction: read in it)."""


class PlacementRepository(Protocol):
    def find(self, placement: str) -> PlacementLayer | None:
        """The placement's layer document, or None before its first start."""

    def save(self, layer: PlacementLayer) -> None: ...


class CoverageLock(Protocol):
    """The document every coverage change reads and writes (store/placements.py), so they serialise."""

    def read(self) -> ProgramLock: ...

    def save(self, lock: ProgramLock) -> None: ...


class RolloutPlanRepository(Protocol):
    def find(self, experiment_id: str) -> RolloutPlan | None: ...

    def save(self, plan: RolloutPlan) -> None: ...

    def record_event(self, event: RolloutEvent) -> None:
        """Create ``rolloutEvents/{experimentId}_{planVersion:06d}``: two writers of one version collide."""

    def active_ids(self, limit: int = 1000) -> list[str]: ...


class CohortRepository(Protocol):
    def get(self, cohort_id: str) -> HoldoutCohort:
        """The cohort, or NOT_FOUND."""

    def new_id(self) -> str: ...

    def create(self, cohort: HoldoutCohort) -> None: ...

    def save(self, cohort: HoldoutCohort) -> None: ...

    def experiments_using(self, cohort_id: str, statuses: Iterable[ExperimentStatus]) -> list[str]: ...

    def with_status(self, status: CohortStatus) -> list[HoldoutCohort]: ...


class AlertRepository(Protocol):
    def create(self, alert_id: str, alert: dict[str, Any]) -> None:
        """Create ``experimentAlerts/{alertId}``; the commit fails if it exists (one alert per key)."""

    def open_for(self, experiment_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Unacknowledged alerts of the experiment."""

    def get(self, alert_id: str) -> dict[str, Any] | None: ...

    def acknowledge(self, alert_id: str, fields: dict[str, Any]) -> None:
        """Merge the acknowledgement's fields into the alert (``acknowledged: true``, who, when, why)."""


class AnalysisRepository(Protocol):
    def new_id(self) -> str: ...

    def create(self, analysis: ExperimentAnalysis) -> None:
        """Create the analysis: never overwritten (analyses are immutable)."""

    def create_holdout(self, analysis: HoldoutAnalysis) -> None:
        """Create a holdout read-out in the same collection (the ledger's analysis trigger records it)."""


class FraudScoreRepository(Protocol):
    def find(self, user_id: str) -> FraudScore | None: ...

    def save(self, score: FraudScore) -> None: ...


class ContaminationRepository(Protocol):
    def exists(self, scope_id: str, user_id: str) -> bool: ...

    def create(self, scope_id: str, record: HoldoutContamination) -> None: ...


class ExchangeRateRepository(Protocol):
    """Dated rates per base (exchangeRates): created once, never changed (docs/regions.md §5)."""

    def get(self, day: str, base: str) -> ExchangeRates | None: ...

    def create(self, rates: ExchangeRates) -> None:
        """Create the day's rates for one base; the commit fails if they exist."""

    def on_days(self, days: list[str]) -> dict[str, list[ExchangeRates]]:
        """Every base's rates of each day (outside a transaction; a day with rates is cached for good)."""


class UnitOfWork(Protocol):
    """The repositories of one transaction."""

    experiments: ExperimentRepository
    plans: RolloutPlanRepository
    cohorts: CohortRepository
    alerts: AlertRepository
    analyses: AnalysisRepository
    fraud_scores: FraudScoreRepository
    contaminations: ContaminationRepository
    placements: PlacementRepository
    coverage_lock: CoverageLock
    exchange_rates: ExchangeRateRepository


class ExposureLog(Protocol):
    """First exposures: ``{experimentId}_{userId}``, created once, never updated; counted by aggregation."""

    def known(self, experiment_id: str, user_id: str) -> bool:
        """The exposure is known to be recorded (this process recorded it recently): no write needed."""

    def record_first(self, exposure: ExperimentExposure) -> bool:
        """Create it; False when it already existed (idempotent)."""

    def find(self, experiment_id: str, user_id: str) -> ExperimentExposure | None: ...

    def of_user(self, user_id: str) -> list[ExperimentExposure]: ...

    def count_by_arm(self, experiment_id: str, read_time: Any = None) -> dict[str, int]:
        """Exposures per arm by aggregation count queries (``read_time``: as of then)."""


class OfferViews(Protocol):
    """get_offer's view of experiments: at most a bounded time stale (store/experiment_cache.py)."""

    def view(self, experiment_id: str) -> OfferView:
        """The experiment's view, or NOT_FOUND."""

    def default_experiment_id(self) -> str | None: ...

    def placement(self, placement: str) -> PlacementView:
        """The placement's compiled decision (holders, shipped offer), at most a bounded time stale."""


class HoldoutRecords(Protocol):
    """Per-user holdout facts (each its own document: writers never contend)."""

    def active_cohorts(self) -> tuple[CohortView, ...]:
        """The FROZEN cohorts (cached for a bounded time, docs/holdouts.md)."""

    def cohorts_changed(self) -> None:
        """This process froze or retired a cohort: forget the cached list."""

    def assignment_known(self, cohort_id: str, user_id: str) -> bool:
        """The (cohort, user) record is known to exist (recorded recently by this process)."""

    def record_assignment(self, assignment: HoldoutAssignment) -> bool:
        """Create the user's record in the cohort; False when it existed already."""

    def count_assignments(self, cohort_id: str) -> tuple[int, int]:
        """(users evaluated, users of them inside the cohort)."""

    def count_contaminations(self, cohort_id: str) -> int: ...

    def count_program_exposures(self, cohort_id: str) -> tuple[int, int]:
        """(users with a program exposure of the cohort, of them members): real get_offer answers."""

    def new_spillover_event_id(self) -> str: ...

    def record_spillover_event(self, event_id: str, event: HoldoutSpilloverEvent) -> None: ...


class MetricTotals(Protocol):
    """Per-user totals (userMetricTotals) and the streamed per-arm sums they feed (experimentAggregates):
    written only through these two methods, which keep the sums exact (domain/aggregates.py)."""

    def apply_once(self, event_id: str, changes: Sequence[UserChange]) -> bool:
        """Apply each change to its user's totals and its shard's sums, atomically with the creation of
        the event's processed marker (a compare-and-swap per user, store/aggregates.py); False (and
        nothing written) when the event was processed before."""

    def apply_flags(self, changes: Sequence[UserChange]) -> None:
        """Set exclusion flags (idempotent: a flag set before changes nothing), moving the users out of
        the kept sums."""

    def find(self, experiment_id: str, user_id: str) -> dict[str, Any] | None: ...


class Aggregates(Protocol):
    """The streamed per-arm sums of an experiment: a bounded number of shard documents."""

    def read(self, experiment_id: str, read_time: Any = None) -> list[dict[str, Any]]:
        """Every shard document of the experiment (at most 3 arms × SHARDS); ``read_time``: as of then."""

    def reads(self) -> int:
        """Documents read by ``read`` so far in this process (the benchmark counts them)."""


class ExperimentDefinitions(Protocol):
    """Experiments as ingestion needs them, cached: what streams never changes once an experiment runs."""

    def get(self, experiment_id: str) -> OfferExperiment: ...


class EligibilityRecords(Protocol):
    """Each user's first decision in an experiment with pre-enrolment rules (domain/eligibility.py): an
    exposure (the ExposureLog's) or a refusal (offerRefusals), created once."""

    def known(self, experiment_id: str, user_id: str) -> FirstDecision | None:
        """The decision this process recorded or read recently (no read), or None."""

    def first_decision(self, experiment_id: str, user_id: str, *, with_customer: bool) -> FirstDecision:
        """Read the user's exposure and refusal (and with ``with_customer`` their customerStatus) at once."""

    def record_refusal(self, refusal: OfferRefusal) -> bool:
        """Create it; False when it already existed."""

    def count_refusals(self, experiment_id: str) -> dict[str, int]:
        """Refused users per reason (region, audience), by aggregation."""


class CustomerRecords(Protocol):
    """Per user (customerStatus): the latest activating and ending events' times, merged blind."""

    def record_events(self, user_id: str, activation_micros: int | None, deactivation_micros: int | None) -> None: ...

    def find(self, user_id: str) -> CustomerStatus | None: ...


class PriceHistory(Protocol):
    """The prices get_offer served, per placement, region and day (domain/reference_price.py)."""

    def record_served(self, served: PriceServed) -> bool:
        """Create the (series, day, price) entry once; no write when this process made it already."""

    def served_between(self, placement: str, region: str, first_day: str, last_day: str) -> list[PriceServed]:
        """The series' entries of those days (inclusive), at most a bounded time stale."""


class Snapshots(Protocol):
    def exists(self, experiment_id: str, tick_id: str) -> bool: ...

    def create(self, tick_id: str, snapshot: ExperimentSnapshot) -> bool:
        """False when the tick's snapshot exists already (written once)."""


class Messages(Protocol):
    def publish_many(self, topic: str, messages: list[dict[str, Any]]) -> list[str]: ...


class Store(UnitOfWork, Protocol):
    """Reads outside a transaction (the inherited repositories), transactions, and exactly-once effects."""

    exposures: ExposureLog
    offer_views: OfferViews
    holdout_records: HoldoutRecords
    metric_totals: MetricTotals
    aggregates: Aggregates
    definitions: ExperimentDefinitions
    snapshots: Snapshots
    messages: Messages
    eligibility: EligibilityRecords
    customers: CustomerRecords
    prices: PriceHistory

    def transaction(self, body: Callable[[UnitOfWork], T], *, event_handler: bool = False) -> T:
        """Run ``body(uow)`` in one transaction, under the contention policy of store/transaction.py
        (``event_handler``: the bounded re-runs of an event handler; else fail fast with ABORTED)."""

    def apply_once(self, scope: str, key: str, effect: Callable[[UnitOfWork], None]) -> bool:
        """Run ``effect(uow)`` in one transaction unless (scope, key) was processed; True when it ran now.
        The processed marker is created in the same transaction as the effect."""

    def already_processed(self, scope: str, key: str) -> bool: ...

    def analysis_source(self) -> Any:
        """An ``AnalysisSource`` (service/analysis_source.py) reading this store's experiment data."""

"""The Firestore implementation of the service's ports (service/ports.py): ``FirestoreStore``.

Repositories are thin: they bind the repository functions of this package (one module per collection
group) to a transaction. A repository made without a transaction reads outside any transaction and
refuses every write, so a use case cannot write except inside ``transaction`` or ``apply_once``.
Nothing heavy is imported here at module level: the Firestore client loads on first use (cold start).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, TypeVar

from offerlab.domain.holdouts import CohortView
from offerlab.domain.metrics import TotalsDelta
from offerlab.domain.program import program_id
from offerlab.domain.aggregates import UserChange
from offerlab.domain.types import CohortStatus, ExperimentStatus
from offerlab.store import aggregates as aggregates_repo
from offerlab.store import analyses as analyses_repo
from offerlab.store import cohort_cache, experiment_cache
from offerlab.store import experiments as experiments_repo
from offerlab.store import exposures as exposures_repo
from offerlab.store import holdouts as holdouts_repo
from offerlab.store import metrics as metrics_repo
from offerlab.store import placements as placements_repo
from offerlab.store import regions as regions_repo
from offerlab.store import rollouts as rollouts_repo
from offerlab.store import snapshots as snapshots_repo
from offerlab.domain.eligibility import FirstDecision
from offerlab.store.documents import (
    CustomerStatus, ExchangeRates, ExperimentAnalysis, ExperimentEvent, ExperimentExposure, ExperimentSnapshot,
    FraudScore, HoldoutAnalysis, HoldoutAssignment, HoldoutCohort, HoldoutContamination, HoldoutSpilloverEvent,
    OfferExperiment, OfferRefusal, PlacementLayer, PriceServed, ProgramLock, RolloutEvent, RolloutPlan,
)
from offerlab.store.idempotency import already_processed, apply_once
from offerlab.store.transaction import CALLABLE, EVENT_HANDLER, run_in_transaction

T = TypeVar("T")


class ReadOnly(RuntimeError):
    """A write was attempted outside a transaction: a programming error, never a client's."""


class _Bound:
    def __init__(self, transaction: Any = None) -> None:
        self._tx = transaction

    def _writer(self) -> Any:
        if self._tx is None:
            raise ReadOnly("writes happen inside store.transaction or store.apply_once")
        return self._tx


class Experiments(_Bound):
    def get(self, experiment_id: str) -> OfferExperiment:
        return experiments_repo.get_experiment(experiment_id, self._tx)

    def new_id(self) -> str:
        return experiments_repo.new_experiment_ref().id

    def create(self, experiment: OfferExperiment) -> None:
        self._writer().create(experiments_repo.experiment_ref(experiment.experiment_id), experiment.to_firestore())

    def save(self, experiment: OfferExperiment) -> None:
        self._writer().set(experiments_repo.experiment_ref(experiment.experiment_id), experiment.to_firestore())

    def record_event(self, event: ExperimentEvent) -> None:
        self._writer().create(experiments_repo.event_ref(event.experiment_id, event.version), event.to_firestore())

    def event_recorded(self, experiment_id: str, version: int) -> bool:
        return experiments_repo.event_exists(experiment_id, version, self._tx)

    def ids_with_status(self, statuses: Iterable[ExperimentStatus]) -> list[str]:
        return experiments_repo.ids_with_status([s.value for s in statuses], self._tx)

    def with_status(self, statuses: Iterable[ExperimentStatus]) -> list[OfferExperiment]:
        return experiments_repo.experiments_with_status([s.value for s in statuses], self._tx)


class Placements(_Bound):
    def find(self, placement: str) -> PlacementLayer | None:
        return placements_repo.find_placement(placement, self._tx)

    def save(self, layer: PlacementLayer) -> None:
        self._writer().set(placements_repo.placement_ref(layer.placement), layer.to_firestore())


class CoverageLockDocument(_Bound):
    def read(self) -> ProgramLock:
        return placements_repo.read_lock(self._tx)

    def save(self, lock: ProgramLock) -> None:
        self._writer().set(placements_repo.lock_ref(), lock.to_firestore())


class Plans(_Bound):
    def find(self, experiment_id: str) -> RolloutPlan | None:
        return rollouts_repo.find_plan(experiment_id, self._tx)

    def save(self, plan: RolloutPlan) -> None:
        self._writer().set(rollouts_repo.plan_ref(plan.experiment_id), plan.to_firestore())

    def record_event(self, event: RolloutEvent) -> None:
        self._writer().create(rollouts_repo.rollout_event_ref(event.experiment_id, event.version),
                              event.to_firestore())

    def active_ids(self, limit: int = 1000) -> list[str]:
        return rollouts_repo.active_plan_ids(limit)


class Cohorts(_Bound):
    def get(self, cohort_id: str) -> HoldoutCohort:
        return holdouts_repo.get_cohort(cohort_id, self._tx)

    def new_id(self) -> str:
        return holdouts_repo.new_cohort_ref().id

    def create(self, cohort: HoldoutCohort) -> None:
        self._writer().create(holdouts_repo.cohort_ref(cohort.cohort_id), cohort.to_firestore())

    def save(self, cohort: HoldoutCohort) -> None:
        self._writer().set(holdouts_repo.cohort_ref(cohort.cohort_id), cohort.to_firestore())

    def experiments_using(self, cohort_id: str, statuses: Iterable[ExperimentStatus]) -> list[str]:
        return holdouts_repo.experiments_using_cohort(cohort_id, statuses, self._tx)

    def with_status(self, status: CohortStatus) -> list[HoldoutCohort]:
        return holdouts_repo.list_cohorts_with_status(status, self._tx)


class Alerts(_Bound):
    def create(self, alert_id: str, alert: dict[str, Any]) -> None:
        self._writer().create(analyses_repo.alert_ref(alert_id), alert)

    def open_for(self, experiment_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return rollouts_repo.open_alerts(experiment_id, limit)

    def get(self, alert_id: str) -> dict[str, Any] | None:
        snap = analyses_repo.alert_ref(alert_id).get(transaction=self._tx)
        return snap.to_dict() if snap.exists else None

    def acknowledge(self, alert_id: str, fields: dict[str, Any]) -> None:
        self._writer().update(analyses_repo.alert_ref(alert_id), fields)


class Analyses(_Bound):
    def new_id(self) -> str:
        return analyses_repo.new_analysis_ref().id

    def create(self, analysis: ExperimentAnalysis) -> None:
        analyses_repo.create_analysis(self._writer(), analyses_repo.analysis_ref(analysis.analysis_id), analysis)

    def create_holdout(self, analysis: HoldoutAnalysis) -> None:
        analyses_repo.create_analysis(self._writer(), analyses_repo.analysis_ref(analysis.analysis_id), analysis)


class FraudScores(_Bound):
    def find(self, user_id: str) -> FraudScore | None:
        return metrics_repo.find_fraud_score(user_id, self._tx)

    def save(self, score: FraudScore) -> None:
        self._writer().set(metrics_repo.fraud_ref(score.user_id), score.to_firestore())


class Contaminations(_Bound):
    def exists(self, scope_id: str, user_id: str) -> bool:
        return holdouts_repo.contamination_ref(scope_id, user_id).get(transaction=self._tx).exists

    def create(self, scope_id: str, record: HoldoutContamination) -> None:
        self._writer().create(holdouts_repo.contamination_ref(scope_id, record.user_id), record.to_firestore())


class ExchangeRatesRepo(_Bound):
    def get(self, day: str, base: str) -> ExchangeRates | None:
        return regions_repo.get_rates(day, base, self._tx)

    def create(self, rates: ExchangeRates) -> None:
        self._writer().create(regions_repo.rates_ref(rates.date, rates.base), rates.to_firestore())

    def on_days(self, days: list[str]) -> dict[str, list[ExchangeRates]]:
        return regions_repo.rates_on(days)


class FirestoreUnitOfWork:
    """The repositories of one Firestore transaction (or of none: read-only)."""

    def __init__(self, transaction: Any = None) -> None:
        self.experiments = Experiments(transaction)
        self.plans = Plans(transaction)
        self.cohorts = Cohorts(transaction)
        self.alerts = Alerts(transaction)
        self.analyses = Analyses(transaction)
        self.fraud_scores = FraudScores(transaction)
        self.contaminations = Contaminations(transaction)
        self.placements = Placements(transaction)
        self.coverage_lock = CoverageLockDocument(transaction)
        self.exchange_rates = ExchangeRatesRepo(transaction)


class Exposures:
    def known(self, experiment_id: str, user_id: str) -> bool:
        """This process recorded (or saw) the exposure recently (an LRU, store/experiment_cache.py)."""
        return experiment_cache.exposure_memo.seen(experiment_id, user_id)

    def record_first(self, exposure: ExperimentExposure) -> bool:
        created = exposures_repo.record_first_exposure(exposure)
        experiment_cache.exposure_memo.remember(exposure.experiment_id, exposure.user_id)
        return created

    def find(self, experiment_id: str, user_id: str) -> ExperimentExposure | None:
        return exposures_repo.find_exposure(experiment_id, user_id)

    def of_user(self, user_id: str) -> list[ExperimentExposure]:
        return exposures_repo.exposures_of_user(user_id)

    def count_by_arm(self, experiment_id: str, read_time: Any = None) -> dict[str, int]:
        return exposures_repo.count_by_arm(experiment_id, read_time)


class OfferViews:
    def view(self, experiment_id: str) -> experiment_cache.OfferView:
        return experiment_cache.offer_view(experiment_id)

    def default_experiment_id(self) -> str | None:
        return experiment_cache.default_experiment_id()

    def placement(self, placement: str) -> experiment_cache.PlacementView:
        return experiment_cache.placement_view(placement)


class HoldoutRecords:
    def active_cohorts(self) -> tuple[CohortView, ...]:
        return cohort_cache.active_cohorts()

    def cohorts_changed(self) -> None:
        cohort_cache.invalidate()

    def assignment_known(self, cohort_id: str, user_id: str) -> bool:
        """This process recorded the pair recently (an LRU, store/cohort_cache.py): no write needed."""
        return (cohort_id, user_id) in cohort_cache.recently_recorded

    def record_assignment(self, assignment: HoldoutAssignment) -> bool:
        created = holdouts_repo.record_assignment(assignment)
        cohort_cache.recently_recorded.add((assignment.cohort_id, assignment.user_id))
        return created

    def count_assignments(self, cohort_id: str) -> tuple[int, int]:
        return holdouts_repo.count_assignments(cohort_id)

    def count_contaminations(self, cohort_id: str) -> int:
        return holdouts_repo.count_contaminations(cohort_id)

    def count_program_exposures(self, cohort_id: str) -> tuple[int, int]:
        return holdouts_repo.count_program_exposures(program_id(cohort_id))

    def new_spillover_event_id(self) -> str:
        return holdouts_repo.new_spillover_event_ref().id

    def record_spillover_event(self, event_id: str, event: HoldoutSpilloverEvent) -> None:
        holdouts_repo.create_spillover_event(holdouts_repo.spillover_event_ref(event_id), event)


class MetricTotals:
    SCOPE = "metric"

    def apply_once(self, event_id: str, changes: Sequence[UserChange]) -> bool:
        return aggregates_repo.apply_changes(aggregates_repo.changes_for_users(changes), scope=self.SCOPE,
                                             event_id=event_id, totals_ref=metrics_repo.totals_ref)

    def apply_flags(self, changes: Sequence[UserChange]) -> None:
        aggregates_repo.apply_changes(aggregates_repo.changes_for_users(changes), totals_ref=metrics_repo.totals_ref)

    def find(self, experiment_id: str, user_id: str) -> dict[str, Any] | None:
        snap = metrics_repo.totals_ref(experiment_id, user_id).get()
        return snap.to_dict() if snap.exists else None


class Aggregates:
    def __init__(self) -> None:
        self._reads = 0

    def read(self, experiment_id: str, read_time: Any = None) -> list[dict[str, Any]]:
        docs = aggregates_repo.read_shards(experiment_id, read_time)
        self._reads += max(len(docs), 1)  # a query that matches nothing is billed one read
        return docs

    def reads(self) -> int:
        return self._reads


class Definitions:
    def get(self, experiment_id: str) -> OfferExperiment:
        return experiment_cache.definition(experiment_id)


class Eligibility:
    def known(self, experiment_id: str, user_id: str) -> FirstDecision | None:
        if experiment_cache.exposure_memo.seen(experiment_id, user_id):
            return FirstDecision(exposed=True)
        return regions_repo.decisions.get((experiment_id, user_id))

    def first_decision(self, experiment_id: str, user_id: str, *, with_customer: bool) -> FirstDecision:
        found = regions_repo.first_decision(experiment_id, user_id, with_customer)
        if found.exposed:
            experiment_cache.exposure_memo.remember(experiment_id, user_id)
        elif found.refusal is not None:
            regions_repo.decisions.put((experiment_id, user_id), FirstDecision(refusal=found.refusal))
        return found

    def record_refusal(self, refusal: OfferRefusal) -> bool:
        created = regions_repo.record_refusal(refusal)
        if created:
            regions_repo.decisions.put((refusal.experiment_id, refusal.user_id), FirstDecision(refusal=refusal.reason))
        return created

    def count_refusals(self, experiment_id: str) -> dict[str, int]:
        return regions_repo.count_refusals(experiment_id)


class Customers:
    def record_events(self, user_id: str, activation_micros: int | None, deactivation_micros: int | None) -> None:
        regions_repo.record_customer_events(user_id, activation_micros, deactivation_micros)

    def find(self, user_id: str) -> CustomerStatus | None:
        return regions_repo.find_customer(user_id)


class Prices:
    def record_served(self, served: PriceServed) -> bool:
        return regions_repo.record_served(served)

    def served_between(self, placement: str, region: str, first_day: str, last_day: str) -> list[PriceServed]:
        return regions_repo.served_between(placement, region, first_day, last_day)


class Snapshots:
    def exists(self, experiment_id: str, tick_id: str) -> bool:
        return snapshots_repo.get_snapshot(experiment_id, tick_id) is not None

    def create(self, tick_id: str, snapshot: ExperimentSnapshot) -> bool:
        return snapshots_repo.create_snapshot(tick_id, snapshot)


class Messages:
    def publish_many(self, topic: str, messages: list[dict[str, Any]]) -> list[str]:
        from offerlab.store.pubsub import publish_many  # noqa: PLC0415 - the Pub/Sub client is heavy (cold start)

        return publish_many(topic, messages)


class FirestoreStore(FirestoreUnitOfWork):
    """The store every entry point hands its use case (service/ports.py ``Store``)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.exposures = Exposures()
        self.offer_views = OfferViews()
        self.holdout_records = HoldoutRecords()
        self.metric_totals = MetricTotals()
        self.aggregates = Aggregates()
        self.definitions = Definitions()
        self.snapshots = Snapshots()
        self.messages = Messages()
        self.eligibility = Eligibility()
        self.customers = Customers()
        self.prices = Prices()

    def transaction(self, body: Callable[[FirestoreUnitOfWork], T], *, event_handler: bool = False) -> T:
        return run_in_transaction(lambda t: body(FirestoreUnitOfWork(t)), EVENT_HANDLER if event_handler else CALLABLE)

    def apply_once(self, scope: str, key: str, effect: Callable[[FirestoreUnitOfWork], None]) -> bool:
        return apply_once(scope, key, lambda t: effect(FirestoreUnitOfWork(t)))

    def already_processed(self, scope: str, key: str) -> bool:
        return already_processed(scope, key)

    def analysis_source(self) -> Any:
        from offerlab.store.analysis_source import FirestoreAnalysisSource  # noqa: PLC0415 - stats: not on cold start

        return FirestoreAnalysisSource()


_store: FirestoreStore | None = None


def firestore_store() -> FirestoreStore:
    """The process-wide store (its repositories hold no state; the Firestore client is created lazily)."""
    global _store
    if _store is None:
        _store = FirestoreStore()
    return _store

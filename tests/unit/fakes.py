"""An in-memory implementation of the service's ports (functions/offerlab/service/ports.py) for unit tests.

It keeps what the use cases rely on from Firestore, so a unit test can trust a green run:
* documents are stored serialised (``to_firestore()``) and read back as fresh models: no aliasing;
* a transaction reads the committed state, stages its writes, and commits them all or none; a body that
  raises writes nothing; a read after the body's first write fails the test (Firestore forbids it);
* ``create`` of an existing document fails the commit (ABORTED, as contention would), so two writers of
  one event version cannot both land;
* ``apply_once`` creates its marker in the effect's transaction; a processed key runs nothing.
Contention itself, triggers, rules and the wire format are what only the emulator shows
(tests/integration, tests/e2e).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from offerlab.domain.aggregates import UserChange, plan_change, shard_id, shard_of
from offerlab.domain.assignment import new_salt
from offerlab.domain.errors import Aborted, NotFound
from offerlab.domain.holdouts import CohortView
from offerlab.domain.metrics import Metric
from offerlab.domain.types import CohortStatus, ExperimentStatus, RolloutStatus
from offerlab.domain.user_rows import ARMS, UserRow, moments_from_rows
from offerlab.domain.holdouts import Scope
from offerlab.domain.program import PROGRAM_ARMS
from offerlab.domain.eligibility import FirstDecision, active_from_history
from offerlab.store.documents import (
    CustomerStatus, ExchangeRates, ExperimentAnalysis, ExperimentEvent, ExperimentExposure, ExperimentSnapshot,
    FraudScore, HoldoutAnalysis, HoldoutAssignment, HoldoutCohort, HoldoutContamination, HoldoutSpilloverEvent,
    OfferExperiment, OfferRefusal, PlacementLayer, PriceServed, ProgramLock, RolloutEvent, RolloutPlan,
)
from offerlab.store.experiment_cache import OfferView, PlacementView, build_placement_view, build_view, cohort_view_of


class ReadAfterWrite(AssertionError):
    """The use case read inside a transaction after writing: Firestore refuses that."""


class InMemoryDatabase:
    """Collections of serialised documents: ``{collection: {doc id: dict}}``."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.commits = 0

    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        return self.collections.setdefault(name, {})

    def get(self, name: str, doc_id: str) -> dict[str, Any] | None:
        value = self.collection(name).get(doc_id)
        return copy.deepcopy(value) if value is not None else None

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Everything, deep-copied: a test compares it before and after a refusal (nothing written)."""
        return copy.deepcopy({k: v for k, v in self.collections.items() if v})


@dataclass
class _Write:
    kind: str  # "create" | "set"
    collection: str
    doc_id: str
    data: dict[str, Any]


class _Session:
    """One transaction's staged writes (or none: reads outside a transaction, writes refused)."""

    def __init__(self, db: InMemoryDatabase, transactional: bool) -> None:
        self.db = db
        self.transactional = transactional
        self.writes: list[_Write] = []

    def read(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        if self.writes:
            raise ReadAfterWrite(f"read of {collection}/{doc_id} after a write in the same transaction")
        return self.db.get(collection, doc_id)

    def scan(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        if self.writes:
            raise ReadAfterWrite(f"query of {collection} after a write in the same transaction")
        return [(k, copy.deepcopy(v)) for k, v in sorted(self.db.collection(collection).items())]

    def write(self, kind: str, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        if not self.transactional:
            raise AssertionError("a write outside store.transaction / store.apply_once")
        self.writes.append(_Write(kind, collection, doc_id, copy.deepcopy(data)))

    def commit(self) -> None:
        created: set[tuple[str, str]] = set()
        for w in self.writes:  # check every create first: a failed commit writes nothing
            if w.kind != "create":
                continue
            key = (w.collection, w.doc_id)
            if w.doc_id in self.db.collection(w.collection) or key in created:
                raise Aborted("The resource is busy; please retry.")  # what a create conflict becomes
            created.add(key)
        for w in self.writes:
            self.db.collection(w.collection)[w.doc_id] = w.data
        self.db.commits += 1


class _Repo:
    collection = ""
    model: Any = None

    def __init__(self, session: _Session) -> None:
        self._s = session

    def _load(self, doc_id: str):
        data = self._s.read(self.collection, doc_id)
        return self.model.from_firestore(data) if data is not None else None


class Experiments(_Repo):
    collection, model = "offerExperiments", OfferExperiment

    def get(self, experiment_id: str) -> OfferExperiment:
        found = self._load(experiment_id)
        if found is None:
            raise NotFound("No such experiment.")
        return found

    def new_id(self) -> str:
        return "exp-" + new_salt()[:12]

    def create(self, experiment: OfferExperiment) -> None:
        self._s.write("create", self.collection, experiment.experiment_id, experiment.to_firestore())

    def save(self, experiment: OfferExperiment) -> None:
        self._s.write("set", self.collection, experiment.experiment_id, experiment.to_firestore())

    def record_event(self, event: ExperimentEvent) -> None:
        self._s.write("create", "experimentEvents", f"{event.experiment_id}_{event.version:06d}", event.to_firestore())

    def event_recorded(self, experiment_id: str, version: int) -> bool:
        return self._s.read("experimentEvents", f"{experiment_id}_{version:06d}") is not None

    def ids_with_status(self, statuses: Iterable[ExperimentStatus]) -> list[str]:
        wanted = {s.value for s in statuses}
        return [k for k, v in self._s.scan(self.collection) if v.get("status") in wanted]

    def with_status(self, statuses: Iterable[ExperimentStatus]) -> list[OfferExperiment]:
        wanted = {s.value for s in statuses}
        return [OfferExperiment.from_firestore(v) for _, v in self._s.scan(self.collection) if v.get("status") in wanted]


class Placements(_Repo):
    collection, model = "placementLayers", PlacementLayer

    def find(self, placement: str) -> PlacementLayer | None:
        return self._load(placement)

    def save(self, layer: PlacementLayer) -> None:
        self._s.write("set", self.collection, layer.placement, layer.to_firestore())


class CoverageLockDocument(_Repo):
    collection, model = "programLocks", ProgramLock

    def read(self) -> ProgramLock:
        return self._load("coverage") or ProgramLock()

    def save(self, lock: ProgramLock) -> None:
        self._s.write("set", self.collection, "coverage", lock.to_firestore())


class Plans(_Repo):
    collection, model = "rolloutPlans", RolloutPlan

    def find(self, experiment_id: str) -> RolloutPlan | None:
        return self._load(experiment_id)

    def save(self, plan: RolloutPlan) -> None:
        self._s.write("set", self.collection, plan.experiment_id, plan.to_firestore())

    def record_event(self, event: RolloutEvent) -> None:
        self._s.write("create", "rolloutEvents", f"{event.experiment_id}_{event.version:06d}", event.to_firestore())

    def active_ids(self, limit: int = 1000) -> list[str]:
        return [k for k, v in self._s.scan(self.collection) if v.get("status") == RolloutStatus.ACTIVE.value][:limit]


class Cohorts(_Repo):
    collection, model = "holdoutCohorts", HoldoutCohort

    def get(self, cohort_id: str) -> HoldoutCohort:
        found = self._load(cohort_id)
        if found is None:
            raise NotFound("No such holdout cohort.")
        return found

    def new_id(self) -> str:
        return "coh-" + new_salt()[:12]

    def create(self, cohort: HoldoutCohort) -> None:
        self._s.write("create", self.collection, cohort.cohort_id, cohort.to_firestore())

    def save(self, cohort: HoldoutCohort) -> None:
        self._s.write("set", self.collection, cohort.cohort_id, cohort.to_firestore())

    def experiments_using(self, cohort_id: str, statuses: Iterable[ExperimentStatus]) -> list[str]:
        wanted = {s.value for s in statuses}
        return [k for k, v in self._s.scan("offerExperiments")
                if v.get("holdoutCohortId") == cohort_id and v.get("status") in wanted]

    def with_status(self, status: CohortStatus) -> list[HoldoutCohort]:
        return [HoldoutCohort.from_firestore(v) for _, v in self._s.scan(self.collection)
                if v.get("status") == status.value]


class Alerts(_Repo):
    collection = "experimentAlerts"

    def create(self, alert_id: str, alert: dict[str, Any]) -> None:
        self._s.write("create", self.collection, alert_id, alert)

    def open_for(self, experiment_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return [v for _, v in self._s.scan(self.collection)
                if v.get("experimentId") == experiment_id and v.get("acknowledged") is False][:limit]

    def get(self, alert_id: str) -> dict[str, Any] | None:
        return self._s.read(self.collection, alert_id)

    def acknowledge(self, alert_id: str, fields: dict[str, Any]) -> None:
        current = self._s.db.get(self.collection, alert_id)
        if current is None:
            raise NotFound("No such alert.")  # Firestore's update of a missing document fails the commit
        self._s.write("set", self.collection, alert_id, {**current, **fields})


class Analyses(_Repo):
    collection = "experimentAnalyses"

    def new_id(self) -> str:
        return "ana-" + new_salt()[:12]

    def create(self, analysis: ExperimentAnalysis) -> None:
        self._s.write("create", self.collection, analysis.analysis_id, analysis.to_firestore())

    def create_holdout(self, analysis: HoldoutAnalysis) -> None:
        self._s.write("create", self.collection, analysis.analysis_id, analysis.to_firestore())


class FraudScores(_Repo):
    collection, model = "fraudScores", FraudScore

    def find(self, user_id: str) -> FraudScore | None:
        return self._load(user_id)

    def save(self, score: FraudScore) -> None:
        self._s.write("set", self.collection, score.user_id, score.to_firestore())


class Contaminations(_Repo):
    collection = "holdoutContaminations"

    def exists(self, scope_id: str, user_id: str) -> bool:
        return self._s.read(self.collection, f"{scope_id}_{user_id}") is not None

    def create(self, scope_id: str, record: HoldoutContamination) -> None:
        self._s.write("create", self.collection, f"{scope_id}_{record.user_id}", record.to_firestore())


class ExchangeRatesRepo(_Repo):
    collection, model = "exchangeRates", ExchangeRates

    def get(self, day: str, base: str) -> ExchangeRates | None:
        return self._load(f"{day}_{base}")

    def create(self, rates: ExchangeRates) -> None:
        self._s.write("create", self.collection, f"{rates.date}_{rates.base}", rates.to_firestore())

    def on_days(self, days: list[str]) -> dict[str, list[ExchangeRates]]:
        wanted = set(days)
        out: dict[str, list[ExchangeRates]] = {d: [] for d in days}
        for _, v in self._s.scan(self.collection):
            if v["date"] in wanted:
                out[v["date"]].append(ExchangeRates.from_firestore(v))
        return out


class InMemoryUnitOfWork:
    def __init__(self, session: _Session) -> None:
        self.experiments = Experiments(session)
        self.plans = Plans(session)
        self.cohorts = Cohorts(session)
        self.alerts = Alerts(session)
        self.analyses = Analyses(session)
        self.fraud_scores = FraudScores(session)
        self.contaminations = Contaminations(session)
        self.placements = Placements(session)
        self.coverage_lock = CoverageLockDocument(session)
        self.exchange_rates = ExchangeRatesRepo(session)


class InMemoryExposures:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def known(self, experiment_id: str, user_id: str) -> bool:
        return False  # no process cache here: every ask reaches record_first, which is idempotent anyway

    def record_first(self, exposure: ExperimentExposure) -> bool:
        docs = self._db.collection("experimentExposures")
        key = f"{exposure.experiment_id}_{exposure.user_id}"
        if key in docs:
            return False
        docs[key] = exposure.to_firestore()
        shard = shard_of(exposure.user_id)  # counted in the same write, as store/exposures.py does
        doc = self._db.collection("experimentAggregates").setdefault(
            shard_id(exposure.experiment_id, exposure.arm, shard), {})
        doc.update({"experimentId": exposure.experiment_id, "arm": exposure.arm, "shard": shard})
        _increment(doc, {"exposures": 1})
        return True

    def find(self, experiment_id: str, user_id: str) -> ExperimentExposure | None:
        data = self._db.get("experimentExposures", f"{experiment_id}_{user_id}")
        return ExperimentExposure.from_firestore(data) if data else None

    def of_user(self, user_id: str) -> list[ExperimentExposure]:
        return [ExperimentExposure.from_firestore(v) for v in self._db.collection("experimentExposures").values()
                if v["userId"] == user_id]

    def count_by_arm(self, experiment_id: str, read_time=None) -> dict[str, int]:
        out = {"CONTROL": 0, "TREATMENT": 0, "HOLDOUT": 0}
        for v in self._db.collection("experimentExposures").values():
            if v["experimentId"] == experiment_id and v["arm"] in out:
                out[v["arm"]] += 1
        return out


class InMemoryOfferViews:
    """get_offer's views, built fresh on every ask with the production builders (no TTL: never stale)."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def _cohort(self, cohort_id: str):
        data = self._db.get("holdoutCohorts", cohort_id)
        return cohort_view_of(HoldoutCohort.from_firestore(data)) if data else None

    def _retired(self) -> frozenset[str]:
        return frozenset(k for k, v in self._db.collection("holdoutCohorts").items()
                         if v["status"] == CohortStatus.RETIRED.value)

    def view(self, experiment_id: str) -> OfferView:
        data = self._db.get("offerExperiments", experiment_id)
        if data is None:
            raise NotFound("No such experiment.")
        return build_view(OfferExperiment.from_firestore(data), self._cohort, self._retired())

    def _view_or_none(self, experiment_id: str) -> OfferView | None:
        try:
            return self.view(experiment_id)
        except NotFound:
            return None

    def placement(self, placement: str) -> PlacementView:
        data = self._db.get("placementLayers", placement)
        layer = PlacementLayer.from_firestore(data) if data else None
        return build_placement_view(placement, layer, self._view_or_none)

    def default_experiment_id(self) -> str | None:
        running = [OfferExperiment.from_firestore(v) for v in self._db.collection("offerExperiments").values()
                   if v["status"] == ExperimentStatus.RUNNING.value]
        running.sort(key=lambda e: (e.started_at or e.created_at, e.experiment_id), reverse=True)
        return running[0].experiment_id if running else None


class InMemoryHoldoutRecords:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.cache_resets = 0

    def active_cohorts(self) -> tuple[CohortView, ...]:
        frozen = [HoldoutCohort.from_firestore(v) for v in self._db.collection("holdoutCohorts").values()
                  if v["status"] == CohortStatus.FROZEN.value]
        frozen.sort(key=lambda c: (c.frozen_at.timestamp() if c.frozen_at else 0.0, c.cohort_id))
        return tuple(CohortView.of(c.cohort_id, c.salt, c.percentage, c.spillover_policy,
                                   Scope.of(c.scope.placements, c.scope.offer_types)) for c in frozen)

    def cohorts_changed(self) -> None:
        self.cache_resets += 1

    def assignment_known(self, cohort_id: str, user_id: str) -> bool:
        return f"{cohort_id}_{user_id}" in self._db.collection("holdoutAssignments")

    def record_assignment(self, assignment: HoldoutAssignment) -> bool:
        docs = self._db.collection("holdoutAssignments")
        key = f"{assignment.cohort_id}_{assignment.user_id}"
        if key in docs:
            return False
        docs[key] = assignment.to_firestore()
        return True

    def count_assignments(self, cohort_id: str) -> tuple[int, int]:
        rows = [v for v in self._db.collection("holdoutAssignments").values() if v["cohortId"] == cohort_id]
        return len(rows), sum(1 for v in rows if v["inHoldout"])

    def count_contaminations(self, cohort_id: str) -> int:
        return sum(1 for v in self._db.collection("holdoutContaminations").values() if v.get("cohortId") == cohort_id)

    def count_program_exposures(self, cohort_id: str) -> tuple[int, int]:
        rows = [v for v in self._db.collection("experimentExposures").values()
                if v["experimentId"] == f"program:{cohort_id}"]
        return len(rows), sum(1 for v in rows if v["arm"] == "HOLDOUT")

    def new_spillover_event_id(self) -> str:
        return "spill-" + new_salt()[:12]

    def record_spillover_event(self, event_id: str, event: HoldoutSpilloverEvent) -> None:
        self._db.collection("holdoutSpilloverEvents")[event_id] = event.to_firestore()


class InMemoryMetricTotals:
    """Totals and streamed sums with Firestore's semantics: each change is a compare-and-swap on its
    user's document (a version stands for the update time); ``race`` (a test hook) runs between the read
    and the commit, as another delivery would, and makes the commit lose and retry like store/aggregates.py."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.versions: dict[str, int] = {}
        self.race: Callable[[], None] | None = None
        self.retries = 0

    def _initial_flags(self, change: UserChange) -> list[str]:
        if change.spec is None:
            return []
        flags = []
        score = self._db.get("fraudScores", change.user_id)
        if score is not None and score.get("maxScore", 0.0) >= change.spec.fraud_threshold:
            flags.append("fraud")
        scopes = [change.experiment_id] + ([change.spec.holdout_cohort_id] if change.spec.holdout_cohort_id else [])
        if any(self._db.get("holdoutContaminations", f"{scope}_{change.user_id}") is not None for scope in scopes):
            flags.append("spillover")
        return flags

    def _apply(self, changes: Sequence[UserChange], marker: str | None) -> bool:
        totals = self._db.collection("userMetricTotals")
        markers = self._db.collection("processedEvents")
        unique = list({(c.experiment_id, c.user_id): c for c in reversed(changes)}.values())[::-1]
        for _ in range(50):
            keys = [f"{c.experiment_id}_{c.user_id}" for c in unique]
            read = {k: (copy.deepcopy(totals.get(k)), self.versions.get(k, 0)) for k in keys}
            plans = [plan_change(c, read[k][0], self._initial_flags(c) if read[k][0] is None else ())
                     for c, k in zip(unique, keys)]
            race, self.race = self.race, None
            if race is not None:
                race()
            if marker is not None and marker in markers:
                return False
            if any(self.versions.get(k, 0) != read[k][1] for k in keys):
                self.retries += 1
                continue
            shards = self._db.collection("experimentAggregates")
            for k, planned in zip(keys, plans):
                if planned.doc is None:
                    continue
                totals[k] = copy.deepcopy(planned.doc)
                self.versions[k] = self.versions.get(k, 0) + 1
                if planned.increments:
                    doc = shards.setdefault(planned.shard, {})
                    doc.update(planned.shard_identity)
                    _increment(doc, planned.increments)
            if marker is not None:
                markers[marker] = {"scope": "metric", "eventId": marker}
            return True
        raise Aborted("too many lost races")

    def apply_once(self, event_id: str, changes: Sequence[UserChange]) -> bool:
        return self._apply(changes, f"metric:{event_id}")

    def apply_flags(self, changes: Sequence[UserChange]) -> None:
        self._apply(changes, None)

    def find(self, experiment_id: str, user_id: str) -> dict[str, Any] | None:
        return self._db.get("userMetricTotals", f"{experiment_id}_{user_id}")


def _increment(doc: dict[str, Any], flat: dict[str, float]) -> None:
    for path, amount in flat.items():
        *parents, leaf = path.split(".")
        node = doc
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = node.get(leaf, 0) + amount


class InMemoryAggregates:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self._reads = 0

    def read(self, experiment_id: str, read_time=None) -> list[dict[str, Any]]:
        docs = [copy.deepcopy(v) for v in self._db.collection("experimentAggregates").values()
                if v.get("experimentId") == experiment_id]
        self._reads += max(len(docs), 1)
        return docs

    def reads(self) -> int:
        return self._reads


class InMemoryDefinitions:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def get(self, experiment_id: str) -> OfferExperiment:
        data = self._db.get("offerExperiments", experiment_id)
        if data is None:
            raise NotFound("No such experiment.")
        return OfferExperiment.from_firestore(data)


class InMemoryEligibility:
    """Refusals and first decisions (no process memo: every ask reads, which a unit test can count)."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.reads = 0

    def known(self, experiment_id: str, user_id: str) -> FirstDecision | None:
        return None

    def first_decision(self, experiment_id: str, user_id: str, *, with_customer: bool) -> FirstDecision:
        self.reads += 1
        key = f"{experiment_id}_{user_id}"
        refusal = self._db.get("offerRefusals", key)
        active = None
        if with_customer:
            doc = self._db.get("customerStatus", user_id) or {}
            active = active_from_history(doc.get("lastActivationMicros"), doc.get("lastDeactivationMicros"))
        return FirstDecision(exposed=self._db.get("experimentExposures", key) is not None,
                             refusal=refusal["reason"] if refusal else None, customer_active=active)

    def record_refusal(self, refusal: OfferRefusal) -> bool:
        docs = self._db.collection("offerRefusals")
        key = f"{refusal.experiment_id}_{refusal.user_id}"
        if key in docs:
            return False
        docs[key] = refusal.to_firestore()
        return True

    def count_refusals(self, experiment_id: str) -> dict[str, int]:
        out = {"region": 0, "audience": 0}
        for v in self._db.collection("offerRefusals").values():
            if v["experimentId"] == experiment_id:
                out[v["reason"]] += 1
        return out


class InMemoryCustomers:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def record_events(self, user_id: str, activation_micros: int | None, deactivation_micros: int | None) -> None:
        docs = self._db.collection("customerStatus")
        doc = docs.setdefault(user_id, {"userId": user_id})
        for key, value in (("lastActivationMicros", activation_micros), ("lastDeactivationMicros", deactivation_micros)):
            if value is not None:
                doc[key] = value if doc.get(key) is None else max(doc[key], value)  # Firestore's Maximum

    def find(self, user_id: str) -> CustomerStatus | None:
        data = self._db.get("customerStatus", user_id)
        return CustomerStatus.from_firestore(data) if data else None


class InMemoryPrices:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    @staticmethod
    def _key(served: PriceServed) -> str:
        return (f"{served.placement}|{served.region}/{served.day}|{served.currency or '-'}|{served.amount}|"
                f"{'D' if served.discount else 'R'}")

    def record_served(self, served: PriceServed) -> bool:
        docs = self._db.collection("priceSeries/served")
        key = self._key(served)
        if key in docs:
            return False
        docs[key] = served.to_firestore()
        return True

    def served_between(self, placement: str, region: str, first_day: str, last_day: str) -> list[PriceServed]:
        return [PriceServed.from_firestore(v) for v in self._db.collection("priceSeries/served").values()
                if v["placement"] == placement and v["region"] == region and first_day <= v["day"] <= last_day]


class InMemorySnapshots:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def exists(self, experiment_id: str, tick_id: str) -> bool:
        return f"{experiment_id}_{tick_id}" in self._db.collection("experimentSnapshots")

    def create(self, tick_id: str, snapshot: ExperimentSnapshot) -> bool:
        docs = self._db.collection("experimentSnapshots")
        key = f"{snapshot.experiment_id}_{tick_id}"
        if key in docs:
            return False
        docs[key] = snapshot.to_firestore()
        return True


@dataclass
class RecordingMessages:
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: bool = False

    def publish_many(self, topic: str, messages: list[dict[str, Any]]) -> list[str]:
        if self.fail:
            raise RuntimeError("Pub/Sub unavailable")
        start = len(self.published)
        self.published.extend((topic, dict(m)) for m in messages)
        return [str(start + i) for i in range(len(messages))]


class InMemoryAnalysisSource:
    """Per-user rows set by the test (``store.rows[experimentId]``), like the Firestore source's reads."""

    def __init__(self, store: "InMemoryStore") -> None:
        self._store = store

    def user_rows(self, experiment: OfferExperiment) -> list[UserRow]:
        return sorted(self._store.rows.get(experiment.experiment_id, []), key=lambda r: r.user_id)

    def arm_moments(self, experiment: OfferExperiment, metrics: Iterable[Metric]):
        rows = self.user_rows(experiment)
        return {m.value: moments_from_rows(rows, m) for m in metrics}

    def exposures(self, experiment: OfferExperiment) -> dict[str, int]:
        counts = self._store.exposures.count_by_arm(experiment.experiment_id)
        for row in self.user_rows(experiment):  # rows imply exposures, as the Firestore source counts them
            if row.arm in ARMS and self._store.exposures.find(experiment.experiment_id, row.user_id) is None:
                counts[row.arm] += 1
        return counts

    def totals_pages(self, experiment: OfferExperiment, page_size: int = 1000, read_time=None):
        """Exposed users in user-id order, a page at a time, with their totals (the Firestore source's paging)."""
        db = self._store.db
        exposures = sorted((v["userId"], v["arm"]) for v in db.collection("experimentExposures").values()
                           if v["experimentId"] == experiment.experiment_id)
        for start in range(0, len(exposures), page_size):
            page = exposures[start:start + page_size]
            yield [(u, a, db.get("userMetricTotals", f"{experiment.experiment_id}_{u}")) for u, a in page]

    def row_pages(self, experiment: OfferExperiment, page_size: int = 1000):
        """Rows set by the test (``store.rows``) when there are some, else the exposures and totals."""
        rows = self._store.rows.get(experiment.experiment_id)
        if rows is not None:
            ordered = sorted(rows, key=lambda r: r.user_id)
            for start in range(0, len(ordered), page_size):
                yield ordered[start:start + page_size]
            return
        from offerlab.store.analysis_source import _row  # noqa: PLC0415 - the same row mapping as Firestore's

        for page in self.totals_pages(experiment, page_size):
            yield [_row(u, a, t) for u, a, t in page if a in ARMS]

    def fraud_scores(self, user_ids: Iterable[str] | None, min_score: float) -> dict[str, float]:
        wanted = set(user_ids) if user_ids is not None else None
        return {k: v["maxScore"] for k, v in self._store.db.collection("fraudScores").items()
                if (wanted is None or k in wanted) and v["maxScore"] >= min_score}

    def contaminated_users(self, experiment: OfferExperiment) -> set[str]:
        return {v["userId"] for v in self._store.db.collection("holdoutContaminations").values()
                if v.get("experimentId") == experiment.experiment_id or v.get("cohortId") == experiment.holdout_cohort_id}

    def program_rows(self, cohort_id: str) -> list[UserRow]:
        """``store.rows["program:<cohortId>"]``, arms HOLDOUT/PROGRAM mapped as the Firestore source maps them."""
        rows = self._store.rows.get(f"program:{cohort_id}", [])
        mapped = [replace(r, arm=PROGRAM_ARMS[r.arm]) for r in rows if r.arm in PROGRAM_ARMS]
        return sorted(mapped, key=lambda r: r.user_id)


class InMemoryStore(InMemoryUnitOfWork):
    """The fake ``Store``: repositories for reads outside a transaction, transactions, apply_once."""

    def __init__(self) -> None:
        self.db = InMemoryDatabase()
        super().__init__(_Session(self.db, transactional=False))
        self.exposures = InMemoryExposures(self.db)
        self.offer_views = InMemoryOfferViews(self.db)
        self.holdout_records = InMemoryHoldoutRecords(self.db)
        self.metric_totals = InMemoryMetricTotals(self.db)
        self.aggregates = InMemoryAggregates(self.db)
        self.definitions = InMemoryDefinitions(self.db)
        self.snapshots = InMemorySnapshots(self.db)
        self.messages = RecordingMessages()
        self.eligibility = InMemoryEligibility(self.db)
        self.customers = InMemoryCustomers(self.db)
        self.prices = InMemoryPrices(self.db)
        self.rows: dict[str, list[UserRow]] = {}
        self.transactions = 0

    def transaction(self, body: Callable[[InMemoryUnitOfWork], Any], *, event_handler: bool = False) -> Any:
        session = _Session(self.db, transactional=True)
        self.transactions += 1
        result = body(InMemoryUnitOfWork(session))
        session.commit()
        return result

    def apply_once(self, scope: str, key: str, effect: Callable[[InMemoryUnitOfWork], None]) -> bool:
        marker = f"{scope}:{key}"
        session = _Session(self.db, transactional=True)
        if session.read("processedEvents", marker) is not None:
            return False
        effect(InMemoryUnitOfWork(session))
        session.write("create", "processedEvents", marker, {"scope": scope, "eventId": key})
        session.commit()
        return True

    def already_processed(self, scope: str, key: str) -> bool:
        return self.db.get("processedEvents", f"{scope}:{key}") is not None

    def analysis_source(self) -> InMemoryAnalysisSource:
        return InMemoryAnalysisSource(self)

    # --- conveniences for tests ---------------------------------------------------------------------

    def docs(self, collection: str) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.db.collection(collection))

    def events_of(self, experiment_id: str) -> list[dict[str, Any]]:
        return sorted((v for v in self.db.collection("experimentEvents").values()
                       if v["experimentId"] == experiment_id), key=lambda e: e["version"])

    def rollout_events_of(self, experiment_id: str) -> list[dict[str, Any]]:
        return sorted((v for v in self.db.collection("rolloutEvents").values()
                       if v["experimentId"] == experiment_id), key=lambda e: e["version"])

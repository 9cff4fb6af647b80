"""Monitoring at any scale (API.md §11): ONE table, ratios measured in the same run.

    OFFERLAB_PORT_OFFSET=800 scripts/with-emulators functions/venv/bin/python benchmarks/run.py monitoring

Rows
* check_guardrails / monitor_experiment at 10k, 100k and 1M enrolled users: documents read and median wall
  time, in-process on the Firestore emulator (FirestoreStore). The shards are built through the ingestion's
  own pure path (domain/aggregates.plan_change per event, increments summed as Firestore's Increment does)
  and written to the emulator; monitoring never reads the per-user side, so it is not bulk-loaded here.
  Ratio: against the 10k row.
* metric-event ingestion on the emulator (8 threads, every event delivered twice, shuffled): events/s with
  the streamed statistics (compare-and-swap + shard increments) against the blind-merge ingestion without
  them (store/metrics.add_totals_delta + apply_once_blind, the path before streaming); lost and
  double-counted events counted from the stored totals; then the read-time reconciliation.
* analyze_experiment's paged engine (service/paged_analysis.py via compute_analysis) at 100k and 1M users
  from a page generator (the same pages each pass, 1,000 users a page): tracemalloc peak and time per 100k.
  Baseline: the 100k row.
* streamed vs recomputed: max relative difference between the 1M-user shard sums and Σ of the users'
  final terms (and the emulator's reconciliation after the ingestion row).
"""
from __future__ import annotations

import os
import random
import statistics
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from benchmarks.harness import Table

SIZES = [int(s) for s in os.environ.get("OFFERLAB_BENCH_MONITOR_SIZES", "10000,100000,1000000").split(",")]
ANALYSIS_SIZES = [int(s) for s in os.environ.get("OFFERLAB_BENCH_ANALYSIS_SIZES", "100000,1000000").split(",")]
INGEST_EVENTS = int(os.environ.get("OFFERLAB_BENCH_INGEST_EVENTS", "400"))
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _experiment(experiment_id: str):
    from offerlab.store.documents import OfferExperiment

    return OfferExperiment.model_validate({
        "experimentId": experiment_id, "name": "bench monitoring", "hypothesis": {"statement": "s"},
        "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "baselineValue": 10.0, "direction": "INCREASE"},
                 {"name": "Churn", "type": "GUARDRAIL", "metric": "churn_rate", "threshold": 0.05, "direction": "MAINTAIN"}],
        "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.2, "violationAction": "PAUSE"},
                       {"kpiName": "ARPU drop", "metric": "arpu", "maxRelativeDelta": 10, "violationAction": "KILL"}],
        "metricCaps": {"arpu": 500.0, "net_ltv": 500.0},
        "holdoutCohortId": "bench-cohort", "treatmentPercentage": 50.0, "offerType": "PROMO", "offerConfig": {},
        "plannedStartDate": T0, "plannedEndDate": T0 + timedelta(days=3650), "approvers": ["a@b.com"],
        "author": "bench@company.com", "salt": "s" * 32, "status": "RUNNING", "createdAt": T0, "startedAt": T0,
        "coverage": 100.0, "stageIndex": 0, "version": 3,
    })


def _user_events(rng: random.Random, user_id: str) -> list[dict]:
    out = []
    at = (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    if rng.random() < 0.4:
        out.append({"eventId": f"{user_id}-p", "userId": user_id, "type": "purchase", "occurredAt": at,
                    "value": round(min(rng.lognormvariate(3.0, 1.2), 1e6), 2)})
        if rng.random() < 0.1:
            out.append({"eventId": f"{user_id}-r", "userId": user_id, "type": "refund", "occurredAt": at,
                        "value": out[0]["value"]})
    if rng.random() < 0.25:
        out.append({"eventId": f"{user_id}-c", "userId": user_id, "type": "cancellation", "occurredAt": at})
    return out


def build_shards(experiment, users: int, seed: int = 1):
    """Shards of ``users`` users built event by event through plan_change; also Σ of every user's final
    terms and Σ|terms| (the recompute) for the exactness row. Memory: the shards and one user at a time."""
    from offerlab.domain import metrics as rules
    from offerlab.domain.aggregates import UserChange, plan_change, shard_id, shard_of, user_terms
    from offerlab.service.aggregation import spec_for

    spec = spec_for(experiment)
    rng = random.Random(seed)
    shards: dict[str, dict] = {}
    recomputed: dict[str, dict[str, float]] = {"CONTROL": {}, "TREATMENT": {}, "HOLDOUT": {}}
    scales: dict[str, dict[str, float]] = {"CONTROL": {}, "TREATMENT": {}, "HOLDOUT": {}}
    events = 0

    def add(doc: dict, flat: dict) -> None:
        for path, amount in flat.items():
            *parents, leaf = path.split(".")
            node = doc
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = node.get(leaf, 0) + amount

    for i in range(users):
        user_id, arm = f"user{i:08d}", "TREATMENT" if i % 2 else "CONTROL"
        key = shard_id(experiment.experiment_id, arm, shard_of(user_id))
        doc = shards.setdefault(key, {"experimentId": experiment.experiment_id, "arm": arm, "shard": shard_of(user_id)})
        add(doc, {"exposures": 1})
        totals = None
        for body in _user_events(rng, user_id):
            events += 1
            parsed = rules.parse_metric_event(body)
            planned = plan_change(UserChange(experiment.experiment_id, user_id, arm,
                                             {"experimentId": experiment.experiment_id, "userId": user_id, "arm": arm,
                                              "firstExposedAt": T0}, rules.event_delta(parsed, T0), spec=spec), totals)
            totals = planned.doc
            add(doc, planned.increments)
        for k, v in user_terms(totals, spec).items():
            recomputed[arm][k] = recomputed[arm].get(k, 0.0) + v
            scales[arm][k] = scales[arm].get(k, 0.0) + abs(v)
    return shards, recomputed, scales, events


def _write(db, collection: str, docs: dict[str, dict]) -> None:
    batch = db.batch()
    for doc_id, doc in docs.items():
        batch.set(db.collection(collection).document(doc_id), doc)
    batch.commit()


def monitoring_rows(table: Table) -> None:
    from offerlab.domain.actors import Caller, Role
    from offerlab.domain.aggregates import max_relative_difference, streamed_fields
    from offerlab.service import guardrails
    from offerlab.store import collections as C
    from offerlab.store.client import db
    from offerlab.store.firestore_store import firestore_store

    store = firestore_store()
    pm = Caller("bench", "bench@company.com", frozenset({Role.EXPERIMENTER}))
    analyst = Caller("analyst", "analyst@company.com", frozenset({Role.ANALYST}))
    base: dict[str, float] = {}
    for users in SIZES:
        experiment = _experiment(f"bench-mon-{users}-{uuid.uuid4().hex[:6]}")
        started = time.perf_counter()
        shards, recomputed, scales, events = build_shards(experiment, users)
        built = time.perf_counter() - started
        _write(db(), C.OFFER_EXPERIMENTS, {experiment.experiment_id: experiment.to_firestore()})
        _write(db(), C.EXPERIMENT_AGGREGATES, shards)
        for name, call in (("check_guardrails", lambda: guardrails.check_guardrails(store, analyst, experiment.experiment_id)),
                           ("monitor_experiment", lambda: guardrails.monitor_experiment(store, pm, experiment.experiment_id))):
            call()  # warm
            reads_before = store.aggregates.reads()
            samples = []
            for _ in range(7):
                t = time.perf_counter()
                call()
                samples.append(time.perf_counter() - t)
            reads = (store.aggregates.reads() - reads_before) / 7 + 1  # + the experiment document
            median = statistics.median(samples)
            base.setdefault(name, median)
            table.row(f"{name} @ {users:,} users", f"{median * 1000:.1f} ms, {reads:.0f} reads",
                      baseline=f"{base[name] * 1000:.1f} ms @ {SIZES[0]:,}", ratio=median / base[name],
                      note="reads: experiment + shard query")
        worst, where = max_relative_difference(streamed_fields(shards.values()), recomputed, scales)
        table.row(f"streamed vs recomputed @ {users:,}", f"{worst:.2e} max rel diff", note=f"{events:,} events via "
                  f"plan_change in {built:.0f} s; worst at {where}")


def ingestion_rows(table: Table) -> None:
    from offerlab.domain import metrics as rules
    from offerlab.service import metrics as ingestion
    from offerlab.service import reconciliation
    from offerlab.store import metrics as metrics_repo
    from offerlab.store.client import db
    from offerlab.store.documents import ExperimentExposure
    from offerlab.store.firestore_store import firestore_store
    from offerlab.store.idempotency import apply_once_blind
    from offerlab.store import collections as C

    store = firestore_store()
    results = {}
    for mode in ("blind (no streamed statistics)", "streamed statistics"):
        experiment = _experiment(f"bench-ing-{uuid.uuid4().hex[:8]}")
        _write(db(), C.OFFER_EXPERIMENTS, {experiment.experiment_id: experiment.to_firestore()})
        rng = random.Random(5)
        users = [f"iu{i:05d}-{uuid.uuid4().hex[:4]}" for i in range(INGEST_EVENTS // 4)]
        for i, u in enumerate(users):
            store.exposures.record_first(ExperimentExposure(experiment_id=experiment.experiment_id, user_id=u,
                                                            arm="TREATMENT" if i % 2 else "CONTROL",
                                                            first_exposed_at=T0, coverage=100.0, experiment_version=3))
        at = (T0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        events = [{"eventId": f"{experiment.experiment_id}-{n}", "userId": rng.choice(users), "type": "purchase",
                   "value": round(rng.uniform(1, 99), 2), "occurredAt": at, "experimentId": experiment.experiment_id}
                  for n in range(INGEST_EVENTS)]
        deliveries = events + events
        rng.shuffle(deliveries)

        def blind(body):
            event = rules.parse_metric_event(body)
            exposure = store.exposures.find(event.experiment_id, event.user_id)
            identity = {"experimentId": exposure.experiment_id, "userId": event.user_id, "arm": exposure.arm,
                        "firstExposedAt": exposure.first_exposed_at, "updatedAt": datetime.now(timezone.utc)}
            delta = rules.event_delta(event, exposure.first_exposed_at)
            apply_once_blind("metric", event.event_id, lambda b: metrics_repo.add_totals_delta(
                b, exposure.experiment_id, event.user_id, identity, delta))

        deliver = blind if mode.startswith("blind") else (lambda body: ingestion.ingest_metric_event(store, body))
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(deliver, deliveries))
        elapsed = time.perf_counter() - started
        counted = 0
        for u in users:
            totals = metrics_repo.find_totals(experiment.experiment_id, u)
            counted += int(totals["counts"]["purchase"]) if totals else 0
        lost, double = max(len(events) - counted, 0), max(counted - len(events), 0)
        rate = len(deliveries) / elapsed
        results[mode] = rate
        base = results["blind (no streamed statistics)"]
        table.row(f"ingestion: {mode}", f"{rate:.0f} deliveries/s", baseline=f"{base:.0f}/s blind", ratio=rate / base,
                  note=f"{len(events)} events x2, shuffled, 8 threads; lost {lost}, double-counted {double}")
        if mode == "streamed statistics":
            time.sleep(6)
            check = reconciliation.reconcile(store, experiment.experiment_id, datetime.now(timezone.utc))
            table.row("emulator: streamed vs recomputed", f"{check.max_relative_difference:.2e} max rel diff",
                      note=f"reconciliation at one read time: {check.verdict.value}, {check.users} users")


def _rows_page(start: int, size: int, seed: int):
    import numpy as np

    from offerlab.domain.user_rows import UserRow

    rng = np.random.default_rng(seed + start)
    pays = rng.random(size) < 0.3
    values = np.where(pays, np.round(rng.lognormal(3.0, 1.2, size), 2), 0.0)
    out = []
    for i in range(size):
        n = start + i
        amount = float(values[i])
        out.append(UserRow(f"u{n:08d}", "TREATMENT" if n % 2 else "CONTROL",
                           counts={"purchase": 1} if amount else {}, amounts={"purchase": amount} if amount else {},
                           first_exposed_at=T0, last_event_at=T0 + timedelta(days=2)))
    return out


def analysis_rows(table: Table) -> None:
    from offerlab.domain.metrics import Metric
    from offerlab.domain.regional_policy import policy_from_dict
    from offerlab.service.analytics import AnalysisInputs, AnalysisSettings, compute_analysis

    settings = AnalysisSettings(policy=policy_from_dict({}))
    inputs = AnalysisInputs(_experiment("bench-analysis"), Metric.NET_LTV, (), {}, set(), settings)
    page = 1000

    def pages_of(users: int):
        return lambda: (_rows_page(s, min(page, users - s), 3) for s in range(0, users, page))

    compute_analysis(inputs, pages_of(2000))  # imports (numpy, scipy.special) outside the measurements
    base_peak = base_time = None
    for users in ANALYSIS_SIZES:
        started = time.perf_counter()
        result = compute_analysis(inputs, pages_of(users))
        per_100k = (time.perf_counter() - started) / (users / 100_000)
        tracemalloc.start()
        compute_analysis(inputs, pages_of(users))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        base_peak = base_peak or peak
        base_time = base_time or per_100k
        table.row(f"analyze_experiment peak memory @ {users:,}", f"{peak / 2**20:.2f} MiB",
                  baseline=f"{base_peak / 2**20:.2f} MiB @ {ANALYSIS_SIZES[0]:,}", ratio=peak / base_peak,
                  note=f"tracemalloc peak of one analysis; {result['analysis_passes']} passes, cap {result['winsorize_cap']}")
        table.row(f"analyze_experiment time per 100k @ {users:,}", f"{per_100k:.2f} s",
                  baseline=f"{base_time:.2f} s @ {ANALYSIS_SIZES[0]:,}", ratio=per_100k / base_time,
                  note="untraced; synthetic pages of 1,000 (Firestore paging adds read time, not memory)")


def run(table: Table) -> None:
    monitoring_rows(table)
    ingestion_rows(table)
    analysis_rows(table)

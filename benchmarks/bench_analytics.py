"""End-to-end ``analyze_experiment`` for 100k users stored in the Firestore emulator (issue 6, benchmark 6).

    OFFERLAB_PORT_OFFSET=430 scripts/with-emulators functions/venv/bin/python benchmarks/run.py analytics

Seeds one RUNNING experiment (created through the callables) with N users (OFFERLAB_BENCH_ANALYTICS_USERS,
default 100 000): an exposure and a per-user totals document each, written directly in batches of 500 (this
is a benchmark of the analysis, not of ingestion). Rows: the analysis in-process through the Firestore
source (split into read / compute+store), and the same through the deployed callable over HTTP. Baseline:
the bare ``scipy.stats.ttest_ind(equal_var=False)`` on the same per-user values already in memory, so the
ratio shows what reading 2N documents from Firestore costs compared with the statistics themselves.
"""
from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

from benchmarks.harness import Table
from offerlab_client import OfferlabClient, emulator_token

USERS = int(os.environ.get("OFFERLAB_BENCH_ANALYTICS_USERS", "100000"))
BATCH = 500
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _client(uid: str, email: str | None, roles: tuple[str, ...]) -> OfferlabClient:
    return OfferlabClient(os.environ["OFFERLAB_FUNCTIONS_URL"], emulator_token(uid, email=email, roles=roles),
                          timeout=600)


def _running_experiment() -> str:
    pm = _client("bench-pm", "bench-pm@company.com", ("experimenter",))
    cohort = pm.create_holdout_cohort(name=f"bench {uuid.uuid4().hex[:6]}", percentage=10)
    pm.freeze_holdout_cohort(cohort["cohortId"])
    now = datetime.now(timezone.utc)
    exp = pm.call("create_experiment", {
        "name": f"bench analytics {uuid.uuid4().hex[:6]}", "description": "benchmark",
        "hypothesis": {"statement": "A higher price raises net LTV", "expectedImpact": "+10%",
                       "risksIdentified": ["churn"], "successCriteria": ["LTV +10%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.05, "violationAction": "ALERT"}],
        "holdoutCohortId": cohort["cohortId"], "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"price": 12.99, "productId": "pro_1299"}, "controlConfig": {"price": 9.99, "productId": "pro_999"},
        "plannedStartDate": now.isoformat().replace("+00:00", "Z"),
        "plannedEndDate": (now + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "approvers": ["bench-ceo@company.com"]})
    eid = exp["experimentId"]
    pm.create_rollout_plan(eid, stages=[100])
    pm.submit_for_approval(eid)
    _client("bench-ceo", "bench-ceo@company.com", ("approver",)).approve_experiment(eid)
    pm.start_experiment(eid)
    return eid


def _seed(eid: str, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    from offerlab.domain.metrics import empty_totals
    from offerlab.store import collections as C
    from offerlab.store.client import db

    rng = np.random.default_rng(2026)
    arms = np.where(rng.random(n) < 0.5, "TREATMENT", "CONTROL")
    pays = rng.random(n) < 0.1  # zero-inflated revenue: 10 % payers, lognormal spend
    values = np.where(pays, rng.lognormal(3.0, 1.0, n) * np.where(arms == "TREATMENT", 1.1, 1.0), 0.0)
    client = db()
    start = time.perf_counter()
    batch, pending = client.batch(), 0
    for i in range(n):
        user_id, arm = f"b{i:07d}", str(arms[i])
        batch.set(client.collection(C.EXPERIMENT_EXPOSURES).document(f"{eid}_{user_id}"), {
            "experimentId": eid, "userId": user_id, "arm": arm, "firstExposedAt": T0, "coverage": 100.0,
            "stageIndex": 0, "experimentVersion": 1})
        totals = empty_totals()
        if values[i]:
            totals["counts"]["purchase"] = 1
            totals["amounts"]["purchase"] = float(values[i])
        totals.update({"experimentId": eid, "userId": user_id, "arm": arm, "firstExposedAt": T0, "updatedAt": T0})
        batch.set(client.collection(C.USER_METRIC_TOTALS).document(f"{eid}_{user_id}"), totals)
        pending += 2
        if pending >= BATCH:
            batch.commit()
            batch, pending = client.batch(), 0
    if pending:
        batch.commit()
    return values[arms == "CONTROL"], values[arms == "TREATMENT"], time.perf_counter() - start


def run(table: Table) -> None:
    from scipy import stats as scipy_stats

    from offerlab.domain.actors import Caller, Role
    from offerlab.domain.metrics import Metric
    from offerlab.service import analytics
    from offerlab.store.analysis_source import FirestoreAnalysisSource
    from offerlab.store.firestore_store import firestore_store
    from offerlab.store import experiments as experiments_repo

    eid = _running_experiment()
    y_c, y_t, seed_s = _seed(eid, USERS)
    table.row(f"seed {USERS:,} users (exposure + totals, batches of {BATCH})", f"{seed_s:.1f} s",
              note=f"{2 * USERS / seed_s:,.0f} writes/s on the emulator")

    start = time.perf_counter()
    scipy_stats.ttest_ind(y_t, y_c, equal_var=False)
    bare = time.perf_counter() - start

    analyst = Caller("bench-analyst", "bench-analyst@company.com", frozenset({Role.ANALYST}))
    experiment = experiments_repo.get_experiment(eid)
    source = FirestoreAnalysisSource()
    start = time.perf_counter()
    rows = source.user_rows(experiment)
    read_s = time.perf_counter() - start
    print(f"  read {len(rows):,} rows in {read_s:.1f} s", flush=True)
    start = time.perf_counter()
    analysis = analytics.analyze_experiment(firestore_store(), analyst, eid, Metric.NET_LTV, source=source)
    compute_s = time.perf_counter() - start
    analysed = sum(analysis.to_firestore()["rawSampleSizes"].values())
    table.row(f"analyze_experiment in-process, {USERS:,} users: Firestore read", f"{read_s:.1f} s",
              f"ttest_ind in memory: {bare * 1e3:.1f} ms", read_s / bare, "stream exposures + totals (2 docs/user)")
    table.row(f"analyze_experiment in-process, {USERS:,} users: compute + store", f"{compute_s:.2f} s",
              f"ttest_ind in memory: {bare * 1e3:.1f} ms", compute_s / bare,
              f"{analysed:,} rows already read; fraud range query + contamination query + numpy + one create")

    http = _client("bench-analyst", "bench-analyst@company.com", ("analyst",))
    start = time.perf_counter()
    result = http.analyze_experiment(eid, "net_ltv")
    http_s = time.perf_counter() - start
    table.row(f"analyze_experiment callable over HTTP, {USERS:,} users", f"{http_s:.1f} s",
              f"ttest_ind in memory: {bare * 1e3:.1f} ms", http_s / bare,
              f"end to end; corrected {result['correctedPercentChange']:.2f} %, quality {result['dataQuality']}")

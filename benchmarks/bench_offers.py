"""get_offer latency on a warm emulator instance vs the ping baseline, and metric ingestion throughput
through Pub/Sub on the emulator (issue 5, item 8).

Rows:
* get_offer, repeat ask: the same user again and again — the hot path (cached experiment view, hash,
  exposure already remembered: no Firestore access at all).
* get_offer, first ask: a new user each call — adds the one exposure ``create``.
* ingestion: N metric events published to ``offer-metric-events`` in waves of ``WAVE`` (one event per
  user per wave); events/s from the first publish until every event is reflected in ``userMetricTotals``.
Needs the emulator suite: ``scripts/with-emulators functions/venv/bin/python benchmarks/run.py offers``.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

from benchmarks.harness import Table, percentile, time_calls
from offerlab_client import OfferlabClient, emulator_token

SAMPLES = int(os.environ.get("OFFERLAB_BENCH_SAMPLES", "200"))
EVENTS = int(os.environ.get("OFFERLAB_BENCH_EVENTS", "100"))
WAVE = 10
USERS = 30

try:  # the lead's baseline helper; measure ping ourselves when it is absent
    from benchmarks.bench_callable import ping_latencies
except ImportError:  # pragma: no cover
    def ping_latencies(c=None, n=SAMPLES):
        c = c or _client("bench-ping")
        return time_calls(lambda: c.ping(), n, warmup=10)


def _client(uid: str, email: str | None = None, roles: tuple[str, ...] = ()) -> OfferlabClient:
    return OfferlabClient(os.environ["OFFERLAB_FUNCTIONS_URL"], emulator_token(uid, email=email, roles=roles))


def _running_experiment() -> dict:
    pm = _client("pm-uid", "pm@company.com", ("experimenter",))
    cohort = pm.create_holdout_cohort(name=f"bench {uuid.uuid4().hex[:6]}", percentage=10)
    pm.freeze_holdout_cohort(cohort["cohortId"])
    now = datetime.now(timezone.utc)
    exp = pm.call("create_experiment", {
        "name": "bench offers", "hypothesis": {"statement": "bench", "successCriteria": ["none"]},
        "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.1, "violationAction": "ALERT"}],
        "holdoutCohortId": cohort["cohortId"], "treatmentPercentage": 50, "offerType": "PROMO",
        "offerConfig": {"discount": 0.2}, "controlConfig": {"discount": 0},
        "plannedStartDate": now.isoformat(), "plannedEndDate": (now + timedelta(days=7)).isoformat(),
        "approvers": ["ceo@company.com"],
    })
    pm.create_rollout_plan(exp["experimentId"], stages=[100])
    pm.submit_for_approval(exp["experimentId"])
    _client("ceo-uid", "ceo@company.com", ("approver",)).approve_experiment(exp["experimentId"])
    return pm.start_experiment(exp["experimentId"])


def _describe(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50) * 1e3:.1f} ms, p95 {percentile(samples, 95) * 1e3:.1f} ms"


def _ingestion_rate(experiment_id: str, service: OfferlabClient) -> tuple[float, int]:
    from offerlab.store import metrics as metrics_repo
    from offerlab.store import pubsub

    users = [f"bench-ing-{uuid.uuid4().hex[:8]}" for _ in range(USERS)]
    for user in users:
        service.get_offer(user_id=user, experiment_id=experiment_id)
    exposed = [u for u in users if service.get_offer(user_id=u, experiment_id=experiment_id)["arm"] != "NOT_ENROLLED"]
    publisher = pubsub.publisher()
    topic = pubsub.ensure_topic("offer-metric-events")
    at = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")

    def counted() -> int:
        return sum((metrics_repo.find_totals(experiment_id, u) or {}).get("counts", {}).get("paywall_view", 0)
                   for u in exposed)

    # Waves of one event per user: the functions emulator spawns a Python worker per concurrent delivery,
    # and a burst of hundreds makes it thrash on 2 cores (workers fail to bind, deliveries back off), which
    # measures the emulator, not us. A wave is sent when the previous one is counted.
    start, done = time.perf_counter(), 0
    deadline = time.monotonic() + 300
    while done < EVENTS and time.monotonic() < deadline:
        wave = min(WAVE, EVENTS - done, len(exposed))
        futures = [publisher.publish(topic, json.dumps({
            "eventId": f"bench-{uuid.uuid4()}", "userId": exposed[i], "type": "paywall_view",
            "occurredAt": at, "experimentId": experiment_id}).encode()) for i in range(wave)]
        for f in futures:
            f.result(timeout=60)
        target = done + wave
        while counted() < target and time.monotonic() < deadline:
            time.sleep(0.1)
        done = counted()
    elapsed = time.perf_counter() - start
    return done / elapsed, done


def run(table: Table) -> None:
    exp = _running_experiment()
    eid = exp["experimentId"]
    ping = ping_latencies(_client("bench-ping"), SAMPLES)
    base = percentile(ping, 50)
    user = _client("bench-repeat-user")
    repeat = time_calls(lambda: user.get_offer(experiment_id=eid), SAMPLES, warmup=10)
    table.row("get_offer: repeat ask (cached view, no Firestore)", _describe(repeat), _describe(ping),
              percentile(repeat, 50) / base, f"{SAMPLES} sequential calls, warm instance; ratio of p50s vs ping")
    service = _client("bench-backend", roles=("service",))
    fresh = iter(f"bench-first-{uuid.uuid4().hex[:8]}-{i}" for i in range(SAMPLES + 20))
    first = time_calls(lambda: service.get_offer(user_id=next(fresh), experiment_id=eid), SAMPLES, warmup=10)
    table.row("get_offer: first ask (+ exposure create)", _describe(first), _describe(ping),
              percentile(first, 50) / base, "a new user per call (service role)")
    rate, counted = _ingestion_rate(eid, service)
    table.row("metric ingestion via Pub/Sub", f"{rate:.1f} events/s", "", "",
              f"{counted}/{EVENTS} events in waves of {WAVE}, publish → totals, emulator")

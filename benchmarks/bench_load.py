"""Load on the emulator (issue 9 §4): get_offer (and ping as the baseline) at increasing concurrency,
and metric ingestion at a couple of publishing rates and as one burst published at once through the Pub/Sub
emulator's REST API (the sustained ingestion rate). Per level: throughput, p50/p95/p99 latency and errors;
for ingestion: events published, counted, lost or double-counted.

    OFFERLAB_PORT_OFFSET=800 scripts/with-emulators functions/venv/bin/python benchmarks/run.py load

Concurrency stops at 16 threads: the functions emulator spawns one Python worker per concurrent request
and chokes on bursts of ~50 on 2 cores, which would measure the emulator, not offerlab. Each level runs
for a fixed number of calls after a warm-up at that level (so worker start-up is not in the figures).
get_offer callers are a mix: 80 % repeat asks (a known user: the hot path), 20 % first asks (a new user:
one exposure create). Figures are for this machine's emulator; ratios to ping matter more than ms.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from benchmarks.harness import Table, percentile
from offerlab_client import CallableError, OfferlabClient, emulator_token

LEVELS = tuple(int(x) for x in os.environ.get("OFFERLAB_LOAD_LEVELS", "1,4,8,16").split(","))
CALLS = int(os.environ.get("OFFERLAB_LOAD_CALLS", "240"))        # measured calls per level
RATES = tuple(int(x) for x in os.environ.get("OFFERLAB_LOAD_RATES", "5,20").split(","))  # events/s
EVENTS = int(os.environ.get("OFFERLAB_LOAD_EVENTS", "60"))      # per rate
BURST = int(os.environ.get("OFFERLAB_LOAD_BURST", "2000"))      # events published at once (0: skip)


def _client(uid: str, email: str | None = None, roles: tuple[str, ...] = ()) -> OfferlabClient:
    return OfferlabClient(os.environ["OFFERLAB_FUNCTIONS_URL"], emulator_token(uid, email=email, roles=roles))


def _running_experiment() -> str:
    from benchmarks.bench_offers import _running_experiment as make

    return make()["experimentId"]


def _drive(call, threads: int, calls: int) -> tuple[list[float], int, float]:
    """``calls`` calls of ``call(i)`` over ``threads`` threads: (latencies of successes, errors, wall seconds)."""
    def one(i: int) -> float | None:
        start = time.perf_counter()
        try:
            call(i)
        except (CallableError, OSError):  # OSError: requests' connection errors
            return None
        return time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(threads * 3)))                  # warm-up: one worker per thread
        start = time.perf_counter()
        results = list(pool.map(one, range(calls)))
        wall = time.perf_counter() - start
    ok = [r for r in results if r is not None]
    return ok, len(results) - len(ok), wall


def _describe(lat: list[float], errors: int, wall: float, calls: int) -> str:
    if not lat:
        return f"0 ok, {errors} errors"
    return (f"{calls / wall:.0f} calls/s, p50 {percentile(lat, 50) * 1e3:.0f} / p95 {percentile(lat, 95) * 1e3:.0f}"
            f" / p99 {percentile(lat, 99) * 1e3:.0f} ms, {errors} errors")


def _ingest(eid: str, rate: int, service: OfferlabClient) -> str:
    """Publish EVENTS metric events at ``rate``/s (each event once) and wait for the totals."""
    from offerlab.store import metrics as metrics_repo
    from offerlab.store import pubsub

    users = [f"load-ing-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    users = [u for u in users if service.get_offer(user_id=u, experiment_id=eid)["arm"] != "NOT_ENROLLED"]
    publisher = pubsub.publisher()
    topic = pubsub.ensure_topic("offer-metric-events")
    at = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")

    def counted() -> int:
        return sum((metrics_repo.find_totals(eid, u) or {}).get("counts", {}).get("paywall_view", 0) for u in users)

    start = time.perf_counter()
    for i in range(EVENTS):
        publisher.publish(topic, json.dumps({"eventId": f"load-{uuid.uuid4()}", "userId": users[i % len(users)],
                                             "type": "paywall_view", "occurredAt": at, "experimentId": eid}).encode())
        time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
    published = time.perf_counter() - start
    deadline = time.monotonic() + 180
    while counted() < EVENTS and time.monotonic() < deadline:
        time.sleep(0.25)
    drained = time.perf_counter() - start
    time.sleep(3)  # a late duplicate would show up here
    final = counted()
    return (f"{final}/{EVENTS} counted in {drained:.1f} s (published over {published:.1f} s), "
            f"lost {max(0, EVENTS - final)}, double-counted {max(0, final - EVENTS)}")


def _burst(unique: int) -> str:
    """``unique`` events (+5 % duplicates) published at once; the sustained rate between 10 % and 90 % applied."""
    from offerlab.store.client import db
    from tests.reliability import _burst as burst_lib

    firestore = db()
    burst = burst_lib.make_burst(unique, max(1, unique // 5), unique // 20)
    burst_lib.expose_all(firestore, burst)
    drained = burst_lib.drain(firestore, burst, os.environ["PUBSUB_EMULATOR_HOST"], timeout=600)
    time.sleep(3)  # a late duplicate would show up here
    totals = burst_lib.totals_by_user(firestore, burst)
    counted = sum(n for n, _ in totals.values())
    rate = drained.sustained_rate(unique)
    done = drained.all_applied_seconds
    return (f"{drained.applied}/{unique} applied" + (f" in {done:.1f} s" if done else " (not all within 600 s)") +
            f"; sustained {rate:.0f} events/s (10–90 %)" * (rate is not None) +
            (f", overall {unique / done:.0f} events/s" if done else "") +
            f"; lost {unique - drained.applied}, double-counted {max(0, counted - unique)}")


def run(table: Table) -> None:
    eid = _running_experiment()
    pinger = _client("load-ping")
    service = _client("load-backend", roles=("service",))
    known = [f"load-known-{i}" for i in range(20)]
    for user in known:
        service.get_offer(user_id=user, experiment_id=eid)
    tag = uuid.uuid4().hex[:8]

    def offer(i: int) -> None:
        user = f"load-new-{tag}-{i}-{time.perf_counter_ns()}" if i % 5 == 0 else known[i % len(known)]
        service.get_offer(user_id=user, experiment_id=eid)

    for threads in LEVELS:
        base = _drive(lambda i: pinger.ping(), threads, CALLS)
        table.row(f"load: ping, {threads} threads", _describe(*base, CALLS), "", "", "baseline round trip")
        got = _drive(offer, threads, CALLS)
        ratio = percentile(got[0], 50) / percentile(base[0], 50) if got[0] and base[0] else ""
        table.row(f"load: get_offer, {threads} threads", _describe(*got, CALLS), "ping p50", ratio,
                  f"{CALLS} calls, 80 % repeat / 20 % first asks")
    for rate in RATES:
        table.row(f"load: metric ingestion at {rate} events/s", _ingest(eid, rate, service), "", "",
                  "Pub/Sub emulator → ingest_offer_metric_event → userMetricTotals")
    if BURST:
        table.row(f"load: metric ingestion, burst of {BURST:,}", _burst(BURST), "", "",
                  f"+{BURST // 20} duplicates, published at once via REST; 16 deliveries in flight")

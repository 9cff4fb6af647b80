"""``is_user_in_holdout`` latency on a warm emulator instance, against the trivial callable ``ping``
measured in the same run (needs the emulators: reads OFFERLAB_FUNCTIONS_URL).

    OFFERLAB_PORT_OFFSET=200 scripts/with-emulators functions/venv/bin/python benchmarks/run.py holdouts

Two rows: users evaluated before (the instance answers from its cached cohort list and its LRU of
recorded users: no Firestore access at all), and first evaluations (plus one ``create`` of the
assignment record per active cohort, the only write the hot path ever makes).
"""
from __future__ import annotations

import os
import time
import uuid

from benchmarks.harness import Table, percentile, time_calls
from offerlab.store.cohort_cache import COHORT_TTL_SECONDS, active_cohorts
from offerlab_client import OfferlabClient, emulator_token

SAMPLES = int(os.environ.get("OFFERLAB_BENCH_SAMPLES", "200"))


def _client(uid: str, roles: tuple[str, ...] = ()) -> OfferlabClient:
    return OfferlabClient(os.environ["OFFERLAB_FUNCTIONS_URL"], emulator_token(uid, roles=roles))


def _ping_latencies(n: int) -> list[float]:
    try:
        from benchmarks.bench_callable import ping_latencies  # noqa: PLC0415 - the lead's baseline helper
    except ImportError:
        c = _client("bench-user")
        return time_calls(lambda: c.ping(), n, warmup=10)
    return ping_latencies(_client("bench-user"), n)


def _describe(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50) * 1e3:.1f} ms, p95 {percentile(samples, 95) * 1e3:.1f} ms"


def run(table: Table) -> None:
    pm = _client("bench-pm", ("experimenter",))
    cohort = pm.create_holdout_cohort(name=f"bench {uuid.uuid4().hex[:6]}", percentage=10)
    pm.freeze_holdout_cohort(cohort["cohortId"])
    time.sleep(COHORT_TTL_SECONDS + 1)  # every warm instance's cached cohort list now includes it
    service = _client("bench-backend", ("service",))
    active = len(active_cohorts())  # read here through the store, as the functions do

    repeat_user = f"bench-{uuid.uuid4().hex[:8]}"
    service.is_user_in_holdout(repeat_user)  # recorded once; afterwards served from memory
    ping = _ping_latencies(SAMPLES)
    repeat = time_calls(lambda: service.is_user_in_holdout(repeat_user), SAMPLES, warmup=10)
    fresh_ids = iter(f"bench-{uuid.uuid4().hex}" for _ in range(SAMPLES + 10))
    first = time_calls(lambda: service.is_user_in_holdout(next(fresh_ids)), SAMPLES, warmup=10)
    ping_p50 = percentile(ping, 50)
    table.row("is_user_in_holdout, user seen before (warm)", _describe(repeat), f"ping: {_describe(ping)}",
              percentile(repeat, 50) / ping_p50, "p50 ratio to ping; no Firestore access per call")
    table.row("is_user_in_holdout, first evaluation (warm)", _describe(first), f"ping: {_describe(ping)}",
              percentile(first, 50) / ping_p50, f"p50 ratio; + 1 record create per active cohort ({active} active)")

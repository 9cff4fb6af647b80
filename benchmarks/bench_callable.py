"""Baseline row: round trip of the trivial callable ``ping`` over HTTP on the emulator.

Every other latency row is quoted against this one, measured in the same run: it is the floor set by
HTTP, the functions emulator's proxy, token verification and the SDK's callable handling.
"""
from __future__ import annotations

import os

from benchmarks.harness import Table, percentile, time_calls
from offerlab_client import OfferlabClient, emulator_token

SAMPLES = int(os.environ.get("OFFERLAB_BENCH_SAMPLES", "200"))


def client(uid: str = "bench-user", roles: tuple[str, ...] = ()) -> OfferlabClient:
    return OfferlabClient(os.environ["OFFERLAB_FUNCTIONS_URL"], emulator_token(uid, roles=roles))


def ping_latencies(c: OfferlabClient | None = None, n: int = SAMPLES) -> list[float]:
    c = c or client()
    return time_calls(lambda: c.ping(), n, warmup=10)


def describe(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50) * 1e3:.1f} ms, p95 {percentile(samples, 95) * 1e3:.1f} ms"


def run(table: Table) -> None:
    samples = ping_latencies()
    table.row("callable round trip: ping (baseline)", describe(samples), "", "1.00x",
              f"{len(samples)} sequential calls, warm instance, emulator")

"""Regions and money (API.md §13, docs/regions.md): what the new rules cost on the hot paths.

Rows, each with its baseline measured in the same run (median of ROUNDS interleaved rounds):

1. ``PlacementRule.decide`` for a placement held by three experiments and covered by three cohorts, with a
   deny list and the regional policy's regions, asked with a region — vs the same placement without any
   region rule, asked without one. Goal: ≤ 1.05x (the region test is one set lookup before the hashes).
2. Converting one money event (``domain/money.convert``: Decimal amount, a cross rate through a common base,
   half-even rounding) — vs the float multiplication it replaces. Informational (ingestion is dominated by
   its Firestore commit; this shows the conversion stays in the microseconds).

Runs anywhere: ``functions/venv/bin/python benchmarks/run.py regions``.
"""
from __future__ import annotations

import statistics
import time
from datetime import date
from decimal import Decimal
from typing import Callable

from benchmarks.harness import Table
from offerlab.domain.eligibility import ALL_REGIONS, Eligibility
from offerlab.domain.holdouts import CohortView, Scope
from offerlab.domain.money import DayRates, convert
from offerlab.domain.program import ExperimentRule, PlacementRule

USERS = 100_000
ROUNDS = 7


def _placement(eligibility: Eligibility) -> PlacementRule:
    cohorts = [CohortView.of(f"c{i}", f"cohort-salt-{i}", 5.0, {}, Scope.of()) for i in range(3)]
    slots = [ExperimentRule(experiment_id=f"e{i}", running=True, placement="paywall",
                            segments=[(i * 3000, (i + 1) * 3000)], covering=cohorts, salt=f"salt-{i}",
                            coverage=100.0, treatment_percentage=50.0, eligibility=eligibility) for i in range(3)]
    return PlacementRule(placement="paywall", slots=slots, shipped=None)


def _seconds(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(table: Table) -> None:
    users = [f"user-{i:08d}" for i in range(USERS)]
    bare = _placement(ALL_REGIONS)
    ruled = _placement(Eligibility.of(deny=["DE", "AT"], policy_deny=["CU", "IR", "KP", "SY"]))

    def without() -> None:
        decide = bare.decide
        for u in users:
            decide(u)

    def with_region() -> None:
        decide = ruled.decide
        for u in users:
            decide(u, "FR")

    rounds = [(_seconds(without), _seconds(with_region)) for _ in range(ROUNDS)]
    ratio = statistics.median(w / b for b, w in rounds)
    base = statistics.median(b for b, _ in rounds)
    ours = statistics.median(w for _, w in rounds)
    table.row("placement decision with a deny list and the policy, region given", f"{USERS / ours / 1e3:.0f}k decisions/s",
              f"no region rule, no region: {USERS / base / 1e3:.0f}k decisions/s", ratio,
              f"goal <= 1.05x; median of {ROUNDS} interleaved rounds")

    day = date(2026, 3, 10)
    table_ = {day: [DayRates.of(day, "EUR", {"USD": "1.0850", "JPY": "162.35"})]}
    amounts = [Decimal("1200"), Decimal("9.99"), Decimal("149.5")] * 10_000

    def decimal_conversion() -> None:
        for a in amounts:
            convert(a, "JPY", "USD", day, table_)

    floats = [float(a) for a in amounts]

    def float_multiplication() -> None:
        rate = 1.085 / 162.35
        for a in floats:
            round(a * rate, 2)

    rounds = [(_seconds(float_multiplication), _seconds(decimal_conversion)) for _ in range(ROUNDS)]
    per_event = statistics.median(d for _, d in rounds) / len(amounts) * 1e6
    table.row("money event conversion (JPY → USD across the EUR base, half-even)", f"{per_event:.1f} µs/event",
              f"float multiply and round: {statistics.median(f for f, _ in rounds) / len(amounts) * 1e6:.2f} µs/event",
              statistics.median(d / f for f, d in rounds), "informational: ingestion is dominated by its commit")

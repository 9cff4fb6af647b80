"""Shared helpers for benchmark modules: timing, percentiles, and the table they print.

Each ``benchmarks/bench_*.py`` defines ``run(table: Table) -> None`` and adds rows with ``table.row``.
Rows quote medians and percentiles, and a ratio against a baseline measured in the same run (the
machine is 2 noisy cores: absolute numbers move, ratios much less). Never used by tests as asserts.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def time_calls(fn: Callable[[], object], n: int, warmup: int = 5) -> list[float]:
    """Wall-clock seconds of n calls of fn, after a warm-up."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def best_rate(fn: Callable[[], int], repeats: int = 5) -> float:
    """Items per second: fn() does some work and returns how many items; median over repeats."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = fn()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


@dataclass
class Row:
    name: str
    value: str
    baseline: str = ""
    ratio: str = ""
    note: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def row(self, name: str, value: str, baseline: str = "", ratio: float | str | None = None, note: str = "") -> None:
        ratio_text = f"{ratio:.2f}x" if isinstance(ratio, float) else (ratio or "")
        self.rows.append(Row(name, value, baseline, ratio_text, note))
        print(f"  measured: {name}: {value} {ratio_text}", flush=True)

    def render(self) -> str:
        headers = ("benchmark", "result", "baseline (same run)", "ratio", "note")
        cells = [headers] + [(r.name, r.value, r.baseline, r.ratio, r.note) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
        lines = [" | ".join(c[i].ljust(widths[i]) for i in range(len(headers))) for c in cells]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        return "\n".join(lines)

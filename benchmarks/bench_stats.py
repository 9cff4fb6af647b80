"""Statistics engine: the full corrected analysis of 10M users held in memory.

Baseline, measured in the same run on the same arrays: a bare
``scipy.stats.ttest_ind(control, treatment, equal_var=False)``, which does far less (no exclusions,
no cap, no reports). The target is a ratio ≤ 1.5x. The naive cap-filter-sum pass (OR the flags,
filter, ``np.percentile`` on the concatenated arms, ``np.minimum``, then the sums) is shown for
reference. Runs are interleaved (baseline, candidate, baseline, ...) so that noise from the other
core hits both alike; each figure is the median of the repeats.

    functions/venv/bin/python benchmarks/run.py stats
    OFFERLAB_BENCH_STATS_USERS=2000000 functions/venv/bin/python benchmarks/run.py stats   # smaller
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import numpy as np

from benchmarks.harness import Table, time_calls

USERS = int(os.environ.get("OFFERLAB_BENCH_STATS_USERS", "10000000"))
REPEATS = 7
REASONS = {"fraud": 0.01, "bot": 0.005, "sandbox": 0.02, "spillover": 0.003, "regional_policy": 0.01}


def _revenue(rng: np.random.Generator, n: int, payer_share: float) -> np.ndarray:
    """Zero-inflated, heavy-tailed revenue per user (lognormal spend for the payers)."""
    y = rng.lognormal(1.0, 1.5, n)
    if payer_share < 1.0:
        y[rng.random(n) >= payer_share] = 0.0
    return y


def _flags(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {reason: rng.random(n) < share for reason, share in REASONS.items()}


def _interleaved(baseline: Callable[[], object], candidate: Callable[[], object]) -> tuple[float, float]:
    """Median seconds of each, alternating the calls after one warm-up of each."""
    baseline(), candidate()
    base, cand = [], []
    for _ in range(REPEATS):
        for fn, out in ((baseline, base), (candidate, cand)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(base), statistics.median(cand)


def _naive_cap_filter_sum(y_c, y_t, flags_c, flags_t, percentile: float):
    """The obvious implementation, for reference: every step allocates full-size temporaries."""
    from offerlab.stats.frequentist import welch_test
    from offerlab.stats.sufficient import MomentStats

    kept_c = y_c[~np.logical_or.reduce(list(flags_c.values()))]
    kept_t = y_t[~np.logical_or.reduce(list(flags_t.values()))]
    cap = np.percentile(np.concatenate([kept_c, kept_t]), percentile)
    capped_c, capped_t = np.minimum(kept_c, cap), np.minimum(kept_t, cap)
    stats_c = MomentStats(capped_c.size, float(capped_c.sum()), float((capped_c**2).sum()))
    stats_t = MomentStats(capped_t.size, float(capped_t.sum()), float((capped_t**2).sum()))
    return welch_test(stats_c, stats_t)


def run(table: Table) -> None:
    from scipy import stats as sps

    from offerlab.stats.corrections import corrected_analysis
    from offerlab.stats.sequential import guardrail_breached
    from offerlab.stats.sufficient import MomentStats

    rng = np.random.default_rng(2024)
    per_arm = USERS // 2
    label = f"{USERS / 1e6:g}M users"
    for payer_share, data_note in ((0.1, "90 % zeros"), (1.0, "no zeros")):
        y_c, y_t = _revenue(rng, per_arm, payer_share), _revenue(rng, per_arm, payer_share)
        flags_c, flags_t = _flags(rng, per_arm), _flags(rng, per_arm)

        def ttest() -> object:
            return sps.ttest_ind(y_c, y_t, equal_var=False)

        def corrected() -> object:
            return corrected_analysis(y_c, y_t, flags_c, flags_t, 99.0, cap_ignore_zeros=False)

        def naive() -> object:
            return _naive_cap_filter_sum(y_c, y_t, flags_c, flags_t, 99.0)

        base, fast = _interleaved(ttest, corrected)
        table.row(f"stats: corrected analysis, {label} in memory ({data_note})", f"{fast:.3f} s",
                  f"ttest_ind {base:.3f} s", fast / base,
                  f"{per_arm:,}/arm, 5 exclusion flags, pooled p99 cap; raw+filtered+capped; median of {REPEATS}")
        if payer_share < 1.0:  # the reference row once is enough
            base, slow = _interleaved(ttest, naive)
            table.row(f"stats: naive cap-filter-sum, {label} ({data_note})", f"{slow:.3f} s",
                      f"ttest_ind {base:.3f} s", slow / base, "np.percentile on concat + np.minimum + filter")
        del y_c, y_t, flags_c, flags_t

    # the 5-minute guardrail sweep: one sequential check from stored sufficient statistics
    control = MomentStats(48_000, 960.0, 1_350.0, 40_000.0, 90_000.0, 1_300.0)
    treatment = MomentStats(47_500, 1_100.0, 1_500.0, 39_800.0, 89_000.0, 1_450.0)
    samples = time_calls(lambda: guardrail_breached(control, treatment, threshold=0.10, mode="relative_change",
                                                    kind="ratio"), 2000)
    table.row("stats: sequential guardrail check (MomentStats)", f"{statistics.median(samples) * 1e6:.1f} µs",
              note="relative_change on a ratio metric; median of 2000 calls, pure Python")

    # the per-check costs of the sweep's statistics, against the asymptotic check measured above
    from offerlab.stats.planning import plan_power
    from offerlab.stats.sequential import always_valid_lift, guardrail_test, kpi_guardrail_test, sequential_srm
    from offerlab.stats.streaming import delta_contribution

    base = statistics.median(samples)
    revenue_c = MomentStats(48_000, 1_000.0, 9.0e6, shift_y=6.0)
    revenue_t = MomentStats(47_500, -9_000.0, 8.6e6, shift_y=6.0)
    churn_c, churn_t = MomentStats.from_counts(3_800, 48_000), MomentStats.from_counts(4_100, 47_500)
    calls = {
        "exact guardrail, capped revenue minThreshold (decision)": lambda: guardrail_test(
            None, revenue_t, threshold=6.0, direction="min", support=(0.0, 1312.0), _with_bound=False),
        "exact guardrail + its always-valid bound": lambda: guardrail_test(
            None, revenue_t, threshold=6.0, direction="min", support=(0.0, 1312.0)),
        "exact relative guardrail, capped revenue vs CONTROL": lambda: guardrail_test(
            revenue_c, revenue_t, threshold=-0.05, direction="min", mode="relative_change", support=(0.0, 1312.0),
            allocation=0.5, _with_bound=False),
        "GUARDRAIL KPI MAINTAIN (two one-sided tests + bounds)": lambda: kpi_guardrail_test(
            churn_c, churn_t, threshold=0.05, direction="MAINTAIN", kind="proportion"),
        "always-valid lift (CIs + p)": lambda: always_valid_lift(revenue_c, revenue_t),
        "sequential SRM, 3 arms": lambda: sequential_srm([5_300, 48_000, 47_500], [0.1, 0.45, 0.45]),
        "delta_contribution, ratio metric": lambda: delta_contribution(1.0, 2.0, 50.0, 0.0, old_x=3.0, new_x=4.0),
        "plan_power (fixed + sequential)": lambda: plan_power(100, 115, kind="mean", users_per_day=2000,
                                                              treatment_share=0.5, planned_days=28, sd=150),
    }
    for name, fn in calls.items():
        got = statistics.median(time_calls(fn, 500))
        table.row(f"stats: {name}", f"{got * 1e6:.1f} µs", f"asymptotic check {base * 1e6:.1f} µs", got / base,
                  "median of 500 calls, pure Python")

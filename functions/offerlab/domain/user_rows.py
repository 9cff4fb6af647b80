"""One exposed user's data as analyses read it, and per-arm sufficient statistics from such rows.

Pure: the store builds ``UserRow``s from its documents (store/analysis_source.py); the analyses, guardrail
checks and KPI snapshots compute on them (service/analytics.py, service/guardrails.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind, metric_value
from offerlab.stats.sufficient import MomentStats

ARMS = ("CONTROL", "TREATMENT")


@dataclass(frozen=True, slots=True)
class UserRow:
    """One exposed user's totals over the experiment window (zeros when no event arrived yet)."""

    user_id: str
    arm: str
    counts: Mapping[str, int] = field(default_factory=dict)
    amounts: Mapping[str, float] = field(default_factory=dict)
    pre_exposure: Mapping[str, float] = field(default_factory=dict)
    sandbox: bool = False
    region: str | None = None
    first_exposed_at: datetime | None = None
    last_event_at: datetime | None = None
    currencies: Mapping[str, Mapping[str, Mapping[str, int]]] = field(default_factory=dict)
    """Money events by original currency and type (count, amountMinor, convertedMinor): the breakdown."""
    refused: Mapping[str, int] = field(default_factory=dict)
    """Metric events refused by conversion, per reason (never summed)."""
    refused_currencies: Mapping[str, int] = field(default_factory=dict)

    def value(self, metric: Metric) -> tuple[float, float]:
        """(numerator, denominator) of ``metric`` for this user (domain/metrics.py, API.md §7)."""
        return metric_value({"counts": self.counts, "amounts": self.amounts}, metric)

    def covariate(self) -> float:
        """CUPED covariate: purchase amount before first exposure (Deng et al. 2013)."""
        return float(self.pre_exposure.get("purchaseAmount", 0.0) or 0.0)


def moments_from_rows(rows: Iterable[UserRow], metric: Metric) -> dict[str, MomentStats]:
    """Per-arm sufficient statistics of ``metric`` in plain Python (no numpy: the sweep stays light).
    Ratio metrics carry their per-user denominator as x (Deng, Knoblich & Lu 2018)."""
    ratio = METRIC_KINDS[metric] is MetricKind.RATIO
    sums = {arm: [0, 0.0, 0.0, 0.0, 0.0, 0.0] for arm in ARMS}
    for row in rows:
        acc = sums.get(row.arm)
        if acc is None:
            continue
        y, x = row.value(metric)
        acc[0] += 1
        acc[1] += y
        acc[2] += y * y
        if ratio:
            acc[3] += x
            acc[4] += x * x
            acc[5] += x * y
    return {arm: MomentStats(int(s[0]), s[1], s[2], s[3], s[4], s[5]) for arm, s in sums.items()}



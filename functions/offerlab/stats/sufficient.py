"""Per-arm sufficient statistics: everything the tests need, summable across days and segments.

Following GrowthBook gbstats (``SampleMeanStatistic``, ``RatioStatistic``,
``RegressionAdjustedStatistic``): an arm is summarised by n, Σy, Σy² and, when a second per-user
quantity x exists, Σx, Σx², Σxy. x is EITHER the denominator of a ratio metric (refund_rate =
refunds / purchases: y = refunds, x = purchases per user) OR the pre-exposure covariate for CUPED,
never both in one ``MomentStats``. Sums add, so daily or per-segment snapshots combine exactly.

Numpy is imported only inside ``from_arrays``: the guardrail sweep can use this module without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

MetricKind = Literal["mean", "proportion", "ratio"]
"""API.md §7 metric kinds: a mean per user, a proportion (mean of 0/1), a ratio Σy/Σx."""

_STORAGE_KEYS = {"n": "n", "sum_y": "sumY", "sum_y2": "sumY2", "sum_x": "sumX", "sum_x2": "sumX2", "sum_xy": "sumXY"}


@dataclass(frozen=True, slots=True)
class MomentStats:
    """Sufficient statistics of one arm (or of one day/segment of an arm)."""

    n: int
    """Number of randomisation units (users)."""
    sum_y: float
    """Σ y: the metric (or the numerator of a ratio metric) per user."""
    sum_y2: float
    """Σ y²."""
    sum_x: float = 0.0
    """Σ x: the ratio denominator or the CUPED pre-exposure covariate per user (0 when unused)."""
    sum_x2: float = 0.0
    """Σ x²."""
    sum_xy: float = 0.0
    """Σ x·y."""

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def zero(cls) -> MomentStats:
        return cls(0, 0.0, 0.0)

    @classmethod
    def from_arrays(cls, y: np.ndarray, x: np.ndarray | None = None) -> MomentStats:
        """Moments of per-user values y (and x, aligned with y). One BLAS dot per square sum."""
        import numpy as np

        y = np.asarray(y, dtype=np.float64)
        if x is None:
            return cls(int(y.size), float(y.sum()), float(np.dot(y, y)))
        x = np.asarray(x, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"x and y must be aligned per user: {x.shape} != {y.shape}")
        return cls(
            int(y.size), float(y.sum()), float(np.dot(y, y)),
            float(x.sum()), float(np.dot(x, x)), float(np.dot(x, y)),
        )

    @classmethod
    def from_counts(cls, successes: int, n: int) -> MomentStats:
        """A proportion is the mean of a 0/1 variable, so Σy² = Σy (conversion_rate, churn_rate)."""
        if not 0 <= successes <= n:
            raise ValueError(f"need 0 <= successes <= n, got {successes}, {n}")
        return cls(int(n), float(successes), float(successes))

    def __add__(self, other: MomentStats) -> MomentStats:
        if not isinstance(other, MomentStats):
            return NotImplemented
        return MomentStats(
            self.n + other.n,
            self.sum_y + other.sum_y,
            self.sum_y2 + other.sum_y2,
            self.sum_x + other.sum_x,
            self.sum_x2 + other.sum_x2,
            self.sum_xy + other.sum_xy,
        )

    def __radd__(self, other: Any) -> MomentStats:
        # lets sum(list_of_stats) work: sum() starts from the integer 0
        if other == 0:
            return self
        return NotImplemented

    # -- moments ------------------------------------------------------------------------------
    # Sample (co)variances from sums, ddof=1: s² = (Σy² − (Σy)²/n) / (n − 1). Rounding can make a
    # true zero slightly negative, so variances are clamped at 0 (gbstats does the same check).

    @property
    def mean(self) -> float:
        return self.sum_y / self.n if self.n else math.nan

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance of y (ddof=1); NaN below two users."""
        if self.n < 2:
            return math.nan
        return max((self.sum_y2 - self.sum_y * self.sum_y / self.n) / (self.n - 1), 0.0)

    @property
    def variance_x(self) -> float:
        if self.n < 2:
            return math.nan
        return max((self.sum_x2 - self.sum_x * self.sum_x / self.n) / (self.n - 1), 0.0)

    @property
    def covariance_xy(self) -> float:
        if self.n < 2:
            return math.nan
        return (self.sum_xy - self.sum_x * self.sum_y / self.n) / (self.n - 1)

    # -- ratio metrics (x = per-user denominator) ---------------------------------------------

    @property
    def ratio(self) -> float:
        """R = Σy / Σx, e.g. refund_rate = refunds / purchases over the arm's users."""
        return self.sum_y / self.sum_x if self.sum_x else math.nan

    @property
    def ratio_unit_variance(self) -> float:
        """n·Var(R̂): the per-user variance of the ratio, so that Var(R̂) = this / n.

        Delta method for a ratio of means (Deng, Knoblich & Lu 2018, "Applying the Delta Method in
        Metric Analytics", the ratio-metric variance; gbstats ``RatioStatistic.variance``):
            Var(ȳ/x̄) ≈ (1/n)·(σ_y² − 2R·σ_xy + R²·σ_x²) / μ_x²,   R = μ_y/μ_x.
        Users (the randomisation units) are the i.i.d. draws, not purchases: treating purchases as
        independent would understate the variance when one user refunds several of them.
        """
        if self.n < 2 or not self.sum_x:
            return math.nan
        r, mean_x = self.ratio, self.mean_x
        unit_var = (self.variance - 2 * r * self.covariance_xy + r * r * self.variance_x) / (mean_x * mean_x)
        return max(unit_var, 0.0)

    # -- storage ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, float | int]:
        """camelCase keys for Firestore: {n, sumY, sumY2, sumX, sumX2, sumXY}."""
        return {key: getattr(self, attr) for attr, key in _STORAGE_KEYS.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MomentStats:
        """Inverse of ``to_dict``; the x sums may be absent (plain mean or proportion metric)."""
        return cls(
            n=int(data["n"]),
            sum_y=float(data["sumY"]),
            sum_y2=float(data["sumY2"]),
            sum_x=float(data.get("sumX", 0.0)),
            sum_x2=float(data.get("sumX2", 0.0)),
            sum_xy=float(data.get("sumXY", 0.0)),
        )

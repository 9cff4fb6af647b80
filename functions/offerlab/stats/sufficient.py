"""Per-arm sufficient statistics: everything the tests need, summable across days and segments.

Following GrowthBook gbstats (``SampleMeanStatistic``, ``RatioStatistic``,
``RegressionAdjustedStatistic``): an arm is summarised by n, Σy, Σy² and, when a second per-user
quantity x exists, Σx, Σx², Σxy. x is EITHER the denominator of a ratio metric (refund_rate =
refunds / purchases: y = refunds, x = purchases per user) OR the pre-exposure covariate for CUPED,
never both in one ``MomentStats``. Sums add, so daily or per-segment snapshots combine exactly.

Numerical stability (shifted sums). Raw power sums cancel catastrophically: for y = 1e9 + [4, 7, 13,
16], Σy² − (Σy)²/n loses every digit (true variance 30, computed 0). So the sums are SHIFTED: every
sum is of (y − K_y) and (x − K_x) with shifts K fixed per metric before the data arrive (the
pre-launch baseline, or the first observation), the classical "shifted data" algorithm (Chan, Golub &
LeVeque 1983, "Algorithms for computing the sample variance", §3; Welford 1962 for the one-pass
view). The relative error of the variance is then about ε·(1 + n(ȳ − K)²/s²) instead of ε·(1 + nȳ²/s²).
Shifted sums stay summable by pure addition, so per-user contributions can be streamed into a
store with blind commutative increments (no read-modify-write): two statistics with the same
shifts merge by adding fields; with different shifts one is first re-centred exactly (``recentered``:
the binomial expansion of Σ(y − K₁)^p around K₂). Shift 0 is the plain raw-sum form used so far,
and stays the default of the constructor (backward compatible).

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
_SHIFT_KEYS = {"shift_y": "shiftY", "shift_x": "shiftX"}


@dataclass(frozen=True, slots=True)
class MomentStats:
    """Sufficient statistics of one arm (or of one day/segment of an arm)."""

    n: int
    """Number of randomisation units (users)."""
    sum_y: float
    """Σ (y − shift_y): the metric (or the numerator of a ratio metric) per user, shifted."""
    sum_y2: float
    """Σ (y − shift_y)²."""
    sum_x: float = 0.0
    """Σ (x − shift_x): the ratio denominator or the CUPED pre-exposure covariate per user (0 when unused)."""
    sum_x2: float = 0.0
    """Σ (x − shift_x)²."""
    sum_xy: float = 0.0
    """Σ (x − shift_x)(y − shift_y)."""
    shift_y: float = 0.0
    """K_y, fixed per metric before launch (0: raw sums)."""
    shift_x: float = 0.0
    """K_x, fixed per metric before launch (0: raw sums)."""

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def zero(cls) -> MomentStats:
        return cls(0, 0.0, 0.0)

    @classmethod
    def from_arrays(cls, y: np.ndarray, x: np.ndarray | None = None, *, shift_y: float | None = None,
                    shift_x: float | None = None) -> MomentStats:
        """Moments of per-user values y (and x, aligned with y). One BLAS dot per square sum.

        The shifts default to the first observation (Chan, Golub & LeVeque 1983, §3: any value of the
        data makes the shifted sums stable to about ε·(1 + n(ȳ − K)²/s²)); pass the metric's
        pre-launch shift to get statistics that merge with streamed ones by plain addition.
        """
        import numpy as np

        y = np.asarray(y, dtype=np.float64)
        ky = float(y[0]) if shift_y is None and y.size else float(shift_y or 0.0)
        dy = y - ky if ky else y
        if x is None:
            return cls(int(y.size), float(dy.sum()), float(np.dot(dy, dy)), shift_y=ky)
        x = np.asarray(x, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"x and y must be aligned per user: {x.shape} != {y.shape}")
        kx = float(x[0]) if shift_x is None and x.size else float(shift_x or 0.0)
        dx = x - kx if kx else x
        return cls(
            int(y.size), float(dy.sum()), float(np.dot(dy, dy)),
            float(dx.sum()), float(np.dot(dx, dx)), float(np.dot(dx, dy)), ky, kx,
        )

    @classmethod
    def from_counts(cls, successes: int, n: int) -> MomentStats:
        """A proportion is the mean of a 0/1 variable, so Σy² = Σy (conversion_rate, churn_rate)."""
        if not 0 <= successes <= n:
            raise ValueError(f"need 0 <= successes <= n, got {successes}, {n}")
        return cls(int(n), float(successes), float(successes))

    def recentered(self, shift_y: float, shift_x: float | None = None) -> MomentStats:
        """The same statistics with other shifts, exactly (binomial expansion, d = K_old − K_new):
            Σ(y − K_new)   = Σ(y − K_old) + n·d_y
            Σ(y − K_new)²  = Σ(y − K_old)² + 2·d_y·Σ(y − K_old) + n·d_y²
            Σ(x−K_new)(y−K_new) = Σ(x−K)(y−K) + d_x·Σ(y−K) + d_y·Σ(x−K) + n·d_x·d_y.
        Exact in real arithmetic; in floating point it costs the cancellation of the two shifts'
        distance, so keep one shift per metric and re-centre only to merge legacy statistics."""
        shift_x = self.shift_x if shift_x is None else shift_x
        dy, dx = self.shift_y - shift_y, self.shift_x - shift_x
        if dy == 0 and dx == 0:
            return self
        n = self.n
        return MomentStats(
            n,
            self.sum_y + n * dy,
            self.sum_y2 + 2 * dy * self.sum_y + n * dy * dy,
            self.sum_x + n * dx,
            self.sum_x2 + 2 * dx * self.sum_x + n * dx * dx,
            self.sum_xy + dx * self.sum_y + dy * self.sum_x + n * dx * dy,
            float(shift_y), float(shift_x),
        )

    def __add__(self, other: MomentStats) -> MomentStats:
        """Merge: field-wise addition when the shifts agree (what blind increments compute); otherwise
        ``other`` is first re-centred onto this object's shifts."""
        if not isinstance(other, MomentStats):
            return NotImplemented
        if other.shift_y != self.shift_y or other.shift_x != self.shift_x:
            if self.n == 0 and not (self.sum_y or self.sum_y2 or self.sum_x or self.sum_x2 or self.sum_xy):
                return other  # the empty statistic (``zero()``) adopts the other's shifts
            other = other.recentered(self.shift_y, self.shift_x)
        return MomentStats(
            self.n + other.n,
            self.sum_y + other.sum_y,
            self.sum_y2 + other.sum_y2,
            self.sum_x + other.sum_x,
            self.sum_x2 + other.sum_x2,
            self.sum_xy + other.sum_xy,
            self.shift_y,
            self.shift_x,
        )

    def __radd__(self, other: Any) -> MomentStats:
        # lets sum(list_of_stats) work: sum() starts from the integer 0
        if other == 0:
            return self
        return NotImplemented

    # -- moments ------------------------------------------------------------------------------
    # Sample (co)variances from shifted sums, ddof=1: s² = (Σd² − (Σd)²/n) / (n − 1) with d = y − K
    # (shift-invariant; Chan, Golub & LeVeque 1983). Rounding can make a true zero slightly
    # negative, so variances are clamped at 0 (gbstats does the same check).

    @property
    def total_y(self) -> float:
        """Σy (unshifted)."""
        return self.sum_y + self.n * self.shift_y

    @property
    def total_x(self) -> float:
        """Σx (unshifted)."""
        return self.sum_x + self.n * self.shift_x

    @property
    def mean(self) -> float:
        return self.shift_y + self.sum_y / self.n if self.n else math.nan

    @property
    def mean_x(self) -> float:
        return self.shift_x + self.sum_x / self.n if self.n else math.nan

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
        total_x = self.total_x
        return self.total_y / total_x if total_x else math.nan

    @property
    def ratio_unit_variance(self) -> float:
        """n·Var(R̂): the per-user variance of the ratio, so that Var(R̂) = this / n.

        Delta method for a ratio of means (Deng, Knoblich & Lu 2018, "Applying the Delta Method in
        Metric Analytics", the ratio-metric variance; gbstats ``RatioStatistic.variance``):
            Var(ȳ/x̄) ≈ (1/n)·(σ_y² − 2R·σ_xy + R²·σ_x²) / μ_x²,   R = μ_y/μ_x.
        Users (the randomisation units) are the i.i.d. draws, not purchases: treating purchases as
        independent would understate the variance when one user refunds several of them.
        """
        if self.n < 2 or not self.total_x:
            return math.nan
        r, mean_x = self.ratio, self.mean_x
        unit_var = (self.variance - 2 * r * self.covariance_xy + r * r * self.variance_x) / (mean_x * mean_x)
        return max(unit_var, 0.0)

    # -- storage ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, float | int]:
        """camelCase keys for Firestore: {n, sumY, sumY2, sumX, sumX2, sumXY} and, when a shift is not
        0, {shiftY, shiftX} (raw-sum documents stay exactly as they were)."""
        out: dict[str, float | int] = {key: getattr(self, attr) for attr, key in _STORAGE_KEYS.items()}
        if self.shift_y or self.shift_x:
            out.update({key: getattr(self, attr) for attr, key in _SHIFT_KEYS.items()})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MomentStats:
        """Inverse of ``to_dict``; the x sums and the shifts may be absent (0)."""
        return cls(
            n=int(data["n"]),
            sum_y=float(data["sumY"]),
            sum_y2=float(data["sumY2"]),
            sum_x=float(data.get("sumX", 0.0)),
            sum_x2=float(data.get("sumX2", 0.0)),
            sum_xy=float(data.get("sumXY", 0.0)),
            shift_y=float(data.get("shiftY", 0.0)),
            shift_x=float(data.get("shiftX", 0.0)),
        )

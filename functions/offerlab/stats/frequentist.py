"""Fixed-horizon frequentist comparisons of two arms from their ``MomentStats``.

Everything here works on sufficient statistics (see ``sufficient.py``), the way GrowthBook's gbstats
frequentist engine does: an arm's estimate (a mean, a ratio of means, or a CUPED-adjusted mean) and
its per-unit variance go through one comparison routine that gives the absolute lift (Welch t-test,
Welch–Satterthwaite df) and the relative lift (delta method on the ratio of the two arm estimates).

Distribution functions come from ``scipy.special`` (``stdtr``/``stdtrit``/``ndtr``/``ndtri``/
``chdtrc``), the same kernels ``scipy.stats.t.sf``, ``norm.sf`` and ``chi2.sf`` call, without the
~0.8 s import of ``scipy.stats`` on a cold start. Two-sided p-values are ``2·sf(|t|)`` computed as a
LOWER tail at −|t|, never ``1 − cdf``: they stay accurate down to ~1e-300 instead of flooring at 1e-16.

These p-values are valid for ONE look at a pre-planned horizon. Anything looked at repeatedly
(guardrails every 5 minutes) must use ``sequential.py`` instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from scipy import special

from offerlab.stats.sufficient import MetricKind, MomentStats

SRM_ALERT_P = 0.001
"""Sample-ratio mismatch alert threshold: chi-square goodness-of-fit p below this means the observed
arm counts are implausible under the configured split (assignment or logging is broken). 0.001, not
0.05, because SRM is checked continuously on every experiment, and a real SRM gives p far below it
(Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments")."""



@dataclass(frozen=True, slots=True)
class LiftResult:
    """Treatment versus control on one metric. Lifts are treatment − control (absolute) and
    treatment / control − 1 (relative, a fraction: 0.05 means +5 %)."""

    control_mean: float
    treatment_mean: float
    absolute_lift: float
    relative_lift: float
    ci_absolute: tuple[float, float]
    """(1 − alpha) Welch interval for the absolute lift."""
    ci_relative: tuple[float, float]
    """(1 − alpha) delta-method interval for the relative lift."""
    p_value: float
    """Two-sided p-value of H0: equal means (Welch t on the absolute lift)."""
    df: float
    """Welch–Satterthwaite degrees of freedom (the t distribution used for p and CIs)."""
    method: str
    n_control: int
    n_treatment: int
    se_absolute: float = math.nan
    se_relative: float = math.nan
    alpha: float = 0.05
    p_value_relative: float = math.nan
    """Two-sided p-value of H0: relative lift 0 by the delta method, z = (t/c − 1)/SE_rel with the same
    Welch df (gbstats reports this one for relative effects). It tests the same null as ``p_value``
    on another scale and differs from it at finite n: report ``p_value`` for the absolute lift."""

    def to_dict(self) -> dict[str, object]:
        """camelCase, JSON-friendly (tuples become lists) for storage."""
        return {
            "controlMean": self.control_mean,
            "treatmentMean": self.treatment_mean,
            "absoluteLift": self.absolute_lift,
            "relativeLift": self.relative_lift,
            "ciAbsolute": list(self.ci_absolute),
            "ciRelative": list(self.ci_relative),
            "pValue": self.p_value,
            "df": self.df,
            "method": self.method,
            "nControl": self.n_control,
            "nTreatment": self.n_treatment,
            "seAbsolute": self.se_absolute,
            "seRelative": self.se_relative,
            "alpha": self.alpha,
            "pValueRelative": self.p_value_relative,
        }


# --------------------------------------------------------------------------------------------
# distribution helpers


def two_sided_p_value(statistic: float, df: float = math.inf) -> float:
    """2·P(T > |t|) for Student t with ``df`` degrees of freedom (normal when df is infinite).

    Computed as 2·cdf(−|t|) = 2·sf(|t|): the lower tail of a negative argument carries full relative
    precision, whereas 1 − cdf(|t|) cancels to 0 below ~1e-16.
    """
    if math.isnan(statistic) or math.isnan(df):
        return math.nan
    tail = special.ndtr(-abs(statistic)) if math.isinf(df) else special.stdtr(df, -abs(statistic))
    return min(1.0, 2.0 * float(tail))


def critical_value(alpha: float, df: float = math.inf) -> float:
    """Two-sided critical value: the (1 − alpha/2) quantile of t(df) (or of the normal)."""
    if math.isinf(df):
        return float(-special.ndtri(alpha / 2))
    return float(-special.stdtrit(df, alpha / 2))


def welch_df(var_control: float, n_control: int, var_treatment: float, n_treatment: int) -> float:
    """Welch–Satterthwaite degrees of freedom (Welch 1947; Satterthwaite 1946):
    df = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1))."""
    a, b = var_control / n_control, var_treatment / n_treatment
    denominator = a * a / (n_control - 1) + b * b / (n_treatment - 1)
    if denominator == 0:
        return float(n_control + n_treatment - 2)  # both variances 0: df is moot, keep it finite
    return (a + b) ** 2 / denominator


# --------------------------------------------------------------------------------------------
# the one comparison routine every metric kind goes through


def compare_estimates(
    mean_control: float,
    unit_var_control: float,
    n_control: int,
    mean_treatment: float,
    unit_var_treatment: float,
    n_treatment: int,
    *,
    method: str,
    alpha: float = 0.05,
) -> LiftResult:
    """Compare two independent arm estimates whose variances are ``unit_var / n``.

    Absolute lift: Welch t-test. Relative lift: delta method on the ratio of means (GrowthBook
    gbstats ``frequentist_variance(..., relative=True)``; Deng, Knoblich & Lu 2018, ratio of means):
        Var(μ̂_t/μ̂_c) ≈ σ_t²/(μ_c² n_t) + σ_c² μ_t²/(μ_c⁴ n_c),
    with the same Welch df for its interval, as gbstats does.
    """
    nan_pair = (math.nan, math.nan)
    if n_control < 2 or n_treatment < 2 or math.isnan(unit_var_control) or math.isnan(unit_var_treatment):
        diff = mean_treatment - mean_control if n_control and n_treatment else math.nan
        return LiftResult(mean_control, mean_treatment, diff, math.nan, nan_pair, nan_pair, math.nan, math.nan,
                          method, n_control, n_treatment, alpha=alpha)

    diff = mean_treatment - mean_control
    var_diff = unit_var_control / n_control + unit_var_treatment / n_treatment
    se = math.sqrt(var_diff)
    df = welch_df(unit_var_control, n_control, unit_var_treatment, n_treatment)
    if se > 0:
        p_value = two_sided_p_value(diff / se, df)
    else:  # no noise at all: the difference is either exactly zero or certain
        p_value = 1.0 if diff == 0 else 0.0
    crit = critical_value(alpha, df)
    ci_abs = (diff - crit * se, diff + crit * se)

    # A baseline so small that its fourth power underflows is as undefined as a zero one.
    if mean_control != 0 and mean_control**4 != 0:
        relative = mean_treatment / mean_control - 1.0
        var_rel = (unit_var_treatment / (mean_control**2 * n_treatment)
                   + unit_var_control * mean_treatment**2 / (mean_control**4 * n_control))
        se_rel = math.sqrt(var_rel)
        ci_rel = (relative - crit * se_rel, relative + crit * se_rel)
        p_rel = two_sided_p_value(relative / se_rel, df) if se_rel > 0 else (1.0 if relative == 0 else 0.0)
    else:  # relative lift against a zero baseline is undefined
        relative, se_rel, ci_rel, p_rel = math.nan, math.nan, nan_pair, math.nan
    return LiftResult(mean_control, mean_treatment, diff, relative, ci_abs, ci_rel, p_value, df, method,
                      n_control, n_treatment, se_absolute=se, se_relative=se_rel, alpha=alpha,
                      p_value_relative=p_rel)


# --------------------------------------------------------------------------------------------
# metric kinds


def welch_test(control: MomentStats, treatment: MomentStats, *, alpha: float = 0.05,
               method: str = "welch") -> LiftResult:
    """Mean metric per user (net_ltv, arpu): Welch's unequal-variance t-test on the arm means."""
    return compare_estimates(control.mean, control.variance, control.n,
                             treatment.mean, treatment.variance, treatment.n, method=method, alpha=alpha)


def proportion_test(successes_control: int, n_control: int, successes_treatment: int, n_treatment: int,
                    *, alpha: float = 0.05) -> LiftResult:
    """Proportion metric (conversion_rate, churn_rate): the mean of a 0/1 variable, so the same
    Welch machinery with Σy² = Σy. The unpooled (Wald) variance p(1−p)·n/(n−1) per arm."""
    return welch_test(MomentStats.from_counts(successes_control, n_control),
                      MomentStats.from_counts(successes_treatment, n_treatment), alpha=alpha, method="proportion")


def ratio_estimate(stats: MomentStats) -> tuple[float, float]:
    """(R, per-unit variance) of a ratio metric R = Σy / Σx, x the per-user denominator; the
    delta-method variance (Deng, Knoblich & Lu 2018) lives on ``MomentStats.ratio_unit_variance``."""
    return stats.ratio, stats.ratio_unit_variance


def ratio_test(control: MomentStats, treatment: MomentStats, *, alpha: float = 0.05) -> LiftResult:
    """Ratio metric (refund_rate = refunds/purchases, trial_conversion_rate = conversions/trials):
    per-arm ratio and delta-method variance, then the common comparison (df from the per-unit
    variances, as gbstats does for ``RatioStatistic``)."""
    r_c, v_c = ratio_estimate(control)
    r_t, v_t = ratio_estimate(treatment)
    return compare_estimates(r_c, v_c, control.n, r_t, v_t, treatment.n, method="ratio_delta", alpha=alpha)


def cuped_theta(control: MomentStats, treatment: MomentStats) -> float:
    """θ = Cov(y, x) / Var(x) from both arms pooled (Deng, Xu, Kohavi & Walker 2013, "Improving the
    Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data", control variates;
    one θ for both arms, as they recommend and as gbstats ``compute_theta`` does). Within-arm sums of
    squares are pooled, which makes θ exactly the OLS slope of x in the regression y ~ arm + x."""
    sxx = _pooled_sxx(control, treatment)
    if not sxx > 0:  # no covariate (or a constant one): no adjustment
        return 0.0
    sxy = (control.n - 1) * control.covariance_xy + (treatment.n - 1) * treatment.covariance_xy
    return sxy / sxx


def _pooled_sxx(control: MomentStats, treatment: MomentStats) -> float:
    """Within-arm Σ(x − x̄)² over both arms (NaN below two users per arm)."""
    return (control.n - 1) * control.variance_x + (treatment.n - 1) * treatment.variance_x


def cuped_test(control: MomentStats, treatment: MomentStats, *, alpha: float = 0.05) -> LiftResult:
    """Mean metric with a pre-exposure covariate x (CUPED, Deng et al. 2013).

    Adjusted arm mean  ȳ_cv = ȳ − θ(x̄ − x̄_pooled)       (Deng et al. 2013, the control-variate
                                                         estimator, E[X] estimated by x̄_pooled)
    Per-unit variance  σ_y² − 2θσ_xy + θ²σ_x²            (= σ_y²(1 − ρ²) at the optimal θ, their eq. 4)
    The absolute lift is then (ȳ_t − ȳ_c) − θ(x̄_t − x̄_c), identical to the OLS arm coefficient.
    The relative lift treats the two adjusted means as independent (the shared x̄_pooled term is
    second order); gbstats' ``frequentist_variance_relative_cuped`` refines that covariance.
    Falls back to a plain Welch test when the covariate has no variance.
    """
    if not _pooled_sxx(control, treatment) > 0:
        return welch_test(control, treatment, alpha=alpha)
    theta = cuped_theta(control, treatment)
    pooled_x = (control.total_x + treatment.total_x) / (control.n + treatment.n)

    def adjusted(stats: MomentStats) -> tuple[float, float]:
        mean = stats.mean - theta * (stats.mean_x - pooled_x)
        var = stats.variance - 2 * theta * stats.covariance_xy + theta * theta * stats.variance_x
        return mean, max(var, 0.0)

    m_c, v_c = adjusted(control)
    m_t, v_t = adjusted(treatment)
    return compare_estimates(m_c, v_c, control.n, m_t, v_t, treatment.n, method="cuped", alpha=alpha)


def analyze_moments(control: MomentStats, treatment: MomentStats, kind: MetricKind = "mean", *,
                    alpha: float = 0.05) -> LiftResult:
    """One entry point per metric kind (API.md §7): ``mean`` uses CUPED when the stats carry a
    covariate (Σx² > 0 in either arm) and Welch otherwise; ``proportion`` is Welch on 0/1 values;
    ``ratio`` is the delta method with x as the denominator."""
    if kind == "ratio":
        return ratio_test(control, treatment, alpha=alpha)
    if kind == "proportion":
        return welch_test(control, treatment, alpha=alpha, method="proportion")
    if kind == "mean":
        if control.sum_x2 > 0 or treatment.sum_x2 > 0:
            return cuped_test(control, treatment, alpha=alpha)
        return welch_test(control, treatment, alpha=alpha)
    raise ValueError(f"unknown metric kind {kind!r}")


# --------------------------------------------------------------------------------------------
# experiment-level checks


def srm_p_value(observed: Mapping[str, int] | Sequence[int],
                expected_shares: Mapping[str, float] | Sequence[float]) -> float:
    """Sample-ratio mismatch: Pearson chi-square goodness-of-fit of the arm counts against the
    configured split (Pearson 1900; Fabijan et al. 2019). Alert when the result is < ``SRM_ALERT_P``.

    ``observed`` and ``expected_shares`` are both mappings keyed by arm (an arm missing from
    ``observed`` counts 0) or both sequences in the same order. Shares may be fractions or
    percentages: they are normalised. An arm observed with an expected share of 0 is a certain
    mismatch (p = 0). With no users, or fewer than two arms to compare, there is nothing to test (1).
    """
    if isinstance(observed, Mapping) != isinstance(expected_shares, Mapping):
        raise TypeError("observed and expected_shares must both be mappings or both be sequences")
    if isinstance(observed, Mapping):
        arms = list(dict.fromkeys([*expected_shares, *observed]))
        counts = [int(observed.get(arm, 0)) for arm in arms]
        shares = [float(expected_shares.get(arm, 0.0)) for arm in arms]  # type: ignore[union-attr]
    else:
        counts, shares = [int(c) for c in observed], [float(s) for s in expected_shares]
        if len(counts) != len(shares):
            raise ValueError("observed and expected_shares differ in length")
    if any(c < 0 for c in counts) or any(s < 0 for s in shares) or not sum(shares) > 0:
        raise ValueError("counts and shares must be non-negative, shares not all zero")
    total, share_total = sum(counts), sum(shares)
    if total == 0:
        return 1.0
    if any(c > 0 and s == 0 for c, s in zip(counts, shares)):
        return 0.0
    cells = [(c, total * s / share_total) for c, s in zip(counts, shares) if s > 0]
    if len(cells) < 2:
        return 1.0
    statistic = sum((c - e) ** 2 / e for c, e in cells)
    return float(special.chdtrc(len(cells) - 1, statistic))  # chi2.sf(statistic, k − 1)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values, in input order (Holm 1979):
    p̃_(i) = max_{j≤i} min(1, (m − j + 1)·p_(j)) over the ascending order. Controls the family-wise
    error rate under any dependence; compare each adjusted p with alpha."""
    m = len(p_values)
    if any(not 0.0 <= p <= 1.0 for p in p_values):  # also rejects NaN
        raise ValueError("p-values must lie in [0, 1]")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg step-up adjusted p-values (q-values), in input order (Benjamini & Hochberg
    1995, "Controlling the false discovery rate", JRSS B 57(1)):
        p̃_(i) = min_{j ≥ i} min(1, m·p_(j)/j) over the ascending order.
    Controls the false discovery rate among the rejected hypotheses (independent or positively
    dependent p-values, Benjamini & Yekutieli 2001). Used for the SECONDARY KPIs of an experiment,
    which inform rather than decide; the launch decision (PRIMARY KPI, and any family that must not
    contain a single false claim) uses Holm (``holm_adjust``, family-wise error)."""
    m = len(p_values)
    if any(not 0.0 <= p <= 1.0 for p in p_values):  # also rejects NaN
        raise ValueError("p-values must lie in [0, 1]")
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, index in enumerate(order):
        rank = m - k  # 1-based ascending rank
        running = min(running, m * p_values[index] / rank)
        adjusted[index] = min(1.0, running)
    return adjusted


@dataclass(frozen=True, slots=True)
class DirectionalTest:
    """One-sided inference for a KPI with a direction (INCREASE: H1 treatment > control; DECREASE:
    H1 treatment < control). MAINTAIN has no side: use the two-sided ``LiftResult``."""

    direction: str
    p_value: float
    """One-sided p-value of the absolute lift (Welch t, lower tail computed directly: no 1 − cdf)."""
    p_value_relative: float
    """One-sided p-value of the relative lift (delta method)."""
    bound_absolute: float
    """One-sided (1 − alpha) bound: a lower bound for INCREASE, an upper bound for DECREASE."""
    bound_relative: float


def directional_test(lift: LiftResult, direction: str, *, alpha: float | None = None) -> DirectionalTest:
    """One-sided p-values and bounds from a ``LiftResult`` (same estimate, SE and Welch df):
    p = P(T_df ≥ t) for INCREASE, P(T_df ≤ t) for DECREASE (Student 1908; Welch 1947)."""
    if direction not in ("INCREASE", "DECREASE"):
        raise ValueError(f"a one-sided test needs direction INCREASE or DECREASE, got {direction!r}")
    alpha = lift.alpha if alpha is None else alpha
    sign = 1.0 if direction == "INCREASE" else -1.0
    df = lift.df

    def tail(estimate: float, se: float) -> float:
        if math.isnan(estimate) or math.isnan(se):
            return math.nan
        if se == 0:
            return 0.0 if sign * estimate > 0 else 1.0
        t = sign * estimate / se
        return float(special.ndtr(-t)) if math.isinf(df) else float(special.stdtr(df, -t))

    crit = critical_value(2 * alpha, df)  # the (1 − alpha) quantile

    def bound(estimate: float, se: float) -> float:
        return estimate - sign * crit * se

    return DirectionalTest(direction, tail(lift.absolute_lift, lift.se_absolute),
                           tail(lift.relative_lift, lift.se_relative),
                           bound(lift.absolute_lift, lift.se_absolute), bound(lift.relative_lift, lift.se_relative))


# --------------------------------------------------------------------------------------------
# CUPED for ratio metrics


_RATIO_CUPED_VARS = ("y", "x", "y_pre", "x_pre")


@dataclass(frozen=True, slots=True)
class RatioCovariateStats:
    """Sufficient statistics of a ratio metric with its pre-exposure ratio as covariate, one arm:
    n, the sums of y, x (numerator, denominator in the experiment window), y_pre, x_pre (the same
    before exposure), and the 10 sums of pairwise products, all of values shifted by ``shifts``
    (fixed per metric; 0 = raw). Summable by field-wise addition when the shifts agree, like
    ``MomentStats`` (gbstats ``RegressionAdjustedRatioStatistic`` keeps the same sums)."""

    n: int
    sums: tuple[float, float, float, float]
    products: tuple[float, ...]
    """Σ(a−K_a)(b−K_b) for the pairs (y,y) (y,x) (y,y_pre) (y,x_pre) (x,x) (x,y_pre) (x,x_pre)
    (y_pre,y_pre) (y_pre,x_pre) (x_pre,x_pre)."""
    shifts: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_arrays(cls, y, x, y_pre, x_pre, *, shifts: tuple[float, float, float, float] | None = None
                    ) -> RatioCovariateStats:
        import numpy as np

        cols = [np.asarray(a, dtype=np.float64) for a in (y, x, y_pre, x_pre)]
        if len({c.shape for c in cols}) != 1:
            raise ValueError("y, x, y_pre and x_pre must be aligned per user")
        if shifts is None:
            shifts = tuple(float(c[0]) if c.size else 0.0 for c in cols)  # type: ignore[assignment]
        d = [c - k for c, k in zip(cols, shifts)]  # type: ignore[arg-type]
        products = tuple(float(np.dot(d[i], d[j])) for i in range(4) for j in range(i, 4))
        return cls(int(cols[0].size), tuple(float(v.sum()) for v in d), products, tuple(shifts))  # type: ignore[arg-type]

    def __add__(self, other: RatioCovariateStats) -> RatioCovariateStats:
        if self.shifts != other.shifts:
            raise ValueError("merge ratio-covariate statistics with the same shifts (fixed per metric)")
        return RatioCovariateStats(self.n + other.n, tuple(a + b for a, b in zip(self.sums, other.sums)),  # type: ignore[arg-type]
                                   tuple(a + b for a, b in zip(self.products, other.products)), self.shifts)

    def mean(self, i: int) -> float:
        return self.shifts[i] + self.sums[i] / self.n

    def cov(self, i: int, j: int) -> float:
        """Sample covariance (ddof = 1), shift-invariant."""
        i, j = min(i, j), max(i, j)
        index = [(a, b) for a in range(4) for b in range(a, 4)].index((i, j))
        return (self.products[index] - self.sums[i] * self.sums[j] / self.n) / (self.n - 1)


def _ratio_influence(stats: RatioCovariateStats) -> tuple[float, float, float, float, float]:
    """(R, R_pre, Var ℓ, Var ℓ', Cov(ℓ, ℓ')) with the linearised per-user influences
    ℓ = (y − R·x)/x̄ and ℓ' = (y' − R'·x')/x̄' (delta method for ratios, Deng, Knoblich & Lu 2018):
    R̂ − R ≈ mean(ℓ), so Var(R̂) ≈ Var(ℓ)/n and Cov(R̂, R̂') ≈ Cov(ℓ, ℓ')/n."""
    y, x, yp, xp = 0, 1, 2, 3
    r, rp = stats.mean(y) / stats.mean(x), stats.mean(yp) / stats.mean(xp)
    mx, mxp = stats.mean(x), stats.mean(xp)
    c = stats.cov
    var_l = (c(y, y) - 2 * r * c(y, x) + r * r * c(x, x)) / (mx * mx)
    var_lp = (c(yp, yp) - 2 * rp * c(yp, xp) + rp * rp * c(xp, xp)) / (mxp * mxp)
    cov_ll = (c(y, yp) - rp * c(y, xp) - r * c(x, yp) + r * rp * c(x, xp)) / (mx * mxp)
    return r, rp, var_l, var_lp, cov_ll


def ratio_cuped_test(control: RatioCovariateStats, treatment: RatioCovariateStats, *,
                     alpha: float = 0.05) -> LiftResult:
    """CUPED for a ratio metric in Deng's regression form (Deng, Xu, Kohavi & Walker 2013, §3.3, with
    the delta-method linearisation of Deng, Knoblich & Lu 2018): the covariate of the ratio R = Σy/Σx
    is its own pre-exposure ratio R' = Σy'/Σx'. On the linearised influences ℓ, ℓ' the adjustment is
    ordinary CUPED:
        θ = Σ_arms (n−1)Cov(ℓ, ℓ') / Σ_arms (n−1)Var(ℓ')      (pooled within arms: the OLS slope of ℓ on ℓ'
                                                             with an arm dummy)
        R̂_adj = R̂ − θ·(R̂' − R̂'_pooled),  per-user variance Var ℓ − 2θ·Cov(ℓ, ℓ') + θ²·Var ℓ'.
    The absolute lift is (R̂_t − R̂_c) − θ(R̂'_t − R̂'_c). Without covariate variance it is the plain
    delta-method ratio test."""
    r_c, rp_c, vl_c, vlp_c, cl_c = _ratio_influence(control)
    r_t, rp_t, vl_t, vlp_t, cl_t = _ratio_influence(treatment)
    sxx = (control.n - 1) * vlp_c + (treatment.n - 1) * vlp_t
    theta = ((control.n - 1) * cl_c + (treatment.n - 1) * cl_t) / sxx if sxx > 0 else 0.0
    pooled_pre = (control.mean(2) * control.n + treatment.mean(2) * treatment.n) / (
        control.mean(3) * control.n + treatment.mean(3) * treatment.n)
    adj_c = r_c - theta * (rp_c - pooled_pre)
    adj_t = r_t - theta * (rp_t - pooled_pre)
    v_c = max(vl_c - 2 * theta * cl_c + theta * theta * vlp_c, 0.0)
    v_t = max(vl_t - 2 * theta * cl_t + theta * theta * vlp_t, 0.0)
    return compare_estimates(adj_c, v_c, control.n, adj_t, v_t, treatment.n, method="ratio_cuped", alpha=alpha)

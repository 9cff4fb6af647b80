"""Always-valid inference for metrics that are looked at repeatedly (guardrails every 5 minutes).

A fixed-horizon test checked after every batch rejects a true null far more often than alpha
("Repeated significance tests on accumulating data", Armitage, McPherson & Rowe 1969; the
"peeking" problem of Johari et al. 2017; tests/unit/stats shows it on simulated A/A experiments).
Here the evidence is a normal-MIXTURE likelihood ratio Λ (an e-process): under the null it is a
nonnegative (super)martingale with E[Λ] ≤ 1, so by Ville's inequality

    P(Λ ever reaches 1/alpha, at any of the looks, however many) ≤ alpha.

That is the mixture SPRT of Robbins (1970) as used for A/B tests by Johari, Koomen, Pekelis &
Walsh 2017 ("Peeking at A/B tests", Optimizely) and Eppo, and the normal-mixture boundary of
Howard, Ramdas, McAuliffe & Sekhon 2021 ("Time-uniform, nonparametric, nonasymptotic confidence
sequences", Ann. Statist. 49(2)). The arm variances are unknown and estimated at each look (plug-in),
which makes the guarantee asymptotic, exactly as in the "asymptotic confidence sequences" of
Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2023; ``min_n`` keeps the first looks out of the
small-sample regime where heavy tails make the plug-in variance unreliable.

Standardised form used throughout. For an estimate θ̂ with estimated variance V = σ²/t (t = the
effective number of users, σ² the per-user variance) and a mixing distribution N(0, ρ²σ²) over the
effect (ρ² is per user, so the tuning is scale-free), write ψ = t·ρ² and Z = (θ̂ − θ₀)/√V:

    two-sided  log Λ = −½·log(1+ψ) + ψ/(1+ψ) · Z²/2
    one-sided  log Λ = log 2 − ½·log(1+ψ) + ψ/(1+ψ) · Z²/2 + log Φ(Z·√(ψ/(1+ψ)))

(the second mixes only over effects in the alarm direction: a half-normal mixture, Howard et al.
2021's one-sided normal mixture). They are Johari et al.'s mSPRT statistic
√(σ²/(σ²+nτ²))·exp(n²τ²(x̄−θ₀)²/(2σ²(σ²+nτ²))) with τ² = ρ²σ², rewritten in Z and ψ.

Tuning (``tuning_n``): the boundary is tightest at the effective sample size t* when
ψ* = t*·ρ² solves ψ = 2·log(1/alpha) + log(1+ψ), i.e. ρ² ≈ (2·log(1/α) + log(1 + 2·log(1/α))) / t*
(Howard et al. 2021's choice of ρ for a target time; the same formula is in Waudby-Smith et al.
2023). At alpha = 0.05, ψ* ≈ 8.2: the mixing standard deviation over effects is ≈ 2.9 standard
errors of the estimate at t*. Smaller ``tuning_n`` reacts faster to large early breaches but
widens the bound later; larger ``tuning_n`` is tighter late and slower early. Any fixed value
keeps the alpha guarantee; it must not change while an experiment runs (choose it at launch, from
the expected traffic).

Pure Python (``math`` only): the 5-minute guardrail sweep does not import numpy or scipy for this.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Sequence

from offerlab.stats.sufficient import MetricKind, MomentStats

GuardrailMode = Literal["treatment_value", "absolute_change", "relative_change"]
Direction = Literal["max", "min"]

_SQRT2 = math.sqrt(2.0)

DEFAULT_TUNING_N = 10_000
"""Effective number of users (both arms for a comparison, the treatment arm alone for a
``treatment_value`` guardrail) at which the boundary is tightest. See the module docstring."""
DEFAULT_MIN_N = 100
"""Per compared arm: below this many users no alarm is raised (plug-in variance too unreliable)."""


# --------------------------------------------------------------------------------------------
# mixture martingale in standardised form


def mixing_rho2(tuning_n: float, alpha: float, *, one_sided: bool = False) -> float:
    """Per-user mixing variance ρ² that makes the boundary tightest at ``tuning_n`` users.

    Minimising the two-sided half-width √((1+ψ)/ψ · log((1+ψ)/α²)) over ψ = t·ρ² gives the fixed
    point ψ = a + log(1+ψ), a = 2·log(1/α); its first iterate a + log(1+a) is the closed form of
    Howard et al. 2021 and Waudby-Smith et al. 2023, iterated here to convergence (contraction:
    slope 1/(1+ψ) < 1). The one-sided mixture behaves like the two-sided one at 2α, hence its a.
    """
    if tuning_n <= 0 or not 0 < alpha < 1:
        raise ValueError("need tuning_n > 0 and 0 < alpha < 1")
    a = 2 * math.log(1 / (min(2 * alpha, 0.999) if one_sided else alpha))
    psi = a + math.log1p(a)
    for _ in range(50):
        psi = a + math.log1p(psi)
    return psi / tuning_n


def log_mixture_two_sided(z: float, psi: float) -> float:
    """log Λ of the two-sided normal mixture (Robbins 1970; Johari et al. 2017 mSPRT)."""
    return -0.5 * math.log1p(psi) + psi / (1 + psi) * z * z / 2


def log_mixture_one_sided(z: float, psi: float) -> float:
    """log Λ of the half-normal mixture over effects in the +z direction (Howard et al. 2021,
    one-sided normal mixture): ∫₀^∞ exp(λS − λ²V/2) dF(λ) with F half-normal, in closed form."""
    shrink = psi / (1 + psi)
    return math.log(2.0) - 0.5 * math.log1p(psi) + shrink * z * z / 2 + _log_ndtr(z * math.sqrt(shrink))


def _log_ndtr(z: float) -> float:
    """log Φ(z) without underflow (scipy.special.log_ndtr without importing scipy)."""
    if z > 0:
        return math.log1p(-0.5 * math.erfc(z / _SQRT2))
    if z > -37:
        return math.log(0.5 * math.erfc(-z / _SQRT2))
    # Mills-ratio asymptotic expansion (Abramowitz & Stegun 26.2.12); relative error < 1e-9 here
    inv2 = 1 / (z * z)
    return -z * z / 2 - math.log(-z) - 0.5 * math.log(2 * math.pi) + math.log1p(-inv2 + 3 * inv2 * inv2
                                                                                 - 15 * inv2**3)


@lru_cache(maxsize=4096)
def _one_sided_critical_z(psi: float, alpha: float) -> float:
    """The z at which the one-sided log Λ reaches log(1/α) (it increases in z; bisection).
    Cached: a sweep sees the same (ψ, α) for every guardrail of an experiment."""
    target = math.log(1 / alpha)
    lo, hi = 0.0, _two_sided_critical_z(psi, alpha)  # at that z the one-sided log Λ ≥ target
    for _ in range(80):
        mid = (lo + hi) / 2
        if log_mixture_one_sided(mid, psi) < target:
            lo = mid
        else:
            hi = mid
    return hi


def _two_sided_critical_z(psi: float, alpha: float) -> float:
    """|Z| at which the two-sided log Λ reaches log(1/α): √((1+ψ)/ψ · log((1+ψ)/α²))
    (Howard et al. 2021, normal-mixture boundary, in standardised form)."""
    return math.sqrt((1 + psi) / psi * (math.log1p(psi) + 2 * math.log(1 / alpha)))


# --------------------------------------------------------------------------------------------
# arm estimates from sufficient statistics


def _arm_estimate(stats: MomentStats, kind: MetricKind) -> tuple[float, float]:
    """(estimate, per-user variance) of one arm: a mean (a proportion is a mean of 0/1 values)
    or a ratio Σy/Σx with its delta-method variance (Deng, Knoblich & Lu 2018)."""
    if kind == "ratio":
        return stats.ratio, stats.ratio_unit_variance
    if kind in ("mean", "proportion"):
        return stats.mean, stats.variance
    raise ValueError(f"unknown metric kind {kind!r}")


def _difference(control: MomentStats, treatment: MomentStats, kind: MetricKind) -> tuple[float, float]:
    """(treatment − control, its variance)."""
    m_c, v_c = _arm_estimate(control, kind)
    m_t, v_t = _arm_estimate(treatment, kind)
    return m_t - m_c, v_c / control.n + v_t / treatment.n


def _relative_change(control: MomentStats, treatment: MomentStats, kind: MetricKind) -> tuple[float, float]:
    """(treatment / control − 1, its delta-method variance) (gbstats ``frequentist_variance``,
    relative; Deng, Knoblich & Lu 2018): σ_t²/(μ_c² n_t) + σ_c² μ_t²/(μ_c⁴ n_c)."""
    m_c, v_c = _arm_estimate(control, kind)
    m_t, v_t = _arm_estimate(treatment, kind)
    if not m_c:
        return math.nan, math.nan
    return m_t / m_c - 1, v_t / (m_c * m_c * treatment.n) + v_c * m_t * m_t / (m_c**4 * control.n)


# --------------------------------------------------------------------------------------------
# (a) two-sided: always-valid p-value and confidence sequence for treatment − control


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Always-valid inference on treatment − control at the current look."""

    estimate: float
    confidence_sequence: tuple[float, float]
    """Contains the true difference at every look simultaneously with probability ≥ 1 − alpha."""
    p_value: float
    """Always-valid p-value min(1, 1/Λ): P(it is ever ≤ alpha under H0: no difference) ≤ alpha."""
    log_e_value: float
    n_control: int
    n_treatment: int
    alpha: float


def always_valid_difference(
    control: MomentStats,
    treatment: MomentStats,
    *,
    kind: MetricKind = "mean",
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
) -> SequentialResult:
    """Two-sided mixture SPRT / confidence sequence for the difference of the arm means (or
    ratios). Stateless: pass the cumulative stats since launch at every look. A caller that wants a
    monotone p-value keeps the running minimum (still always valid)."""
    n_c, n_t = control.n, treatment.n
    if n_c < 2 or n_t < 2:
        return SequentialResult(math.nan, (-math.inf, math.inf), 1.0, 0.0, n_c, n_t, alpha)
    estimate, variance = _difference(control, treatment, kind)
    if not variance > 0:
        return SequentialResult(estimate, (-math.inf, math.inf), 1.0, 0.0, n_c, n_t, alpha)
    psi = (n_c + n_t) * mixing_rho2(tuning_n, alpha)
    se = math.sqrt(variance)
    log_e = log_mixture_two_sided(estimate / se, psi)
    half_width = se * _two_sided_critical_z(psi, alpha)
    return SequentialResult(estimate, (estimate - half_width, estimate + half_width),
                            min(1.0, math.exp(-log_e)), log_e, n_c, n_t, alpha)


# --------------------------------------------------------------------------------------------
# exact e-process for bounded per-user contrasts (no plug-in variance)
#
# For increments X_i ≥ −c with E[X_i | past] ≤ 0 (the null), and every λ ∈ [0, 1),
#     M_t(λ) = exp(λ·S_t/c − ψ_E(λ)·V_t/c²),   S_t = Σ X_i,  V_t = Σ X_i²,  ψ_E(λ) = −log(1−λ) − λ,
# is a nonnegative supermartingale: pointwise exp(λξ − ψ_E(λ)ξ²) ≤ 1 + λξ for ξ ≥ −1 (Fan, Grama &
# Liu 2015, "Exponential inequalities for martingales with applications", Electron. J. Probab.
# 20(1), Lemma 4.1; the "sub-exponential with V_t = Σ X_i²" case of Howard, Ramdas, McAuliffe &
# Sekhon 2020, "Time-uniform Chernoff bounds via nonnegative supermartingales", Probab. Surveys 17,
# Fact 1(c)). A mixture over λ with a prior FIXED before launch is again one, so Ville's inequality
# bounds P(ever ≥ 1/α) by α for ANY distribution on the support: nonasymptotic, no normality, no
# variance estimate. S_t and V_t of a linear contrast are functions of the summable sums.
#
# Why a bound is needed at all: without an upper limit on a user's value, no test of "the mean is
# below m" can have power (Bahadur & Savage 1956, "The nonexistence of certain statistical
# procedures in nonparametric problems", Ann. Math. Statist. 27(4)): 20 000 users who all spent 0
# are still consistent with a mean of 6 if one user in a million spends 6 000 000. The plug-in test
# alarmed exactly there: the early looks of right-skewed revenue miss the rare large values, so the
# mean AND its variance estimate are low together. A cap fixed before launch (winsorization,
# ``streaming.py``) gives the bound, and then the exact e-process holds alpha.

_LAMBDAS = tuple(0.98 * 2.0 ** (-k / 3) for k in range(48))
"""Prior support over the bet λ ∈ (0, 1): 16 octaves at a third of an octave (0.98 … 1.5e-5)."""
_PSI_E = tuple(-math.log1p(-lam) - lam for lam in _LAMBDAS)


class _ScalarOps:
    """The few operations the kernels need, on floats (the guardrail sweep: no numpy)."""

    exp = staticmethod(math.exp)
    sqrt = staticmethod(math.sqrt)
    log1p = staticmethod(math.log1p)

    @staticmethod
    def logaddexp(a: float, b: float) -> float:
        hi, lo = (a, b) if a >= b else (b, a)
        if hi == -math.inf:
            return hi
        return hi + math.log1p(math.exp(lo - hi))

    @staticmethod
    def log_ndtr(z: float) -> float:
        return _log_ndtr(z)

    @staticmethod
    def where(cond: bool, a: float, b: float) -> float:
        return a if cond else b


def _numpy_ops() -> Any:
    """The same operations on numpy arrays (simulations and benchmarks only)."""
    import numpy as np
    from scipy import special

    class _NumpyOps:
        exp = staticmethod(np.exp)
        sqrt = staticmethod(np.sqrt)
        log1p = staticmethod(np.log1p)
        logaddexp = staticmethod(np.logaddexp)
        log_ndtr = staticmethod(special.log_ndtr)
        where = staticmethod(np.where)

    return _NumpyOps


def bounded_mixture_weights(c: float, b: float, *, tuning_n: float, alpha: float) -> tuple[float, ...]:
    """log-weights of the prior over ``_LAMBDAS`` for increments in [−c, b].

    Half of the mass is spread evenly over the grid (any scale), half follows the half-normal prior
    that the normal mixture uses (``mixing_rho2``, tightest at ``tuning_n`` users) with the per-user
    variance replaced by its largest possible value on [−c, b] at mean 0, c·b (Bhatia & Davis 2000,
    "A better bound on the variance", Amer. Math. Monthly 107(4)): in the bet's units λ = c·λ_raw the
    scale is c·√(ρ²/(c·b)). Without a finite b only the even half is used. Depends on the launch
    configuration only (threshold, support, alpha, tuning_n), never on the data: that is what keeps
    the mixture a supermartingale.
    """
    k = len(_LAMBDAS)
    even = [-math.log(k)] * k
    if not math.isfinite(b) or b <= 0:
        return tuple(even)
    scale = c * math.sqrt(mixing_rho2(tuning_n, alpha, one_sided=True) / (c * b))
    raw = [-(lam / scale) ** 2 / 2 + math.log(lam) for lam in _LAMBDAS]  # log-spaced grid: × λ
    top = max(raw)
    norm = top + math.log(sum(math.exp(r - top) for r in raw))
    tuned = [r - norm for r in raw]
    return tuple(_ScalarOps.logaddexp(e, t) - math.log(2) for e, t in zip(even, tuned))


def bounded_log_e(s: Any, v: Any, c: float, log_weights: Sequence[float], ops: Any = _ScalarOps) -> Any:
    """log of the mixture Σ_k w_k·exp(λ_k·S/c − ψ_E(λ_k)·V/c²) (floats, or arrays with numpy ops)."""
    out = None
    inv_c, inv_c2 = 1.0 / c, 1.0 / (c * c)
    for lam, psi, lw in zip(_LAMBDAS, _PSI_E, log_weights):
        term = lw + lam * inv_c * s - psi * inv_c2 * v
        out = term if out is None else ops.logaddexp(out, term)
    return out


# --------------------------------------------------------------------------------------------
# one-sided sequential guardrail


Support = tuple[float, float]
Method = Literal["auto", "exact", "asymptotic"]

DEFAULT_SUPPORT: dict[str, Support] = {
    "proportion": (0.0, 1.0),
    "mean": (0.0, math.inf),
    "ratio": (0.0, math.inf),
}
"""Per-user value range assumed when the caller passes none: a proportion is 0/1; API.md §7's mean
metrics are money per user (≥ 0; net_ltv can dip below 0 only through refunds of purchases made
before exposure: pass its real support); ratio numerators and denominators are counts (≥ 0). Upper
limits are unknown until a cap is configured (``streaming.py``)."""


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    breached: bool
    """True when the monitored quantity is credibly beyond the threshold (always-valid, level alpha)."""
    estimate: float
    """The monitored quantity: the treatment's metric value, or treatment − control, or
    treatment / control − 1, depending on ``mode``."""
    threshold: float
    confidence_bound: float
    """Always-valid one-sided bound on the monitored quantity: a LOWER bound for direction "max"
    (breach when it exceeds the threshold), an UPPER bound for "min". ±inf without data."""
    p_value: float
    """Always-valid p-value of H0 "within the threshold" (min(1, 1/Λ))."""
    log_e_value: float
    mode: str
    direction: str
    n_control: int
    n_treatment: int
    reason: str
    """"breached", "within" or "insufficient_data" (too few users, no variance yet, or ``method``
    "unbounded": no valid test exists without a bound on the per-user value)."""
    method: str = "asymptotic"
    """"exact" (bounded e-process), "asymptotic" (normal mixture, plug-in variance) or "unbounded"."""


@dataclass(frozen=True, slots=True)
class _Plan:
    mode: str
    kind: str
    sign: float
    method: str  # exact | asymptotic | unbounded
    support_y: Support
    support_x: Support
    allocation: float | None
    alpha: float
    tuning_n: float


def _contrast(mode: str, kind: str, theta: float) -> tuple[float, float, float]:
    """(a_T, a_C, b): H0 of a "max" guardrail is a_T·μ_T + a_C·μ_C ≤ b, "min" the reverse.
    treatment_value: μ_T ≤ θ; absolute_change: μ_T − μ_C ≤ θ; relative_change: μ_T − (1+θ)·μ_C ≤ 0
    (Fieller 1954's linearisation of a ratio: its variance does not depend on the estimated ratio,
    unlike the delta method's, which is what let a low treatment mean pass for a precise one)."""
    if mode == "treatment_value":
        return 1.0, 0.0, theta
    if mode == "absolute_change":
        return 1.0, -1.0, theta
    if mode == "relative_change":
        return 1.0, -(1.0 + theta), 0.0
    raise ValueError(f"unknown guardrail mode {mode!r}")


def _exact_parameters(plan: _Plan, theta: float) -> tuple[float, float] | None:
    """(c, b): the oriented per-user increment lies in [−c, b]; None when c is not finite."""
    a_t, a_c, b0 = _contrast(plan.mode, plan.kind, theta)
    lo, hi = plan.support_y
    if plan.mode == "treatment_value":
        if plan.kind == "ratio":
            lx, hx = plan.support_x
            inc_lo, inc_hi = lo - theta * hx, hi - theta * lx
        else:
            inc_lo, inc_hi = lo - theta, hi - theta
    else:
        pi = plan.allocation
        if pi is None or plan.kind == "ratio":
            return None
        # increments: T user a_T·y/π − b, C user a_C·y/(1−π) − b (raw values; shifts cancel exactly)
        ends = [a_t * lo / pi, a_t * hi / pi, a_c * lo / (1 - pi), a_c * hi / (1 - pi)]
        ends = [e for e in ends if not math.isnan(e)]
        inc_lo, inc_hi = min(ends) - b0, max(ends) - b0
    if plan.sign < 0:
        inc_lo, inc_hi = -inc_hi, -inc_lo
    c, b = -inc_lo, inc_hi
    if not math.isfinite(c):
        return None
    return c, b


def _exact_sums(control: Any, treatment: Any, plan: _Plan, theta: float) -> tuple[Any, Any]:
    """S = Σ X_i and V = Σ X_i² of the oriented increments, from the shifted sums (exact algebra).

    treatment_value, mean: X = s·(y − θ);  ratio: X = s·(y − θx);
    comparisons (users of both arms, Bernoulli assignment with P(TREATMENT) = π known):
    X = s·(a_T·T·y/π + a_C·(1−T)·y/(1−π) − b), an inverse-probability-weighted (Horvitz & Thompson
    1952) increment whose mean is exactly a_T·μ_T + a_C·μ_C − b under randomisation: the
    design-based sequential tests of Ham, Imai & Janson 2022 ("Design-based confidence sequences
    for anytime-valid causal inference", arXiv:2210.08639) on a bounded outcome.
    """
    a_t, a_c, b0 = _contrast(plan.mode, plan.kind, theta)
    t = treatment
    if plan.mode == "treatment_value":
        if plan.kind == "ratio":
            # d = (y − K_y) − θ(x − K_x), X = s(d + a), a = K_y − θ·K_x
            a = t.shift_y - theta * t.shift_x
            sum_d = t.sum_y - theta * t.sum_x
            sum_d2 = t.sum_y2 - 2 * theta * t.sum_xy + theta * theta * t.sum_x2
        else:
            a = t.shift_y - theta
            sum_d, sum_d2 = t.sum_y, t.sum_y2
        s = plan.sign * (sum_d + t.n * a)
        v = sum_d2 + 2 * a * sum_d + t.n * a * a
        return s, v
    pi = plan.allocation
    total = 0.0
    second = 0.0
    for stats, w in ((t, a_t / pi), (control, a_c / (1 - pi))):  # type: ignore[operator]
        # per user: w·y − b0 = w·(y − K) + (w·K − b0)
        a = w * stats.shift_y - b0
        total = total + w * stats.sum_y + stats.n * a
        second = second + w * w * stats.sum_y2 + 2 * w * a * stats.sum_y + stats.n * a * a
    return plan.sign * total, second


def _arm_parts(stats: Any, kind: str) -> tuple[Any, Any]:
    """(estimate, per-user variance) of one arm from its (shifted) sums; floats or arrays."""
    n = stats.n
    mean_y = stats.shift_y + stats.sum_y / n
    var_y = (stats.sum_y2 - stats.sum_y * stats.sum_y / n) / (n - 1)
    if kind != "ratio":
        return mean_y, var_y
    mean_x = stats.shift_x + stats.sum_x / n
    var_x = (stats.sum_x2 - stats.sum_x * stats.sum_x / n) / (n - 1)
    cov = (stats.sum_xy - stats.sum_x * stats.sum_y / n) / (n - 1)
    r = mean_y / mean_x
    # delta method for a ratio of means (Deng, Knoblich & Lu 2018)
    return r, (var_y - 2 * r * cov + r * r * var_x) / (mean_x * mean_x)


def _asymptotic_z(control: Any, treatment: Any, plan: _Plan, theta: float, ops: Any = None) -> tuple[Any, Any, Any]:
    """(Z, ψ, information) of the normal-mixture test on the linear contrast at θ.

    treatment_value ratio uses the score form: the per-user variance of y − θx evaluated AT THE NULL
    (Rao 1948's score test), so that a low observed ratio does not also shrink its own variance.
    Comparisons use the contrast a_T·m̂_T + a_C·m̂_C − b with variance a_T²·v_T/n_T + a_C²·v_C/n_C.
    "information" is the plug-in variance: not > 0 means nothing to decide on yet.
    """
    ops = ops or _ScalarOps
    a_t, a_c, b0 = _contrast(plan.mode, plan.kind, theta)
    t = treatment
    rho2 = mixing_rho2(plan.tuning_n, plan.alpha, one_sided=True)

    def sd(var: Any) -> Any:
        return ops.sqrt(ops.where(var > 0, var, math.nan))

    if plan.mode == "treatment_value":
        n = t.n
        est, unit_var = _arm_parts(t, plan.kind)
        if plan.kind == "ratio":
            var_y = (t.sum_y2 - t.sum_y * t.sum_y / n) / (n - 1)
            var_x = (t.sum_x2 - t.sum_x * t.sum_x / n) / (n - 1)
            cov = (t.sum_xy - t.sum_x * t.sum_y / n) / (n - 1)
            score_var = var_y - 2 * theta * cov + theta * theta * var_x
            contrast = (t.shift_y + t.sum_y / n) - theta * (t.shift_x + t.sum_x / n)
            return plan.sign * contrast / sd(score_var / n), n * rho2, ops.where(score_var > 0, unit_var, 0.0)
        return plan.sign * (est - theta) / sd(unit_var / n), n * rho2, unit_var
    m_t, v_t = _arm_parts(t, plan.kind)
    m_c, v_c = _arm_parts(control, plan.kind)
    var = a_t * a_t * v_t / t.n + a_c * a_c * v_c / control.n
    return plan.sign * (a_t * m_t + a_c * m_c - b0) / sd(var), (t.n + control.n) * rho2, var


def _plan(mode: str, kind: str, direction: str, support: Support | None, support_x: Support | None,
          allocation: float | None, alpha: float, tuning_n: float, method: str, threshold: float) -> _Plan:
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    if mode not in ("treatment_value", "absolute_change", "relative_change"):
        raise ValueError(f"unknown guardrail mode {mode!r}")
    if kind not in DEFAULT_SUPPORT:
        raise ValueError(f"unknown metric kind {kind!r}")
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'asymptotic', got {method!r}")
    if allocation is not None and not 0 < allocation < 1:
        raise ValueError("allocation (the TREATMENT share of CONTROL+TREATMENT users) must lie in (0, 1)")
    sy = tuple(support) if support is not None else DEFAULT_SUPPORT[kind]
    sx = tuple(support_x) if support_x is not None else DEFAULT_SUPPORT["ratio"]
    for name, (lo, hi) in (("support", sy), ("support_x", sx)):
        if not lo < hi or math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"{name} must be (lower, upper) with lower < upper, got {(lo, hi)}")
    sign = 1.0 if direction == "max" else -1.0
    plan = _Plan(mode, kind, sign, "asymptotic", sy, sx, allocation, alpha, tuning_n)  # type: ignore[arg-type]
    if mode == "relative_change" and not threshold > -1:
        raise ValueError("a relative threshold must be above −1 (−100 %)")
    if method == "asymptotic":
        return plan
    params = _exact_parameters(plan, threshold)
    if params is not None:
        c, _ = params
        if not c > 0:
            raise ValueError(f"threshold {threshold} leaves no room inside the support {sy}: "
                             "every user would be beyond it")
        return _Plan(mode, kind, sign, "exact", sy, sx, allocation, alpha, tuning_n)  # type: ignore[arg-type]
    if method == "exact":
        raise ValueError("method='exact' needs a finite bound on the alarm side (support / support_x) and, "
                         "for comparisons of means or proportions, the allocation")
    if mode == "treatment_value" and kind == "mean":
        # A lower limit on a mean with no cap (or an upper one with no floor): see bounded_log_e's
        # comment: no valid test exists, so none is pretended.
        return _Plan(mode, kind, sign, "unbounded", sy, sx, allocation, alpha, tuning_n)  # type: ignore[arg-type]
    return plan


def _log_e(control: Any, treatment: Any, plan: _Plan, theta: float, ops: Any = _ScalarOps) -> tuple[Any, Any]:
    """(log e-value, information > 0) at θ for the plan's method (floats or arrays)."""
    if plan.method == "exact":
        c, b = _exact_parameters(plan, theta)  # type: ignore[misc]
        s, v = _exact_sums(control, treatment, plan, theta)
        return bounded_log_e(s, v, c, bounded_mixture_weights(c, b, tuning_n=plan.tuning_n, alpha=plan.alpha),
                             ops), True
    z, psi, info = _asymptotic_z(control, treatment, plan, theta, ops)
    shrink = psi / (1 + psi)
    log_e = math.log(2.0) - 0.5 * ops.log1p(psi) + shrink * z * z / 2 + ops.log_ndtr(z * ops.sqrt(shrink))
    return log_e, info


def _estimate(control: MomentStats | None, treatment: MomentStats, mode: str, kind: str) -> float:
    m_t, _ = _arm_parts(treatment, kind) if treatment.n >= 2 else (math.nan, math.nan)
    if mode == "treatment_value":
        return m_t
    m_c, _ = _arm_parts(control, kind) if control is not None and control.n >= 2 else (math.nan, math.nan)
    if mode == "absolute_change":
        return m_t - m_c
    return m_t / m_c - 1 if m_c else math.nan


def _bound(control: MomentStats | None, treatment: MomentStats, plan: _Plan, estimate: float) -> float:
    """The always-valid one-sided bound: the θ closest to the estimate (on the alarm side) at which
    log Λ(θ) reaches log(1/α), by expansion then bisection (Λ(θ) falls as θ moves past the estimate).
    ±inf when no θ in range is rejected."""
    target = math.log(1 / plan.alpha)
    toward = -plan.sign  # a "max" guardrail's lower bound lies below the estimate

    def rejected(theta: float) -> bool:
        try:
            if plan.method == "exact":
                params = _exact_parameters(plan, theta)
                if params is None or not params[0] > 0:
                    return False
            value, _ = _log_e(control, treatment, plan, theta)
            return value >= target
        except (ValueError, ZeroDivisionError, OverflowError):
            return False

    if not math.isfinite(estimate):
        return -plan.sign * math.inf
    lo_limit = -1.0 if plan.mode == "relative_change" else -math.inf
    if plan.method == "exact" and plan.mode == "treatment_value" and plan.kind != "ratio":
        lo_limit, hi_limit = plan.support_y
    else:
        hi_limit = math.inf
    step = max(abs(estimate), 1e-12) * 1e-3
    near, far = estimate, None
    for _ in range(200):
        cand = estimate + toward * step
        if cand <= lo_limit or cand >= hi_limit:
            cand = lo_limit if toward < 0 else hi_limit
            if math.isfinite(cand) and rejected(cand + (-toward) * 1e-12 * max(1.0, abs(cand))):
                far = cand
            break
        if rejected(cand):
            far = cand
            break
        near = cand
        step *= 2
    if far is None:
        return toward * math.inf if not (math.isfinite(lo_limit) and toward < 0) else lo_limit
    for _ in range(64):
        mid = (near + far) / 2
        if rejected(mid):
            far = mid
        else:
            near = mid
        if abs(far - near) <= 1e-12 * max(1.0, abs(near)):
            break
    return near


def guardrail_test(
    control: MomentStats | None,
    treatment: MomentStats,
    *,
    threshold: float,
    direction: Direction = "max",
    mode: GuardrailMode = "treatment_value",
    kind: MetricKind = "mean",
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
    min_n: int = DEFAULT_MIN_N,
    support: Support | None = None,
    support_x: Support | None = None,
    allocation: float | None = None,
    method: Method = "auto",
    _with_bound: bool = True,
) -> GuardrailResult:
    """One-sided sequential guardrail: is the monitored quantity credibly beyond ``threshold``?

    ``mode`` chooses the monitored quantity θ:
      * "treatment_value": the treatment arm's metric itself, against an absolute limit
        (API.md guardrail ``maxThreshold``/``minThreshold``, e.g. refund_rate ≤ 0.02: kind="ratio",
        threshold=0.02, direction="max"). ``control`` is not used and may be None.
      * "absolute_change": treatment − control (e.g. +0.005 refund rate at most).
      * "relative_change": treatment / control − 1 as a fraction (e.g. 0.10 = at most 10 % worse;
        for a metric where lower is worse use direction="min" and e.g. −0.05).
    ``direction`` "max" means the threshold is an upper limit (breach when θ > threshold), "min" a
    lower limit (breach when θ < threshold).

    ``support`` = (lower, upper) of a user's value y after capping (the cap fixed before launch;
    defaults in ``DEFAULT_SUPPORT``), ``support_x`` the same for a ratio's denominator, and
    ``allocation`` = P(TREATMENT | CONTROL or TREATMENT) of the design. ``method`` "auto" uses the
    EXACT bounded e-process whenever the oriented per-user increment has a finite lower bound
    (always for a proportion's treatment value; a mean's upper limit with values ≥ 0; a mean's
    lower limit once a cap is given; comparisons of capped means or proportions once the
    allocation is given): alpha then holds for any distribution on the support, at any number of
    looks. Otherwise ratio metrics and comparisons use the asymptotic normal mixture on the
    linearised contrast (plug-in variance; A/A-checked in tests/unit/stats), and a limit on the
    treatment mean with no bound on the bad side is never decided (reason "insufficient_data",
    method "unbounded": no valid test exists, Bahadur & Savage 1956). "asymptotic" forces the normal
    mixture (light-tailed data only); "exact" refuses when no bound is known.

    Guarantee: H0 is "θ is within the threshold" (θ ≤ threshold for "max"). Calling this after every
    batch with the cumulative stats since launch, the probability that it EVER returns breached
    while H0 holds is ≤ alpha (Ville's inequality on a nonnegative supermartingale; exact for
    "exact", asymptotic in the plug-in variance otherwise). Every component of either mixture is a
    supermartingale for any θ inside the limit, so the composite null keeps the guarantee. A breach
    should latch (the caller pauses or kills). Fixed ``alpha``, ``tuning_n``, ``threshold``,
    ``support`` and ``allocation`` for the life of the experiment.
    """
    if mode != "treatment_value" and control is None:
        raise ValueError(f"mode {mode!r} compares with control: control stats are required")
    plan = _plan(mode, kind, direction, support, support_x, allocation, alpha, tuning_n, method, threshold)
    n_t = treatment.n
    n_c = control.n if control is not None else 0

    def not_yet(estimate: float = math.nan) -> GuardrailResult:
        bound = -math.inf if direction == "max" else math.inf
        return GuardrailResult(False, estimate, threshold, bound, 1.0, 0.0, mode, direction, n_c, n_t,
                               "insufficient_data", plan.method)

    if n_t < max(min_n, 2) or (mode != "treatment_value" and n_c < max(min_n, 2)):
        return not_yet()
    if mode != "treatment_value" and (control.shift_y != treatment.shift_y  # type: ignore[union-attr]
                                      or control.shift_x != treatment.shift_x):  # type: ignore[union-attr]
        control = control.recentered(treatment.shift_y, treatment.shift_x)  # type: ignore[union-attr]
    estimate = _estimate(control, treatment, mode, kind)
    if plan.method == "unbounded" or math.isnan(estimate):
        return not_yet(estimate)
    try:
        log_e, info = _log_e(control, treatment, plan, threshold)
    except ZeroDivisionError:
        return not_yet(estimate)
    if not info > 0 or math.isnan(log_e):
        # zero variance so far (e.g. no refund yet): no information to separate θ from the limit
        return not_yet(estimate)
    breached = log_e >= math.log(1 / alpha)
    bound = _bound(control, treatment, plan, estimate) if _with_bound else math.nan
    return GuardrailResult(breached, estimate, threshold, bound, min(1.0, math.exp(-log_e)), log_e, mode,
                           direction, n_c, n_t, "breached" if breached else "within", plan.method)


def guardrail_breached(
    control: MomentStats | None,
    treatment: MomentStats,
    *,
    threshold: float,
    direction: Direction = "max",
    mode: GuardrailMode = "treatment_value",
    kind: MetricKind = "mean",
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
    min_n: int = DEFAULT_MIN_N,
    support: Support | None = None,
    support_x: Support | None = None,
    allocation: float | None = None,
    method: Method = "auto",
) -> bool:
    """``guardrail_test(...).breached``: see there for the modes, the guarantee and the tuning."""
    return guardrail_test(control, treatment, threshold=threshold, direction=direction, mode=mode, kind=kind,
                          alpha=alpha, tuning_n=tuning_n, min_n=min_n, support=support, support_x=support_x,
                          allocation=allocation, method=method, _with_bound=False).breached


def guardrail_log_e_batch(
    control: Any,
    treatment: Any,
    *,
    threshold: float,
    direction: Direction = "max",
    mode: GuardrailMode = "treatment_value",
    kind: MetricKind = "mean",
    alpha: float = 0.05,
    tuning_n: float = DEFAULT_TUNING_N,
    min_n: int = DEFAULT_MIN_N,
    support: Support | None = None,
    support_x: Support | None = None,
    allocation: float | None = None,
    method: Method = "auto",
) -> tuple[Any, Any, str]:
    """``guardrail_test`` on many looks at once: ``control``/``treatment`` are ``MomentStats`` whose
    fields are numpy arrays (one entry per simulated look, with a common shift per arm). Returns
    (breached, log e-value, method) as arrays; the same kernels as the scalar path (checked equal in
    tests/unit/stats). For A/A simulations and benchmarks: it imports numpy."""
    import numpy as np

    if mode != "treatment_value" and control is None:
        raise ValueError(f"mode {mode!r} compares with control: control stats are required")
    plan = _plan(mode, kind, direction, support, support_x, allocation, alpha, tuning_n, method, threshold)
    n_t = np.asarray(treatment.n)
    enough = n_t >= max(min_n, 2)
    if mode != "treatment_value":
        enough = enough & (np.asarray(control.n) >= max(min_n, 2))
    if plan.method == "unbounded":
        shape = np.broadcast(n_t, np.asarray(treatment.sum_y)).shape
        return np.zeros(shape, bool), np.zeros(shape), plan.method
    with np.errstate(all="ignore"):
        log_e, info = _log_e(control, treatment, plan, threshold, _numpy_ops())
        log_e = np.asarray(log_e, dtype=float)
        ok = enough & (np.asarray(info) > 0) & ~np.isnan(log_e)
    log_e = np.where(ok, log_e, 0.0)
    return ok & (log_e >= math.log(1 / alpha)), log_e, plan.method


# --------------------------------------------------------------------------------------------
# API.md §11 guardrails on top of guardrail_test

BadDirection = Literal["higher", "lower"]
KpiDirection = Literal["INCREASE", "DECREASE", "MAINTAIN"]


def relative_guardrail_params(max_relative_delta: float, bad_direction: BadDirection) -> dict[str, Any]:
    """``guardrail_test`` arguments for "TREATMENT worse than CONTROL by more than
    ``max_relative_delta`` percent" (API.md §11 ``maxRelativeDelta``): "worse" is ``bad_direction``
    ("higher" for refund_rate or churn_rate, "lower" for arpu or conversion_rate)."""
    if not (math.isfinite(max_relative_delta) and max_relative_delta >= 0):
        raise ValueError("maxRelativeDelta must be a finite percentage ≥ 0")
    if bad_direction == "higher":
        return {"mode": "relative_change", "threshold": max_relative_delta / 100, "direction": "max"}
    if bad_direction == "lower":
        if max_relative_delta >= 100:
            raise ValueError("a metric cannot fall by 100 % or more: maxRelativeDelta must be below 100")
        return {"mode": "relative_change", "threshold": -max_relative_delta / 100, "direction": "min"}
    raise ValueError(f"bad_direction must be 'higher' or 'lower', got {bad_direction!r}")


def relative_guardrail_test(control: MomentStats, treatment: MomentStats, *, max_relative_delta: float,
                            bad_direction: BadDirection, kind: MetricKind = "mean", alpha: float = 0.05,
                            **options: Any) -> GuardrailResult:
    """Relative guardrail (API.md §11): one-sided, always valid; ``options`` are passed to
    ``guardrail_test`` (support, allocation, tuning_n, min_n, method)."""
    return guardrail_test(control, treatment, kind=kind, alpha=alpha,
                          **relative_guardrail_params(max_relative_delta, bad_direction), **options)


def kpi_guardrail_params(threshold: float, direction: KpiDirection, *, relative: bool = True) -> list[dict[str, Any]]:
    """The one-sided tests of a GUARDRAIL KPI ``{threshold, direction}`` (API.md §11), each with its
    share of alpha. INCREASE: the bad side is a decrease beyond ``threshold``; DECREASE: an increase
    beyond it; MAINTAIN: either side, two one-sided tests at alpha/2 each (Bonferroni: the union of
    two level-alpha/2 always-valid tests is level alpha). ``threshold`` is a relative change against
    CONTROL (0.05 = 5 %) unless ``relative`` is False, then an absolute difference treatment − control."""
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError("a GUARDRAIL KPI's threshold must be a finite number ≥ 0")
    mode = "relative_change" if relative else "absolute_change"
    up = {"mode": mode, "threshold": threshold, "direction": "max"}
    if relative and threshold >= 1:
        down = None
    else:
        down = {"mode": mode, "threshold": -threshold, "direction": "min"}
    if direction == "INCREASE":
        if down is None:
            raise ValueError("a relative threshold of 100 % or more cannot be crossed downwards")
        return [{**down, "alpha_share": 1.0}]
    if direction == "DECREASE":
        return [{**up, "alpha_share": 1.0}]
    if direction == "MAINTAIN":
        return [{**up, "alpha_share": 0.5}] + ([{**down, "alpha_share": 0.5}] if down else [])
    raise ValueError(f"direction must be INCREASE, DECREASE or MAINTAIN, got {direction!r}")


@dataclass(frozen=True, slots=True)
class KpiGuardrailResult:
    breached: bool
    side: str | None
    """"higher" or "lower": the side found beyond the threshold (None when not breached)."""
    tests: tuple[GuardrailResult, ...]
    """The one-sided tests, each at its share of alpha."""
    reason: str


def kpi_guardrail_test(control: MomentStats, treatment: MomentStats, *, threshold: float,
                       direction: KpiDirection, kind: MetricKind = "mean", alpha: float = 0.05,
                       relative: bool = True, **options: Any) -> KpiGuardrailResult:
    """A GUARDRAIL KPI decided by always-valid one-sided tests (``kpi_guardrail_params``)."""
    tests = []
    for params in kpi_guardrail_params(threshold, direction, relative=relative):
        share = params.pop("alpha_share")
        tests.append(guardrail_test(control, treatment, kind=kind, alpha=alpha * share, **params, **options))
    hit = next((t for t in tests if t.breached), None)
    if hit is not None:
        return KpiGuardrailResult(True, "higher" if hit.direction == "max" else "lower", tuple(tests), "breached")
    reason = "within" if any(t.reason == "within" for t in tests) else "insufficient_data"
    return KpiGuardrailResult(False, None, tuple(tests), reason)


# --------------------------------------------------------------------------------------------
# always-valid confidence intervals for the lift (analyze_experiment's ``sequential``)


@dataclass(frozen=True, slots=True)
class SequentialLift:
    """Always-valid figures for treatment versus control: they hold simultaneously at every look."""

    absolute: float
    relative: float
    ci_absolute: tuple[float, float]
    ci_relative: tuple[float, float]
    """Confidence sequence for treatment/control − 1 (Fieller inversion; ±inf when the control mean
    is not yet distinguishable from 0)."""
    p_value: float
    """Always-valid p-value of H0: no difference (min(1, 1/Λ), two-sided normal mixture)."""
    n_control: int
    n_treatment: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """API.md §11 ``sequential{confidenceInterval[lo, hi], pValue}``: the interval in percent of the
        relative lift, like the fixed-horizon ``confidenceInterval``; null ends when unbounded."""
        def pct(v: float) -> float | None:
            return 100 * v if math.isfinite(v) else None

        return {"confidenceInterval": [pct(self.ci_relative[0]), pct(self.ci_relative[1])],
                "pValue": self.p_value,
                "absoluteInterval": [v if math.isfinite(v) else None for v in self.ci_absolute]}


def _lift_parts(control: Any, treatment: Any, kind: str, ops: Any) -> tuple[Any, Any, Any, Any]:
    """(m_c, A_c, m_t, A_t): arm estimates and the variances of those estimates (A = unit var / n);
    CUPED-adjusted when a mean metric carries a covariate (Deng et al. 2013, θ pooled within arms)."""
    m_c, v_c = _arm_parts(control, kind)
    m_t, v_t = _arm_parts(treatment, kind)
    if kind == "mean":
        n_c, n_t = control.n, treatment.n
        sxx = (control.sum_x2 - control.sum_x * control.sum_x / n_c) + (treatment.sum_x2 - treatment.sum_x
                                                                         * treatment.sum_x / n_t)
        sxy = (control.sum_xy - control.sum_x * control.sum_y / n_c) + (treatment.sum_xy - treatment.sum_x
                                                                         * treatment.sum_y / n_t)
        theta = ops.where(sxx > 0, sxy / ops.where(sxx > 0, sxx, 1.0), 0.0)
        pooled_x = ((control.shift_x * n_c + control.sum_x) + (treatment.shift_x * n_t + treatment.sum_x)) / (n_c + n_t)
        out = []
        for stats, m, v in ((control, m_c, v_c), (treatment, m_t, v_t)):
            n = stats.n
            mx = stats.shift_x + stats.sum_x / n
            vx = (stats.sum_x2 - stats.sum_x * stats.sum_x / n) / (n - 1)
            cxy = (stats.sum_xy - stats.sum_x * stats.sum_y / n) / (n - 1)
            out.append((m - theta * (mx - pooled_x), v - 2 * theta * cxy + theta * theta * vx))
        (m_c, v_c), (m_t, v_t) = out
    return m_c, v_c / control.n, m_t, v_t / treatment.n


def always_valid_lift(control: MomentStats, treatment: MomentStats, *, kind: MetricKind = "mean",
                      alpha: float = 0.05, tuning_n: float = DEFAULT_TUNING_N) -> SequentialLift:
    """Always-valid confidence sequences for the absolute and relative lift, and the always-valid
    p-value, from the arms' sufficient statistics (asymptotic, plug-in variance).

    The boundary is the two-sided normal mixture of Howard et al. 2021 (Ann. Statist. 49(2), the
    "GAVI"/asymptotic CS of Waudby-Smith et al. 2023 when the variance is estimated), as gbstats'
    sequential testing applies it to its frequentist estimates: half-width = SE·b(ψ) with
    b(ψ) = √((1+ψ)/ψ·(log(1+ψ) + 2·log(1/α))), ψ = (n_c + n_t)·ρ², ρ² tuned at ``tuning_n``.
    The relative interval is the set of δ with |m̂_t − (1+δ)m̂_c| ≤ b·√(A_t + (1+δ)²A_c) (Fieller 1954,
    at the sequential critical value), a quadratic in 1+δ. Mean metrics with a covariate use the
    CUPED-adjusted means (regression-adjusted confidence sequences: Lindon, Ham, Tingley & Bojinov
    2022, "Anytime-valid linear models and regression adjusted causal inference").
    """
    n_c, n_t = control.n, treatment.n
    inf2 = (-math.inf, math.inf)
    if n_c < 2 or n_t < 2:
        return SequentialLift(math.nan, math.nan, inf2, inf2, 1.0, n_c, n_t, alpha)
    if control.shift_y != treatment.shift_y or control.shift_x != treatment.shift_x:
        control = control.recentered(treatment.shift_y, treatment.shift_x)
    m_c, a_c, m_t, a_t = _lift_parts(control, treatment, kind, _ScalarOps)
    diff = m_t - m_c
    relative = m_t / m_c - 1 if m_c else math.nan
    var = a_c + a_t
    if not var > 0:
        return SequentialLift(diff, relative, inf2, inf2, 1.0, n_c, n_t, alpha)
    psi = (n_c + n_t) * mixing_rho2(tuning_n, alpha)
    b = _two_sided_critical_z(psi, alpha)
    se = math.sqrt(var)
    p_value = min(1.0, math.exp(-log_mixture_two_sided(diff / se, psi)))
    ci_rel = fieller_interval(m_c, a_c, m_t, a_t, b)
    return SequentialLift(diff, relative, (diff - b * se, diff + b * se), ci_rel, p_value, n_c, n_t, alpha)


def fieller_interval(m_c: float, a_c: float, m_t: float, a_t: float, crit: float) -> tuple[float, float]:
    """{δ : (m_t − (1+δ)m_c)² ≤ crit²·(a_t + (1+δ)²a_c)} for independent arm estimates with variances
    a_t, a_c (Fieller 1954, "Some problems in interval estimation", JRSS B 16(2)). With r = 1+δ:
    r²(m_c² − k a_c) − 2r·m_t·m_c + (m_t² − k a_t) ≤ 0, k = crit². Bounded only when m_c² > k·a_c
    (the control mean is distinguishable from 0); otherwise (−inf, inf)."""
    k = crit * crit
    qa = m_c * m_c - k * a_c
    if not qa > 0:
        return (-math.inf, math.inf)
    qb = -2 * m_t * m_c
    qc = m_t * m_t - k * a_t
    disc = qb * qb - 4 * qa * qc
    if disc < 0:  # cannot happen for qa > 0 and a_t ≥ 0, kept for rounding
        disc = 0.0
    root = math.sqrt(disc)
    lo, hi = (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)
    return (lo - 1, hi - 1)


def always_valid_lift_batch(control: Any, treatment: Any, *, kind: MetricKind = "mean", alpha: float = 0.05,
                            tuning_n: float = DEFAULT_TUNING_N) -> tuple[Any, Any, Any, Any]:
    """Vectorised ``always_valid_lift`` (numpy fields): (ci_abs_lo, ci_abs_hi, p_value, crit) — the same
    formulas, for simulations."""
    import numpy as np

    ops = _numpy_ops()
    with np.errstate(all="ignore"):
        m_c, a_c, m_t, a_t = _lift_parts(control, treatment, kind, ops)
        n = np.asarray(control.n) + np.asarray(treatment.n)
        psi = n * mixing_rho2(tuning_n, alpha)
        crit = np.sqrt((1 + psi) / psi * (np.log1p(psi) + 2 * math.log(1 / alpha)))
        se = np.sqrt(a_c + a_t)
        diff = m_t - m_c
        z = diff / se
        p = np.minimum(1.0, np.exp(-(-0.5 * np.log1p(psi) + psi / (1 + psi) * z * z / 2)))
    return diff - crit * se, diff + crit * se, np.where(np.isnan(p), 1.0, p), crit


# --------------------------------------------------------------------------------------------
# sequential sample-ratio mismatch


@dataclass(frozen=True, slots=True)
class SequentialSRM:
    p_value: float
    """Always-valid p-value min(1, 1/BF): P(it is EVER ≤ alpha while the split is right) ≤ alpha."""
    log_bayes_factor: float
    mismatch: bool
    """p_value ≤ alpha."""


DEFAULT_SRM_CONCENTRATION = 100.0
"""k in the Dirichlet prior α₀ = k·θ₀ (the default of Lindon & Malek's own implementation)."""


def sequential_srm(observed: Sequence[int], expected_shares: Sequence[float], *, alpha: float = 0.001,
                   concentration: float = DEFAULT_SRM_CONCENTRATION) -> SequentialSRM:
    """Anytime-valid sample-ratio-mismatch test (Lindon & Malek 2022, "Anytime-Valid Inference for
    Multinomial Count Data", NeurIPS; arXiv:2011.03567): the Bayes factor of a Dirichlet(k·θ₀)
    mixture of multinomials against the configured split θ₀,
        BF = Γ(Σα)/Γ(Σα + n) · Π Γ(α_i + n_i)/Γ(α_i) / Π θ₀ᵢ^{n_i},
    is a nonnegative martingale under H0 in the order users arrive, and depends only on the counts:
    stateless, P(BF ever ≥ 1/alpha) ≤ alpha by Ville's inequality. For continuous monitoring beside
    the fixed-horizon chi-square (``frequentist.srm_p_value``), at the same alert level 0.001.
    """
    counts = [int(c) for c in observed]
    shares = [float(s) for s in expected_shares]
    if len(counts) != len(shares) or len(counts) < 2:
        raise ValueError("need one expected share per arm, at least two arms")
    if any(c < 0 for c in counts) or any(s < 0 for s in shares) or not sum(shares) > 0:
        raise ValueError("counts and shares must be non-negative, shares not all zero")
    if not concentration > 0:
        raise ValueError("concentration must be positive")
    total_share = sum(shares)
    theta = [s / total_share for s in shares]
    if any(c > 0 and t == 0 for c, t in zip(counts, theta)):
        return SequentialSRM(0.0, math.inf, True)
    cells = [(c, t) for c, t in zip(counts, theta) if t > 0]
    n = sum(c for c, _ in cells)
    prior = [concentration * t for _, t in cells]
    log_bf = (math.lgamma(sum(prior)) - math.lgamma(sum(prior) + n)
              + sum(math.lgamma(a + c) - math.lgamma(a) for a, (c, _) in zip(prior, cells))
              - sum(c * math.log(t) for c, t in cells))
    p = min(1.0, math.exp(-log_bf)) if log_bf > -700 else 1.0
    return SequentialSRM(p, log_bf, p <= alpha)

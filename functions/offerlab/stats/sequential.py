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
from typing import Literal

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
# (b) one-sided sequential guardrail


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
    """"breached", "within" or "insufficient_data"."""


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

    Guarantee: H0 is "θ is within the threshold" (θ ≤ threshold for "max"). Calling this after every
    batch with the cumulative stats since launch, the probability that it EVER returns breached
    while H0 holds is ≤ alpha (one-sided mixture martingale + Ville's inequality; asymptotic in the
    plug-in variance, see the module docstring). A breach should latch (the caller pauses or kills).
    Fixed ``alpha``, ``tuning_n`` and ``threshold`` for the life of the experiment.
    """
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    if mode != "treatment_value" and control is None:
        raise ValueError(f"mode {mode!r} compares with control: control stats are required")
    n_t = treatment.n
    n_c = control.n if control is not None else 0

    def not_yet(estimate: float = math.nan) -> GuardrailResult:
        bound = -math.inf if direction == "max" else math.inf
        return GuardrailResult(False, estimate, threshold, bound, 1.0, 0.0, mode, direction, n_c, n_t,
                               "insufficient_data")

    if n_t < max(min_n, 2) or (mode != "treatment_value" and n_c < max(min_n, 2)):
        return not_yet()
    if mode == "treatment_value":
        estimate, unit_var = _arm_estimate(treatment, kind)
        variance, effective_n = unit_var / n_t, n_t
    elif mode == "absolute_change":
        estimate, variance = _difference(control, treatment, kind)  # type: ignore[arg-type]
        effective_n = n_c + n_t
    elif mode == "relative_change":
        estimate, variance = _relative_change(control, treatment, kind)  # type: ignore[arg-type]
        effective_n = n_c + n_t
    else:
        raise ValueError(f"unknown guardrail mode {mode!r}")
    if math.isnan(estimate) or not variance > 0:
        # zero variance so far (e.g. no refund yet): no information to separate θ from the limit
        return not_yet(estimate)

    se = math.sqrt(variance)
    sign = 1.0 if direction == "max" else -1.0  # "min" is "max" on −θ
    z = sign * (estimate - threshold) / se
    psi = effective_n * mixing_rho2(tuning_n, alpha, one_sided=True)
    # For θ ≤ threshold every component exp(λS − λ²V/2), λ ≥ 0, of the half-normal mixture is a
    # supermartingale, so the composite null (not just θ = threshold) keeps the alpha guarantee.
    log_e = log_mixture_one_sided(z, psi)
    breached = log_e >= math.log(1 / alpha)
    bound = estimate - sign * se * _one_sided_critical_z(psi, alpha)
    return GuardrailResult(breached, estimate, threshold, bound, min(1.0, math.exp(-log_e)), log_e, mode,
                           direction, n_c, n_t, "breached" if breached else "within")


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
) -> bool:
    """``guardrail_test(...).breached``: see there for the modes, the guarantee and the tuning."""
    return guardrail_test(control, treatment, threshold=threshold, direction=direction, mode=mode, kind=kind,
                          alpha=alpha, tuning_n=tuning_n, min_n=min_n).breached

"""Planning: power, minimum detectable effect and time to power, fixed-horizon and sequential.

Pure Python (``math`` and ``statistics.NormalDist``): used at experiment creation, by the launch
checklist and by ``monitor_experiment``, none of which should pay for scipy on a cold start.

Model. The test statistic of the primary KPI is Z = Δ̂/SE with SE² = σ_c²/n_c + σ_t²/n_t (Welch,
proportions with the unpooled variance, ratio metrics with the delta-method per-user σ, CUPED with
the residual σ — whatever ``frequentist.py`` uses, its per-user variances are the σ² here). For a
true difference Δ, Z ≈ N(Δ/SE, 1).

* Fixed horizon, two-sided at alpha: power = Φ(Δ/SE − z₁₋α/₂) + Φ(−Δ/SE − z₁₋α/₂), the normal power
  of Cohen (1988, "Statistical power analysis for the behavioral sciences", ch. 12) exactly as
  statsmodels' ``NormalIndPower`` / ``normal_power`` compute it (checked to 1e-9 in tests); one-sided
  drops the second term and uses z₁₋α.
* Sequential (the always-valid test of ``sequential.py``: two-sided normal mixture, boundary
  b(ψ) = √((1+ψ)/ψ·(log(1+ψ) + 2·log(1/α))), ψ = (n_c + n_t)·ρ²): power by the test's OWN boundary at
  the horizon, Φ(Δ/SE − b) + Φ(−Δ/SE − b). It is the probability of being beyond the boundary AT the
  planned end, a lower bound on having crossed it at some look before (every earlier crossing only
  adds), and close to it because the drift grows as √n (checked by simulation in tests). Its sample
  size is therefore conservative, and larger than the fixed-horizon one (b > z₁₋α/₂).
* Proportions: σ² = p(1 − p) per arm (the Wald test used), or Cohen's h = 2·asin√p_t − 2·asin√p_c
  with unit variance (statsmodels' ``proportions_effectsize`` + ``NormalIndPower``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from offerlab.stats.sequential import DEFAULT_TUNING_N, _two_sided_critical_z, mixing_rho2

Alternative = Literal["two-sided", "larger", "smaller"]
_N = NormalDist()

TARGET_POWER = 0.8
"""The launch checklist warns (never blocks) when the plan cannot reach this power."""


def _sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _z(p: float) -> float:
    return _N.inv_cdf(p)


def power_from_drift(drift: float, alpha: float = 0.05, alternative: Alternative = "two-sided") -> float:
    """Power of a z-test whose statistic is N(drift, 1) (statsmodels ``normal_power`` with
    effect_size·√nobs/σ = drift)."""
    _check_alpha(alpha)
    if alternative == "two-sided":
        crit = _z(1 - alpha / 2)
        return _sf(crit - drift) + _cdf(-crit - drift)
    crit = _z(1 - alpha)
    if alternative == "larger":
        return _sf(crit - drift)
    if alternative == "smaller":
        return _cdf(-crit - drift)
    raise ValueError(f"alternative must be two-sided, larger or smaller, got {alternative!r}")


def standard_error(sd_control: float, n_control: float, sd_treatment: float, n_treatment: float) -> float:
    if min(n_control, n_treatment) <= 0 or min(sd_control, sd_treatment) < 0:
        raise ValueError("need positive arm sizes and non-negative standard deviations")
    return math.sqrt(sd_control**2 / n_control + sd_treatment**2 / n_treatment)


def power_two_sample(effect: float, sd_control: float, n_control: float, n_treatment: float, *,
                     sd_treatment: float | None = None, alpha: float = 0.05,
                     alternative: Alternative = "two-sided") -> float:
    """Fixed-horizon power for a true difference ``effect`` (treatment − control)."""
    se = standard_error(sd_control, n_control, sd_control if sd_treatment is None else sd_treatment, n_treatment)
    return power_from_drift(effect / se, alpha, alternative)


def sequential_boundary(n_total: float, alpha: float = 0.05, tuning_n: float | None = None) -> float:
    """b(ψ) of the two-sided always-valid test at n_total = n_c + n_t users (sequential.py)."""
    _check_alpha(alpha)
    psi = n_total * mixing_rho2(DEFAULT_TUNING_N if tuning_n is None else tuning_n, alpha)
    return _two_sided_critical_z(psi, alpha)


def power_sequential(effect: float, sd_control: float, n_control: float, n_treatment: float, *,
                     sd_treatment: float | None = None, alpha: float = 0.05,
                     tuning_n: float | None = None) -> float:
    """Power of the always-valid two-sided test by the planned end: P(|Z| ≥ b) at the horizon,
    a lower bound on crossing at any look before it (module docstring)."""
    se = standard_error(sd_control, n_control, sd_control if sd_treatment is None else sd_treatment, n_treatment)
    b = sequential_boundary(n_control + n_treatment, alpha, tuning_n)
    drift = effect / se
    return _sf(b - drift) + _cdf(-b - drift)


def _solve_increasing(f, target: float, lo: float, hi: float) -> float:
    """Root of f(x) = target for f increasing on [lo, hi] (bracket expanded upwards), by bisection to
    relative 1e-15: plain and exact enough to match statsmodels' brentq to 1e-9."""
    for _ in range(200):
        if f(hi) >= target:
            break
        lo, hi = hi, hi * 2
    else:
        return math.inf
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return (lo + hi) / 2


def sample_size(effect: float, sd_control: float, *, sd_treatment: float | None = None, ratio: float = 1.0,
                alpha: float = 0.05, power: float = TARGET_POWER, alternative: Alternative = "two-sided",
                sequential: bool = False, tuning_n: float | None = None) -> float:
    """Control-arm users needed (treatment = ratio × control) for ``power`` against ``effect``
    (statsmodels ``NormalIndPower.solve_power(nobs1=None)`` for the fixed horizon)."""
    _check_power(power)
    if effect == 0:
        return math.inf
    sd_t = sd_control if sd_treatment is None else sd_treatment
    if sequential:
        return _solve_increasing(lambda n: power_sequential(abs(effect), sd_control, n, ratio * n, sd_treatment=sd_t,
                                                            alpha=alpha, tuning_n=tuning_n), power, 1.0, 16.0)
    eff = abs(effect) if alternative == "two-sided" else (effect if alternative == "larger" else -effect)
    if eff <= 0:
        return math.inf
    return _solve_increasing(lambda n: power_two_sample(eff, sd_control, n, ratio * n, sd_treatment=sd_t,
                                                        alpha=alpha, alternative="larger" if alternative != "two-sided"
                                                        else "two-sided"), power, 1e-9, 16.0)


def minimum_detectable_effect(sd_control: float, n_control: float, n_treatment: float, *,
                              sd_treatment: float | None = None, alpha: float = 0.05,
                              power: float = TARGET_POWER, alternative: Alternative = "two-sided",
                              sequential: bool = False, tuning_n: float | None = None) -> float:
    """The smallest |effect| detected with ``power`` at these arm sizes (absolute units of the
    metric; statsmodels ``solve_power(effect_size=None)`` × SE·√n for the fixed horizon)."""
    _check_power(power)
    sd_t = sd_control if sd_treatment is None else sd_treatment
    se = standard_error(sd_control, n_control, sd_t, n_treatment)
    if sequential:
        b = sequential_boundary(n_control + n_treatment, alpha, tuning_n)
        f = lambda d: _sf(b - d) + _cdf(-b - d)  # noqa: E731
    else:
        alt = "two-sided" if alternative == "two-sided" else "larger"
        f = lambda d: power_from_drift(d, alpha, alt)  # noqa: E731
    return se * _solve_increasing(f, power, 0.0, 4.0)


def proportion_sd(p: float) -> float:
    if not 0 <= p <= 1:
        raise ValueError(f"a proportion must lie in [0, 1], got {p}")
    return math.sqrt(p * (1 - p))


def cohens_h(p_treatment: float, p_control: float) -> float:
    """Cohen's h = 2·asin√p_t − 2·asin√p_c (statsmodels ``proportions_effectsize``)."""
    return 2 * math.asin(math.sqrt(p_treatment)) - 2 * math.asin(math.sqrt(p_control))


def power_proportions(p_control: float, p_treatment: float, n_control: float, n_treatment: float, *,
                      alpha: float = 0.05, method: Literal["wald", "arcsine"] = "wald",
                      alternative: Alternative = "two-sided") -> float:
    """Fixed-horizon power for two proportions: "wald" (unpooled p(1−p) per arm, the test
    ``frequentist.proportion_test`` runs) or "arcsine" (Cohen's h, unit variance)."""
    if method == "arcsine":
        return power_from_drift(cohens_h(p_treatment, p_control) * math.sqrt(n_control * n_treatment
                                                                             / (n_control + n_treatment)),
                                alpha, alternative)
    return power_two_sample(p_treatment - p_control, proportion_sd(p_control), n_control, n_treatment,
                            sd_treatment=proportion_sd(p_treatment), alpha=alpha, alternative=alternative)


# --------------------------------------------------------------------------------------------
# the plan of a primary KPI


@dataclass(frozen=True, slots=True)
class PowerPlan:
    effect: float
    """targetValue − baselineValue (absolute units of the metric)."""
    sd_control: float
    sd_treatment: float
    n_control: float
    n_treatment: float
    """Users per arm at the planned end."""
    power: float
    """Fixed-horizon power at the planned end (two-sided, alpha)."""
    power_sequential: float
    """Always-valid test's power by the planned end (lower bound, module docstring)."""
    mde: float
    """Minimum detectable |effect| at the planned end (fixed horizon)."""
    mde_sequential: float
    required_n_control: float
    """Control users needed for ``target_power`` (fixed horizon); treatment = ratio × this."""
    required_n_control_sequential: float
    days_to_power: float | None
    """Days from now until the fixed-horizon power is reached at the exposure rate (None: no rate)."""
    days_to_power_sequential: float | None
    target_power: float
    reachable: bool
    """power ≥ target_power by the planned end (the launch checklist warns when False)."""

    def to_dict(self) -> dict[str, object]:
        def finite(v: float | None) -> float | None:
            return v if v is not None and math.isfinite(v) else None

        return {"effect": self.effect, "power": self.power, "powerSequential": self.power_sequential,
                "mde": finite(self.mde), "mdeSequential": finite(self.mde_sequential),
                "requiredUsers": finite(self.required_n_control + self.required_n_control * self._ratio),
                "requiredUsersSequential": finite(self.required_n_control_sequential * (1 + self._ratio)),
                "daysToPower": finite(self.days_to_power), "daysToPowerSequential": finite(self.days_to_power_sequential),
                "targetPower": self.target_power, "reachable": self.reachable}

    @property
    def _ratio(self) -> float:
        return self.n_treatment / self.n_control if self.n_control else 1.0


def plan_power(
    baseline_value: float,
    target_value: float,
    *,
    kind: Literal["mean", "proportion", "ratio"],
    users_per_day: float,
    treatment_share: float,
    planned_days: float,
    sd: float | None = None,
    sd_treatment: float | None = None,
    enrolled_control: float = 0.0,
    enrolled_treatment: float = 0.0,
    alpha: float = 0.05,
    target_power: float = TARGET_POWER,
    tuning_n: float | None = None,
) -> PowerPlan:
    """Power of the primary KPI for its expected effect (baselineValue → targetValue), MDE at the
    planned end, and days to ``target_power`` from the exposure rate.

    ``users_per_day``: CONTROL + TREATMENT exposures per day (observed, or the forecast at
    creation); ``treatment_share``: TREATMENT / (CONTROL + TREATMENT); ``planned_days``: days from
    now to plannedEndDate (from plannedStartDate at creation); ``enrolled_*``: users already exposed
    (0 at creation). ``sd``: the per-user standard deviation of the metric (observed in CONTROL or
    from pre-exposure data; for a ratio metric the delta-method per-user σ,
    ``MomentStats.ratio_unit_variance``); a proportion's σ comes from its baseline and target.
    """
    if not 0 < treatment_share < 1:
        raise ValueError("treatment_share must lie in (0, 1)")
    if users_per_day < 0 or planned_days < 0:
        raise ValueError("users_per_day and planned_days must be ≥ 0")
    if kind == "proportion":
        sd_c, sd_t = proportion_sd(baseline_value), proportion_sd(target_value)
    else:
        if sd is None or not sd > 0:
            raise ValueError("a mean or ratio metric needs its per-user standard deviation (sd > 0)")
        sd_c, sd_t = sd, sd if sd_treatment is None else sd_treatment
    effect = target_value - baseline_value
    n_c = enrolled_control + users_per_day * planned_days * (1 - treatment_share)
    n_t = enrolled_treatment + users_per_day * planned_days * treatment_share
    ratio = treatment_share / (1 - treatment_share)
    if n_c >= 2 and n_t >= 2:
        power = power_two_sample(effect, sd_c, n_c, n_t, sd_treatment=sd_t, alpha=alpha)
        power_seq = power_sequential(effect, sd_c, n_c, n_t, sd_treatment=sd_t, alpha=alpha, tuning_n=tuning_n)
        mde = minimum_detectable_effect(sd_c, n_c, n_t, sd_treatment=sd_t, alpha=alpha, power=target_power)
        mde_seq = minimum_detectable_effect(sd_c, n_c, n_t, sd_treatment=sd_t, alpha=alpha, power=target_power,
                                            sequential=True, tuning_n=tuning_n)
    else:
        power = power_seq = 0.0
        mde = mde_seq = math.inf
    need = sample_size(effect, sd_c, sd_treatment=sd_t, ratio=ratio, alpha=alpha, power=target_power)
    need_seq = sample_size(effect, sd_c, sd_treatment=sd_t, ratio=ratio, alpha=alpha, power=target_power,
                           sequential=True, tuning_n=tuning_n)

    def days(need_c: float) -> float | None:
        control_per_day = users_per_day * (1 - treatment_share)
        if not math.isfinite(need_c):
            return math.inf
        if control_per_day <= 0:
            return None if need_c > enrolled_control else 0.0
        return max(0.0, (need_c - enrolled_control) / control_per_day)

    return PowerPlan(effect, sd_c, sd_t, n_c, n_t, power, power_seq, mde, mde_seq, need, need_seq, days(need),
                     days(need_seq), target_power, power >= target_power - 1e-9)


def power_check(plan: PowerPlan) -> dict[str, object]:
    """The launch checklist's item ``{item, ok, detail}`` (API.md §3 shape) for the primary KPI's
    power: a WARNING item, the checklist must not block on it."""
    if plan.reachable:
        detail = f"power {plan.power:.0%} at the planned end (target {plan.target_power:.0%})"
    else:
        days = plan.days_to_power
        more = f"; about {days:.0f} days of traffic needed" if days is not None and math.isfinite(days) else ""
        detail = (f"power {plan.power:.0%} at the planned end, below the {plan.target_power:.0%} target: the "
                  f"expected effect {plan.effect:g} is under the minimum detectable effect {plan.mde:.4g}{more}")
    return {"item": "primary KPI power", "ok": plan.reachable, "detail": detail, "severity": "WARNING"}


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")


def _check_power(power: float) -> None:
    if not 0 < power < 1:
        raise ValueError("power must lie in (0, 1)")

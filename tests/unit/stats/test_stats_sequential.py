"""Always-valid inference: closed forms, and A/A / power simulations with repeated looks.

Each simulation: 500 experiments × 50 looks, 200 new users per arm per look (10 000 per arm at the
end), seeded. The sequential guardrail must keep its false-alarm rate ≤ alpha (+ sampling slack)
where the naive fixed-horizon test repeated at every look is clearly above alpha.
"""
import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as sps

from offerlab.stats.sequential import (
    DEFAULT_TUNING_N,
    always_valid_difference,
    guardrail_breached,
    guardrail_test,
    log_mixture_one_sided,
    log_mixture_two_sided,
    mixing_rho2,
)
from offerlab.stats.sufficient import MomentStats

ALPHA = 0.05
SIMS, LOOKS, BATCH = 500, 50, 200
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / SIMS)  # three binomial standard errors ≈ 0.029


# -- closed forms -----------------------------------------------------------------------------


def test_two_sided_mixture_is_johari_msprt():
    # Johari et al. 2017: Λ = √(σ²/(σ²+nτ²)) · exp(n²τ²(x̄−θ₀)² / (2σ²(σ²+nτ²)))
    sigma2, tau2, n, xbar = 4.0, 0.3, 250, 0.21
    johari = 0.5 * math.log(sigma2 / (sigma2 + n * tau2)) + n * n * tau2 * xbar**2 / (2 * sigma2 * (sigma2 + n * tau2))
    z, psi = xbar / math.sqrt(sigma2 / n), n * tau2 / sigma2
    assert log_mixture_two_sided(z, psi) == pytest.approx(johari, rel=1e-12)


@pytest.mark.parametrize("z,psi", [(2.5, 3.0), (-1.0, 0.5), (6.0, 40.0), (0.0, 8.0)])
def test_one_sided_mixture_equals_the_half_normal_integral(z, psi):
    # Λ = ∫₀^∞ exp(λS − λ²V/2) · 2·N(λ; 0, 1/ρ) dλ in standard units (V = 1 ⇒ S = z, ρ = 1/ψ)
    def integrand(lam):
        return math.exp(lam * z - lam * lam / 2) * 2 * sps.norm.pdf(lam, scale=math.sqrt(psi))

    value, _ = integrate.quad(integrand, 0, np.inf)
    assert log_mixture_one_sided(z, psi) == pytest.approx(math.log(value), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("z", [-200.0, -60.0, -38.0, 60.0, 200.0])
def test_one_sided_mixture_stays_accurate_for_extreme_z(z):
    # no log(0) for z → −∞ (log Φ underflows) and no overflow for z → +∞ (we stay in log space)
    psi = 5.0
    s = math.sqrt(psi / (1 + psi))
    reference = math.log(2) - 0.5 * math.log1p(psi) + s * s * z * z / 2 + float(special.log_ndtr(z * s))
    assert log_mixture_one_sided(z, psi) == pytest.approx(reference, rel=1e-9)


def test_tuning_n_is_where_the_boundary_is_tightest():
    def half_width(psi):  # two-sided boundary in standard errors
        return math.sqrt((1 + psi) / psi * (math.log1p(psi) + 2 * math.log(1 / ALPHA)))

    psi_star = 1000 * mixing_rho2(1000, ALPHA)
    assert half_width(psi_star) < half_width(0.8 * psi_star)
    assert half_width(psi_star) < half_width(1.25 * psi_star)
    assert psi_star == pytest.approx(8.212, abs=1e-3)


# -- simulation helpers -----------------------------------------------------------------------


@dataclass
class Looks:
    """Cumulative MomentStats of one arm at each look, for every simulated experiment."""

    n: np.ndarray
    sum_y: np.ndarray
    sum_y2: np.ndarray
    sum_x: np.ndarray
    sum_x2: np.ndarray
    sum_xy: np.ndarray

    def at(self, sim: int, look: int) -> MomentStats:
        return MomentStats(int(self.n[look]), float(self.sum_y[sim, look]), float(self.sum_y2[sim, look]),
                           float(self.sum_x[sim, look]), float(self.sum_x2[sim, look]), float(self.sum_xy[sim, look]))


def cumulative(y: np.ndarray, x: np.ndarray | None = None) -> Looks:
    """y, x of shape (SIMS, LOOKS, BATCH) → cumulative sums per look."""
    x = np.zeros_like(y) if x is None else x
    csum = lambda a: np.cumsum(a.sum(axis=2), axis=1)  # noqa: E731
    n = BATCH * np.arange(1, LOOKS + 1)
    return Looks(n, csum(y), csum(y * y), csum(x), csum(x * x), csum(x * y))


def revenue(rng, size):
    return rng.lognormal(1.0, 1.5, size) * (rng.random(size) < 0.1)


def refunds(rng, size, refund_prob):
    purchases = rng.poisson(rng.gamma(0.8, 2.5, size))
    return rng.binomial(purchases, refund_prob).astype(float), purchases.astype(float)


def naive_repeated_one_sided(estimate: np.ndarray, se: np.ndarray) -> float:
    """Share of experiments where a fixed-horizon one-sided z-test at ALPHA fires at some look."""
    return float(np.mean(np.any(estimate / se > sps.norm.isf(ALPHA), axis=1)))


def first_alarms(fn) -> np.ndarray:
    """Index of the first look at which fn(sim, look) is true, or −1."""
    out = np.full(SIMS, -1)
    for sim in range(SIMS):
        for look in range(LOOKS):
            if fn(sim, look):
                out[sim] = look
                break
    return out


# -- A/A: false alarms ------------------------------------------------------------------------


@pytest.mark.parametrize("tuning_n", [1_000, DEFAULT_TUNING_N])
def test_aa_revenue_difference_guardrail_keeps_false_alarms_below_alpha_while_naive_peeking_does_not(tuning_n):
    rng = np.random.default_rng(20)
    ctrl = cumulative(revenue(rng, (SIMS, LOOKS, BATCH)))
    trt = cumulative(revenue(rng, (SIMS, LOOKS, BATCH)))

    def breached(sim, look):
        return guardrail_breached(ctrl.at(sim, look), trt.at(sim, look), threshold=0.0, direction="max",
                                  mode="absolute_change", alpha=ALPHA, tuning_n=tuning_n)

    sequential_rate = float(np.mean(first_alarms(breached) >= 0))

    n = ctrl.n
    var = lambda L: (L.sum_y2 - L.sum_y**2 / n) / (n - 1)  # noqa: E731
    diff = trt.sum_y / n - ctrl.sum_y / n
    naive_rate = naive_repeated_one_sided(diff, np.sqrt(var(ctrl) / n + var(trt) / n))

    assert sequential_rate <= ALPHA + SLACK, sequential_rate
    assert naive_rate > 2 * ALPHA, naive_rate  # peeking 50 times at a fixed-horizon test
    assert naive_rate > sequential_rate + 0.05


def test_aa_refund_rate_threshold_guardrail_keeps_false_alarms_below_alpha():
    # the treatment's refund rate sits exactly on its limit (the worst case of H0: rate ≤ 0.02)
    rng = np.random.default_rng(21)
    y, x = refunds(rng, (SIMS, LOOKS, BATCH), 0.02)
    trt = cumulative(y, x)

    def breached(sim, look):
        return guardrail_breached(None, trt.at(sim, look), threshold=0.02, direction="max",
                                  mode="treatment_value", kind="ratio", alpha=ALPHA)

    sequential_rate = float(np.mean(first_alarms(breached) >= 0))

    n = trt.n
    ratio = trt.sum_y / trt.sum_x
    mean_x = trt.sum_x / n
    var_y = (trt.sum_y2 - trt.sum_y**2 / n) / (n - 1)
    var_x = (trt.sum_x2 - trt.sum_x**2 / n) / (n - 1)
    cov = (trt.sum_xy - trt.sum_x * trt.sum_y / n) / (n - 1)
    se = np.sqrt((var_y - 2 * ratio * cov + ratio**2 * var_x) / mean_x**2 / n)
    naive_rate = naive_repeated_one_sided(ratio - 0.02, se)

    assert sequential_rate <= ALPHA + SLACK, sequential_rate
    assert naive_rate > 2 * ALPHA, naive_rate


def test_aa_confidence_sequence_covers_the_truth_at_every_look():
    rng = np.random.default_rng(22)
    ctrl = cumulative(revenue(rng, (SIMS, LOOKS, BATCH)))
    trt = cumulative(revenue(rng, (SIMS, LOOKS, BATCH)))

    def misses(sim, look):
        lo, hi = always_valid_difference(ctrl.at(sim, look), trt.at(sim, look), alpha=ALPHA).confidence_sequence
        return not lo <= 0.0 <= hi

    assert float(np.mean(first_alarms(misses) >= 0)) <= ALPHA + SLACK


# -- power ------------------------------------------------------------------------------------


def test_real_refund_rate_breach_fires():
    rng = np.random.default_rng(23)
    y, x = refunds(rng, (SIMS, LOOKS, BATCH), 0.035)  # true rate 0.035 against a 0.02 limit
    trt = cumulative(y, x)

    def breached(sim, look):
        return guardrail_breached(None, trt.at(sim, look), threshold=0.02, mode="treatment_value", kind="ratio")

    alarms = first_alarms(breached)
    assert np.mean(alarms >= 0) >= 0.95
    assert np.median(alarms[alarms >= 0]) < LOOKS / 2  # and early, not only at the end


def test_relative_degradation_versus_control_fires():
    rng = np.random.default_rng(24)
    ctrl = cumulative(*refunds(rng, (SIMS, LOOKS, BATCH), 0.02))
    trt = cumulative(*refunds(rng, (SIMS, LOOKS, BATCH), 0.032))  # 60 % worse; limit: +10 %

    def breached(sim, look):
        return guardrail_breached(ctrl.at(sim, look), trt.at(sim, look), threshold=0.10, mode="relative_change",
                                  kind="ratio")

    assert np.mean(first_alarms(breached) >= 0) >= 0.9


# -- the guardrail's contract -----------------------------------------------------------------


def arm(rng, n, loc):
    return MomentStats.from_arrays(rng.normal(loc, 1.0, n))


def test_direction_min_mirrors_direction_max():
    rng = np.random.default_rng(25)
    values = rng.normal(0.3, 1.0, 3000)
    # normal data is not money: the asymptotic normal mixture, forced (the default would assume y ≥ 0)
    up = guardrail_test(None, MomentStats.from_arrays(values), threshold=0.2, direction="max", method="asymptotic")
    down = guardrail_test(None, MomentStats.from_arrays(-values), threshold=-0.2, direction="min",
                          method="asymptotic")
    assert up.log_e_value == pytest.approx(down.log_e_value, rel=1e-12)
    assert up.confidence_bound == pytest.approx(-down.confidence_bound, rel=1e-12)
    assert up.breached == down.breached


def test_breach_iff_the_always_valid_bound_is_beyond_the_threshold():
    rng = np.random.default_rng(26)
    for loc in np.linspace(0.0, 0.3, 13):
        res = guardrail_test(None, arm(rng, 2000, loc), threshold=0.1, direction="max", method="asymptotic")
        assert res.breached == (res.confidence_bound > 0.1 + 1e-12) or abs(res.confidence_bound - 0.1) < 1e-9
        assert res.reason == ("breached" if res.breached else "within")
        assert (res.p_value <= ALPHA) == res.breached


def test_clearly_within_and_clearly_beyond():
    rng = np.random.default_rng(27)
    assert not guardrail_breached(None, arm(rng, 5000, 0.0), threshold=0.1, method="asymptotic")
    assert guardrail_breached(None, arm(rng, 5000, 0.5), threshold=0.1, method="asymptotic")
    assert guardrail_breached(arm(rng, 5000, 1.0), arm(rng, 5000, 0.5), threshold=-0.1, direction="min",
                              mode="absolute_change")
    assert guardrail_breached(arm(rng, 5000, 1.0), arm(rng, 5000, 0.7), threshold=-0.1, direction="min",
                              mode="relative_change")


def test_no_alarm_without_enough_data_or_information():
    tiny = MomentStats.from_arrays(np.array([5.0, 6.0, 7.0]))
    res = guardrail_test(None, tiny, threshold=0.0, method="asymptotic")
    assert not res.breached and res.reason == "insufficient_data" and res.confidence_bound == -math.inf
    no_refund_yet = MomentStats(500, 0.0, 0.0, 800.0, 2000.0, 0.0)
    assert guardrail_test(None, no_refund_yet, threshold=0.02, kind="ratio").reason == "insufficient_data"
    with pytest.raises(ValueError):
        guardrail_test(None, tiny, threshold=0.0, mode="absolute_change", method="asymptotic")
    with pytest.raises(ValueError):
        guardrail_test(None, tiny, threshold=0.0, direction="up", method="asymptotic")  # type: ignore[arg-type]


def test_always_valid_interval_is_wider_than_the_fixed_horizon_one_and_contains_the_estimate():
    rng = np.random.default_rng(28)
    c, t = arm(rng, 4000, 0.0), arm(rng, 4000, 0.1)
    res = always_valid_difference(c, t)
    se = math.sqrt(c.variance / c.n + t.variance / t.n)
    lo, hi = res.confidence_sequence
    assert lo < res.estimate < hi
    assert hi - lo > 2 * 1.96 * se
    assert 0 < res.p_value <= 1 and res.p_value == pytest.approx(min(1.0, math.exp(-res.log_e_value)))
    assert DEFAULT_TUNING_N > 0

"""Planning: power / sample size / MDE against statsmodels where the formulas coincide, and by
simulation where they do not (the Wald proportion test, the always-valid test's horizon power)."""
import itertools
import math

import numpy as np
import pytest
import statsmodels.stats.api as sms
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power

from offerlab.stats.frequentist import proportion_test
from offerlab.stats.planning import (
    minimum_detectable_effect,
    plan_power,
    power_check,
    power_proportions,
    power_sequential,
    power_two_sample,
    sample_size,
)
from offerlab.stats.sequential import always_valid_lift_batch
from offerlab.stats.sufficient import MomentStats

GRID = list(itertools.product([0.02, 0.1, 0.35], [50, 1000, 40000], [0.25, 1.0, 3.0], [0.01, 0.05],
                              ["two-sided", "larger", "smaller"]))


@pytest.mark.parametrize("d,n1,ratio,alpha,alternative", GRID)
def test_power_is_statsmodels_normal_ind_power(d, n1, ratio, alpha, alternative):
    ref = NormalIndPower().power(d, n1, alpha, ratio=ratio, alternative=alternative)
    sd = 3.7  # any σ: the standardized effect is effect / σ
    got = power_two_sample(d * sd, sd, n1, ratio * n1, alpha=alpha, alternative=alternative)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("p_c,p_t,n", [(0.1, 0.12, 2000), (0.02, 0.025, 30000), (0.5, 0.45, 300)])
def test_arcsine_power_is_statsmodels_with_proportion_effectsize(p_c, p_t, n):
    ref = NormalIndPower().power(sms.proportion_effectsize(p_t, p_c), n, 0.05)
    assert power_proportions(p_c, p_t, n, n, method="arcsine") == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("d,ratio,alpha,power,alternative", [(0.1, 1.0, 0.05, 0.8, "two-sided"),
                                                             (0.05, 1.5, 0.01, 0.9, "two-sided"),
                                                             (0.2, 0.5, 0.05, 0.8, "larger")])
def test_sample_size_and_mde_solve_statsmodels_power_exactly(d, ratio, alpha, power, alternative):
    n = sample_size(d, 1.0, ratio=ratio, alpha=alpha, power=power, alternative=alternative)
    # statsmodels' own power function at our n gives the target to 1e-9 …
    assert NormalIndPower().power(d, n, alpha, ratio=ratio, alternative=alternative) == pytest.approx(power, abs=1e-9)
    # … and agrees with its brentq solver within that solver's tolerance (it stops near 1e-7 in power)
    assert n == pytest.approx(zt_ind_solve_power(d, None, alpha, power, ratio, alternative=alternative), rel=1e-6)
    mde = minimum_detectable_effect(1.0, n, ratio * n, alpha=alpha, power=power, alternative=alternative)
    assert mde == pytest.approx(d, rel=1e-9)
    assert NormalIndPower().power(mde, n, alpha, ratio=ratio, alternative=alternative) == pytest.approx(power, abs=1e-9)


def test_wald_proportion_power_by_simulation_of_the_real_test():
    rng = np.random.default_rng(40)
    p_c, p_t, n, sims = 0.05, 0.06, 8000, 3000
    expected = power_proportions(p_c, p_t, n, n)
    hits = sum(proportion_test(int(a), n, int(b), n).p_value <= 0.05
               for a, b in zip(rng.binomial(n, p_c, sims), rng.binomial(n, p_t, sims)))
    se = math.sqrt(expected * (1 - expected) / sims)
    assert abs(hits / sims - expected) <= 3 * se, (hits / sims, expected)


def test_sequential_power_is_a_tight_lower_bound_on_crossing_by_the_horizon():
    rng = np.random.default_rng(41)
    sims, looks, batch, sd, effect = 600, 40, 250, 1.0, 0.1  # 10 000 per arm at the horizon
    n = batch * looks
    predicted = power_sequential(effect, sd, n, n)
    c = rng.normal(0.0, sd, (sims, looks, batch))
    t = rng.normal(effect, sd, (sims, looks, batch))
    cum = lambda a: MomentStats(batch * np.arange(1, looks + 1), np.cumsum(a.sum(2), 1),  # noqa: E731
                                np.cumsum((a * a).sum(2), 1))
    _, _, p, _ = always_valid_lift_batch(cum(c), cum(t))
    ever = float(np.mean(np.any(p <= 0.05, axis=1)))
    at_end = float(np.mean(p[:, -1] <= 0.05))
    se = math.sqrt(predicted * (1 - predicted) / sims)
    assert abs(at_end - predicted) <= 3 * se, (at_end, predicted)
    assert ever >= predicted - 3 * se and ever - predicted < 0.15, (ever, predicted)
    # and the always-valid test needs more users than the fixed-horizon one
    assert sample_size(effect, sd, sequential=True) > 1.5 * sample_size(effect, sd)


def test_plan_of_the_seed_primary_kpi():
    # net_ltv 100 → 115 (the seed), σ = 150 per user, 2 000 exposures/day at 50 %, 28 days planned
    plan = plan_power(100, 115, kind="mean", users_per_day=2000, treatment_share=0.5, planned_days=28, sd=150)
    assert plan.reachable and plan.power > 0.99 and plan.power_sequential > 0.99
    assert plan.required_n_control == pytest.approx(zt_ind_solve_power(0.1, None, 0.05, 0.8, 1.0), rel=1e-6)
    assert plan.days_to_power == pytest.approx(plan.required_n_control / 1000, rel=1e-12)
    assert plan.days_to_power_sequential > plan.days_to_power
    assert plan.mde_sequential > plan.mde > 0
    short = plan_power(100, 101, kind="mean", users_per_day=200, treatment_share=0.5, planned_days=14, sd=150)
    assert not short.reachable and short.days_to_power > 14  # the launch checklist warns
    item = power_check(short)
    assert item["ok"] is False and item["severity"] == "WARNING" and "below the 80% target" in item["detail"]
    assert power_check(plan)["ok"] is True
    half_way = plan_power(100, 101, kind="mean", users_per_day=200, treatment_share=0.5, planned_days=0, sd=150,
                          enrolled_control=short.required_n_control, enrolled_treatment=short.required_n_control)
    assert half_way.days_to_power == 0.0 and half_way.reachable
    conv = plan_power(0.05, 0.06, kind="proportion", users_per_day=3000, treatment_share=0.2, planned_days=30)
    assert conv.power == pytest.approx(power_proportions(0.05, 0.06, 72000, 18000), rel=1e-12)
    assert conv.to_dict()["reachable"] == conv.reachable
    with pytest.raises(ValueError):
        plan_power(1, 2, kind="mean", users_per_day=10, treatment_share=0.5, planned_days=3)  # no σ
    with pytest.raises(ValueError):
        plan_power(1, 2, kind="mean", users_per_day=10, treatment_share=1.0, planned_days=3, sd=1)

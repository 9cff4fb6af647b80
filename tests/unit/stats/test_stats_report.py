"""The rest of the frequentist report: relative-lift p-value, one-sided tests, Benjamini–Hochberg,
CUPED for ratio metrics; against scipy/statsmodels on the same data and by simulation."""
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from offerlab.stats.frequentist import (
    RatioCovariateStats,
    benjamini_hochberg_adjust,
    directional_test,
    ratio_cuped_test,
    ratio_test,
    welch_test,
)
from offerlab.stats.sufficient import MomentStats


def revenue(rng, n, scale=1.0):
    return scale * rng.lognormal(1.0, 1.2, n) * (rng.random(n) < 0.2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relative_p_value_is_the_delta_method_z(seed):
    rng = np.random.default_rng(seed)
    a, b = revenue(rng, 4000), revenue(rng, 5000, 1.08)
    res = welch_test(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
    rel = b.mean() / a.mean() - 1
    se = math.sqrt(b.var(ddof=1) / (a.mean() ** 2 * b.size) + a.var(ddof=1) * b.mean() ** 2 / (a.mean() ** 4 * a.size))
    df = sps.ttest_ind(b, a, equal_var=False).df
    assert res.p_value_relative == pytest.approx(2 * sps.t.sf(abs(rel) / se, df), rel=1e-9)
    assert res.to_dict()["pValueRelative"] == res.p_value_relative


@pytest.mark.parametrize("direction,alternative", [("INCREASE", "greater"), ("DECREASE", "less")])
def test_one_sided_tests_match_scipy(direction, alternative):
    rng = np.random.default_rng(9)
    a, b = revenue(rng, 3000), revenue(rng, 3500, 1.1)
    lift = welch_test(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
    one = directional_test(lift, direction)
    ref = sps.ttest_ind(b, a, equal_var=False, alternative=alternative)
    assert one.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    bound = ci.low if direction == "INCREASE" else ci.high
    assert one.bound_absolute == pytest.approx(bound, rel=1e-9)
    assert 0 < one.p_value_relative < 1
    with pytest.raises(ValueError):
        directional_test(lift, "MAINTAIN")


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 0.2, 12) ** 2, 3)  # ties included
    assert benjamini_hochberg_adjust(list(p)) == pytest.approx(list(multipletests(p, method="fdr_bh")[1]), rel=1e-12)
    with pytest.raises(ValueError):
        benjamini_hochberg_adjust([0.1, math.nan])


def ratio_users(rng, n, rate=0.1, effect=1.0):
    """Per user: purchases before (x_pre) and during (x), refunds (y) correlated through a user rate."""
    propensity = rng.gamma(0.8, 2.5, n)
    user_rate = np.clip(rng.beta(2, 18, n) * (rate / 0.1), 0, 1)
    x_pre = rng.poisson(propensity).astype(float)
    y_pre = rng.binomial(x_pre.astype(int), user_rate).astype(float)
    x = rng.poisson(propensity).astype(float)
    y = rng.binomial(x.astype(int), np.clip(user_rate * effect, 0, 1)).astype(float)
    return y, x, y_pre, x_pre


def influences(y, x, y_pre, x_pre):
    r, rp = y.sum() / x.sum(), y_pre.sum() / x_pre.sum()
    return (y - r * x) / x.mean(), (y_pre - rp * x_pre) / x_pre.mean()


def test_ratio_cuped_is_ols_on_the_linearised_values_and_sums_add():
    rng = np.random.default_rng(12)
    c, t = ratio_users(rng, 6000), ratio_users(rng, 6500, effect=1.1)
    sc, st = RatioCovariateStats.from_arrays(*c), RatioCovariateStats.from_arrays(*t)
    res = ratio_cuped_test(sc, st)
    (l_c, lp_c), (l_t, lp_t) = influences(*c), influences(*t)
    arm = np.r_[np.zeros(l_c.size), np.ones(l_t.size)]
    design = sm.add_constant(np.column_stack([arm, np.r_[lp_c, lp_t]]))
    theta = sm.OLS(np.r_[l_c, l_t], design).fit().params[2]
    r_c, r_t = c[0].sum() / c[1].sum(), t[0].sum() / t[1].sum()
    rp_c, rp_t = c[2].sum() / c[3].sum(), t[2].sum() / t[3].sum()
    assert res.absolute_lift == pytest.approx((r_t - r_c) - theta * (rp_t - rp_c), rel=1e-9)
    se = math.sqrt(np.var(l_c - theta * lp_c, ddof=1) / l_c.size + np.var(l_t - theta * lp_t, ddof=1) / l_t.size)
    assert res.se_absolute == pytest.approx(se, rel=1e-9)
    plain = ratio_test(MomentStats.from_arrays(c[0], c[1]), MomentStats.from_arrays(t[0], t[1]))
    assert res.se_absolute < plain.se_absolute  # the pre-exposure ratio removes variance
    halves = RatioCovariateStats.from_arrays(*(a[:3000] for a in c), shifts=sc.shifts) + \
        RatioCovariateStats.from_arrays(*(a[3000:] for a in c), shifts=sc.shifts)
    assert ratio_cuped_test(halves, st).absolute_lift == pytest.approx(res.absolute_lift, rel=1e-9)


def test_ratio_cuped_standard_error_matches_the_sampling_spread():
    rng = np.random.default_rng(13)
    lifts, ses = [], []
    for _ in range(300):
        res = ratio_cuped_test(RatioCovariateStats.from_arrays(*ratio_users(rng, 2000)),
                               RatioCovariateStats.from_arrays(*ratio_users(rng, 2000)))
        lifts.append(res.absolute_lift)
        ses.append(res.se_absolute)
    # A/A: centred on 0, and the delta-method SE is the Monte Carlo SD within sampling error (~4 %)
    assert abs(np.mean(lifts)) < 3 * np.std(lifts) / math.sqrt(300)
    assert np.median(ses) == pytest.approx(np.std(lifts, ddof=1), rel=0.15)

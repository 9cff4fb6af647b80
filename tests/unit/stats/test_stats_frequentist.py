"""Fixed-horizon tests against scipy/statsmodels on the same data, plus calibration by simulation."""
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats import proportion as sm_proportion

from offerlab.stats.frequentist import (
    SRM_ALERT_P,
    analyze_moments,
    critical_value,
    cuped_test,
    holm_adjust,
    proportion_test,
    ratio_test,
    srm_p_value,
    two_sided_p_value,
    welch_df,
    welch_test,
)
from offerlab.stats.sufficient import MomentStats


def revenue(rng, n, scale=1.0, payer_share=0.1, sigma=1.5):
    """Zero-inflated, heavy-tailed revenue per user."""
    return scale * rng.lognormal(1.0, sigma, n) * (rng.random(n) < payer_share)


# -- Welch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n_c,n_t,shift", [(1, 4000, 4000, 0.0), (2, 3000, 9000, 0.3), (3, 50, 80, 1.0)])
def test_welch_matches_scipy_ttest_ind(seed, n_c, n_t, shift):
    rng = np.random.default_rng(seed)
    a, b = revenue(rng, n_c), revenue(rng, n_t) + shift
    res = welch_test(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    assert res.absolute_lift / res.se_absolute == pytest.approx(ref.statistic, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert res.ci_absolute == pytest.approx((lo, hi), rel=1e-8)
    assert (res.n_control, res.n_treatment, res.method) == (n_c, n_t, "welch")


def test_welch_df_formula_on_known_values():
    # equal variances and sizes: df = 2(n − 1)
    assert welch_df(4.0, 11, 4.0, 11) == pytest.approx(20.0)
    # one arm with all the variance: df = n − 1 of that arm
    assert welch_df(1e-12, 1000, 9.0, 25) == pytest.approx(24.0, rel=1e-6)


def test_relative_lift_ci_is_the_delta_method_on_the_ratio_of_means():
    rng = np.random.default_rng(4)
    a, b = revenue(rng, 20000), revenue(rng, 20000, scale=1.1)
    sa, sb = MomentStats.from_arrays(a), MomentStats.from_arrays(b)
    res = welch_test(sa, sb)
    var_rel = sb.variance / (sa.mean**2 * sb.n) + sa.variance * sb.mean**2 / (sa.mean**4 * sa.n)
    crit = sps.t.ppf(0.975, res.df)
    assert res.relative_lift == pytest.approx(b.mean() / a.mean() - 1, rel=1e-12)
    assert res.ci_relative == pytest.approx(
        (res.relative_lift - crit * math.sqrt(var_rel), res.relative_lift + crit * math.sqrt(var_rel)), rel=1e-10)


def test_tiny_p_values_stay_accurate_far_below_1e_minus_16():
    # closed forms with no cancellation: t(1) is Cauchy, t(2) has an algebraic cdf, normal via erfc
    for t in (1e3, 1e8, 1e12):
        assert two_sided_p_value(t, 1) == pytest.approx(2 * math.atan(1 / t) / math.pi, rel=1e-12)
    for t in (1e4, 1e10, 1e15):
        r = math.sqrt(t * t + 2)
        assert two_sided_p_value(t, 2) == pytest.approx(2 / (r * (r + t)), rel=1e-10)
    for z in (9.0, 12.0, 25.0):
        assert two_sided_p_value(z) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert two_sided_p_value(12.0) < 1e-30  # where 1 − cdf would have returned exactly 0
    # against scipy's log survival function at a Welch-sized df
    p = two_sided_p_value(-40.0, 57.3)
    assert 1e-50 < p < 1e-30
    assert math.log(p / 2) == pytest.approx(sps.t.logsf(40.0, 57.3), rel=1e-10)


def test_tiny_p_value_of_a_real_comparison_matches_scipy():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 300), rng.normal(1.0, 1, 300)
    res = welch_test(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
    ref = sps.ttest_ind(b, a, equal_var=False).pvalue
    assert 1e-80 < ref < 1e-20
    assert res.p_value == pytest.approx(ref, rel=1e-6)


def test_critical_values_match_scipy():
    assert critical_value(0.05) == pytest.approx(sps.norm.ppf(0.975), rel=1e-12)
    assert critical_value(0.01, 17.5) == pytest.approx(sps.t.ppf(0.995, 17.5), rel=1e-10)


def test_degenerate_inputs_do_not_raise():
    assert math.isnan(welch_test(MomentStats(1, 1.0, 1.0), MomentStats(5, 5.0, 6.0)).p_value)
    same = welch_test(MomentStats(5, 5.0, 5.0), MomentStats(5, 5.0, 5.0))  # zero variance, equal
    assert same.p_value == 1.0 and same.absolute_lift == 0.0
    certain = welch_test(MomentStats(5, 5.0, 5.0), MomentStats(5, 10.0, 20.0))
    assert certain.p_value == 0.0
    assert math.isnan(welch_test(MomentStats(5, 0.0, 0.0), MomentStats(5, 1.0, 1.0)).relative_lift)


# -- proportions ------------------------------------------------------------------------------


@pytest.mark.parametrize("c_c,n_c,c_t,n_t", [(412, 5000, 468, 5000), (90, 12000, 61, 4000), (2500, 5000, 2620, 5200)])
def test_proportions_match_statsmodels_wald(c_c, n_c, c_t, n_t):
    res = proportion_test(c_c, n_c, c_t, n_t)
    ref = sm_proportion.test_proportions_2indep(c_t, n_t, c_c, n_c, method="wald", compare="diff")
    lo, hi = sm_proportion.confint_proportions_2indep(c_t, n_t, c_c, n_c, method="wald", compare="diff")
    assert res.absolute_lift == pytest.approx(c_t / n_t - c_c / n_c, rel=1e-12)
    # statsmodels' Wald: variance p(1−p)/n and the normal; here the sample variance (× n/(n−1)) and
    # t(Welch df): the same statistic to O(1/n), p-values within a percent or so in the tail
    assert res.absolute_lift / res.se_absolute == pytest.approx(ref.statistic, rel=1e-3)
    assert res.p_value == pytest.approx(ref.pvalue, rel=3e-2)
    assert res.ci_absolute == pytest.approx((lo, hi), abs=1e-3 * (hi - lo))
    assert res.method == "proportion"


# -- ratio metrics ----------------------------------------------------------------------------


def refund_users(rng, n, refund_prob=0.03):
    """Per user: purchases (the denominator, clustered: some users buy a lot) and refunds."""
    purchases = rng.poisson(rng.gamma(0.8, 2.5, n))
    refunds = rng.binomial(purchases, refund_prob)
    return refunds.astype(float), purchases.astype(float)


def test_delta_method_ratio_variance_matches_the_monte_carlo_truth():
    rng = np.random.default_rng(6)
    estimates, predicted = [], []
    for _ in range(3000):
        y, x = refund_users(rng, 800)
        s = MomentStats.from_arrays(y, x)
        estimates.append(s.ratio)
        predicted.append(s.ratio_unit_variance / s.n)
    # the delta-method variance should be the true sampling variance of R̂ (to MC error ~ 2.6 %)
    assert np.mean(predicted) == pytest.approx(np.var(estimates, ddof=1), rel=0.08)


def test_delta_method_ratio_variance_closed_form():
    rng = np.random.default_rng(7)
    y, x = refund_users(rng, 5000)
    s = MomentStats.from_arrays(y, x)
    r = y.sum() / x.sum()
    # Var(R̂) ≈ Var(y − R·x) / (n · x̄²): the linearisation, computed directly on the per-user values
    assert s.ratio_unit_variance / s.n == pytest.approx(np.var(y - r * x, ddof=1) / (s.n * x.mean() ** 2), rel=1e-9)


def test_ratio_ci_coverage_on_aa_simulation():
    rng = np.random.default_rng(8)
    sims, covered = 1500, 0
    for _ in range(sims):
        yc, xc = refund_users(rng, 1500)
        yt, xt = refund_users(rng, 1500)
        res = ratio_test(MomentStats.from_arrays(yc, xc), MomentStats.from_arrays(yt, xt))
        covered += res.ci_absolute[0] <= 0.0 <= res.ci_absolute[1]
        assert res.method == "ratio_delta"
    rate = covered / sims
    assert abs(rate - 0.95) < 3.5 * math.sqrt(0.95 * 0.05 / sims), rate


# -- CUPED ------------------------------------------------------------------------------------


def cuped_data(rng, n, effect=0.0):
    pre = revenue(rng, n, payer_share=0.3, sigma=1.0)
    post = 0.8 * pre + revenue(rng, n, payer_share=0.3, sigma=1.0) + effect
    return post, pre


def test_cuped_lift_is_the_ols_arm_coefficient_and_reduces_variance_like_the_regression():
    rng = np.random.default_rng(9)
    yc, xc = cuped_data(rng, 6000)
    yt, xt = cuped_data(rng, 5000, effect=0.4)
    sc, st_ = MomentStats.from_arrays(yc, xc), MomentStats.from_arrays(yt, xt)
    res, plain = cuped_test(sc, st_), welch_test(MomentStats.from_arrays(yc), MomentStats.from_arrays(yt))

    y = np.r_[yc, yt]
    arm = np.r_[np.zeros(yc.size), np.ones(yt.size)]
    fit = sm.OLS(y, np.column_stack([np.ones(y.size), arm, np.r_[xc, xt]])).fit()
    assert res.method == "cuped"
    assert res.absolute_lift == pytest.approx(fit.params[1], rel=1e-9)
    assert res.se_absolute == pytest.approx(fit.bse[1], rel=0.03)  # OLS assumes one common variance
    # variance reduction (Deng et al. 2013, eq. 4): Var_cv / Var = 1 − ρ², ρ² = R² of y on x within arms
    within_r2 = sm.OLS(y, np.column_stack([np.ones(y.size), arm, np.r_[xc, xt]])).fit().rsquared
    arm_only_r2 = sm.OLS(y, np.column_stack([np.ones(y.size), arm])).fit().rsquared
    partial_r2 = (within_r2 - arm_only_r2) / (1 - arm_only_r2)
    assert (res.se_absolute / plain.se_absolute) ** 2 == pytest.approx(1 - partial_r2, abs=0.02)
    assert res.se_absolute < 0.8 * plain.se_absolute


def test_cuped_without_covariate_is_welch_and_dispatch_picks_the_method():
    rng = np.random.default_rng(10)
    a, b = MomentStats.from_arrays(revenue(rng, 500)), MomentStats.from_arrays(revenue(rng, 500))
    assert cuped_test(a, b) == welch_test(a, b)
    assert analyze_moments(a, b).method == "welch"
    yc, xc = cuped_data(rng, 500)
    yt, xt = cuped_data(rng, 500)
    assert analyze_moments(MomentStats.from_arrays(yc, xc), MomentStats.from_arrays(yt, xt)).method == "cuped"
    proportions = analyze_moments(MomentStats.from_counts(5, 50), MomentStats.from_counts(7, 50), "proportion")
    assert proportions.method == "proportion"
    with pytest.raises(ValueError):
        analyze_moments(a, b, "median")  # type: ignore[arg-type]


# -- calibration: CI coverage on A/A with heavy tails ------------------------------------------


def test_ci_coverage_is_95_percent_on_heavy_tailed_aa_data():
    rng = np.random.default_rng(11)
    sims, n = 2000, 4000
    hits_abs = hits_rel = 0
    for _ in range(sims):
        a, b = revenue(rng, n, sigma=1.0, payer_share=0.2), revenue(rng, n, sigma=1.0, payer_share=0.2)
        res = welch_test(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
        hits_abs += res.ci_absolute[0] <= 0.0 <= res.ci_absolute[1]
        hits_rel += res.ci_relative[0] <= 0.0 <= res.ci_relative[1]
    slack = 3.5 * math.sqrt(0.95 * 0.05 / sims)
    assert abs(hits_abs / sims - 0.95) < slack, hits_abs / sims
    assert abs(hits_rel / sims - 0.95) < slack, hits_rel / sims


# -- SRM --------------------------------------------------------------------------------------


def test_srm_matches_scipy_chisquare():
    observed = {"CONTROL": 50_421, "TREATMENT": 49_579}
    ref = sps.chisquare([50_421, 49_579], [50_000, 50_000]).pvalue
    assert srm_p_value(observed, {"CONTROL": 50, "TREATMENT": 50}) == pytest.approx(ref, rel=1e-10)
    assert srm_p_value([50_421, 49_579], [0.5, 0.5]) == pytest.approx(ref, rel=1e-10)
    # three arms, unequal split given in percent
    obs = [8_120, 1_010, 906]
    exp = np.array([80, 10, 10]) / 100 * sum(obs)
    assert srm_p_value(obs, [80, 10, 10]) == pytest.approx(sps.chisquare(obs, exp).pvalue, rel=1e-10)


def test_srm_alerts_on_a_real_mismatch_only():
    assert SRM_ALERT_P == 0.001
    assert srm_p_value({"CONTROL": 10_000, "TREATMENT": 10_150}, {"CONTROL": 0.5, "TREATMENT": 0.5}) > SRM_ALERT_P
    tiny = srm_p_value({"CONTROL": 10_000, "TREATMENT": 11_000}, {"CONTROL": 0.5, "TREATMENT": 0.5})
    assert tiny < 1e-10 and tiny == pytest.approx(sps.chisquare([10_000, 11_000]).pvalue, rel=1e-8)
    assert srm_p_value({"TREATMENT": 30}, {"CONTROL": 0.5, "TREATMENT": 0.5}) < SRM_ALERT_P  # missing arm = 0
    assert srm_p_value({"CONTROL": 5, "HOLDOUT": 1}, {"CONTROL": 1.0}) == 0.0  # unexpected arm
    assert srm_p_value({"CONTROL": 0, "TREATMENT": 0}, {"CONTROL": 1, "TREATMENT": 1}) == 1.0
    with pytest.raises(TypeError):
        srm_p_value({"CONTROL": 1}, [1.0])


# -- Holm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = list(rng.uniform(0, 0.2, 12) ** 2) + [0.03, 0.03, 1.0, 0.0]  # ties, a 1 and a 0
    rng.shuffle(p)
    ref = multipletests(p, method="holm")[1]
    assert holm_adjust(p) == pytest.approx(list(ref), rel=1e-12, abs=1e-15)


def test_holm_known_answer_and_input_order():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([]) == []
    with pytest.raises(ValueError):
        holm_adjust([0.1, float("nan")])

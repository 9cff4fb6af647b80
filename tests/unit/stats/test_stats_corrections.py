"""Exclusions, winsorization and the fast corrected analysis: known answers and a slow reference."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sps

from offerlab.stats.corrections import (
    CONTROL,
    DIFFERENTIAL_EXCLUSION_P,
    TREATMENT,
    corrected_analysis,
    differential_exclusion_test,
    exclusion_mask,
    exclusion_reports,
    severity,
    winsorize,
    winsorize_cap,
)
from offerlab.stats.frequentist import welch_test
from offerlab.stats.sufficient import MomentStats


def flags_of(n, **indices):
    """{reason: bool array with True at the given indices}."""
    out = {}
    for name, idx in indices.items():
        f = np.zeros(n, dtype=bool)
        f[list(idx)] = True
        out[name] = f
    return out


# -- winsorization ----------------------------------------------------------------------------


def test_cap_known_answer_and_capped_counts_per_arm():
    control = np.arange(1, 51, dtype=float)  # 1..50
    treatment = np.arange(51, 101, dtype=float)  # 51..100
    # pooled 1..100: linear 90th percentile = 1 + 0.9·99 = 90.1
    assert winsorize_cap([control, treatment], 90) == pytest.approx(90.1)
    out = winsorize({CONTROL: control, TREATMENT: treatment}, 90)
    assert out.cap == pytest.approx(90.1)
    assert out.capped_by_arm == {CONTROL: 0, TREATMENT: 10}  # 91..100 are above 90.1
    assert out.values[TREATMENT].max() == pytest.approx(90.1)
    np.testing.assert_array_equal(out.values[CONTROL], control)
    assert treatment.max() == 100.0  # the input is not modified


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 80), elements=st.sampled_from([0.0, 0.0, 1.0, 2.5, -3.0, 7.0, 1e6])),
    hnp.arrays(np.float64, st.integers(0, 80), elements=st.floats(-1e3, 1e3, allow_nan=False)),
    st.floats(0, 100),
)
def test_cap_equals_numpy_percentile_of_the_pooled_values(a, b, percentile):
    expected = np.percentile(np.concatenate([a, b]), percentile)
    assert winsorize_cap([a, b], percentile) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert winsorize_cap(np.concatenate([a, b]), percentile) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_cap_rejects_bad_input():
    with pytest.raises(ValueError):
        winsorize_cap(np.array([]), 99)
    with pytest.raises(ValueError):
        winsorize_cap(np.array([1.0]), 101)


# -- exclusions -------------------------------------------------------------------------------


def test_exclusion_mask_is_the_union_of_the_flags():
    flags = flags_of(10, fraud=[0, 1], bot=[1, 2], sandbox=[9])
    np.testing.assert_array_equal(np.flatnonzero(exclusion_mask(flags, 10)), [0, 1, 2, 9])
    assert not exclusion_mask({}, 4).any()
    with pytest.raises(ValueError):
        exclusion_mask({"fraud": np.zeros(3, dtype=bool)}, 4)


def test_exclusion_reports_count_by_arm_with_severity():
    n = 1000
    fc = flags_of(n, fraud=range(5), bot=range(30), sandbox=[], spillover=range(3), regional_policy=range(60))
    ft = flags_of(n, fraud=range(7), bot=range(31), sandbox=range(2), spillover=range(80), regional_policy=range(60))
    reports, tests = exclusion_reports(fc, ft, n, n)
    by_type = {r["type"]: r for r in reports}
    assert by_type["fraud"] == {"type": "fraud", "affectedUserCount": 12, "severity": "LOW",
                                "byArm": {CONTROL: 5, TREATMENT: 7}}
    assert by_type["bot"]["affectedUserCount"] == 61 and by_type["bot"]["severity"] == "MEDIUM"  # 3.05 %
    assert by_type["regional_policy"]["severity"] == "HIGH"  # 6 % of users
    assert by_type["sandbox"]["byArm"] == {CONTROL: 0, TREATMENT: 2}
    # 3 vs 80 spillover-contaminated users: differential, so HIGH although only 4.15 % of users
    spill = next(t for t in tests if t.type == "spillover")
    assert spill.flagged and by_type["spillover"]["severity"] == "HIGH"
    assert not next(t for t in tests if t.type == "bot").flagged


def test_severity_rule_boundaries():
    assert severity(99, 10_000) == "LOW"
    assert severity(100, 10_000) == "MEDIUM"
    assert severity(499, 10_000) == "MEDIUM"
    assert severity(500, 10_000) == "HIGH"
    assert severity(0, 0) == "LOW"


def test_differential_exclusion_flags_an_imbalanced_case_and_not_a_balanced_one():
    assert DIFFERENTIAL_EXCLUSION_P == 0.01
    imbalanced = differential_exclusion_test(200, 10_000, 290, 10_000)
    balanced = differential_exclusion_test(200, 10_000, 206, 10_000)
    assert imbalanced.flagged and imbalanced.method == "chi2"
    assert not balanced.flagged
    for res, table in ((imbalanced, [[200, 9800], [290, 9710]]), (balanced, [[200, 9800], [206, 9794]])):
        ref = sps.chi2_contingency(table, correction=False).pvalue
        assert res.p_value == pytest.approx(ref, rel=1e-9)
    # unequal allocation, equal exclusion SHARES (2 %): not differential
    assert not differential_exclusion_test(1_800, 90_000, 200, 10_000).flagged


def test_differential_exclusion_uses_fisher_on_small_counts():
    res = differential_exclusion_test(0, 60, 9, 60)
    assert res.method == "fisher" and res.flagged
    assert res.p_value == pytest.approx(sps.fisher_exact([[0, 60], [9, 51]]).pvalue, rel=1e-12)
    assert differential_exclusion_test(0, 60, 0, 60).method == "none"


# -- corrected analysis -----------------------------------------------------------------------


def reference(y_c, y_t, flags_c, flags_t, percentile, ignore_zeros):
    """The naive implementation: mask, filter, np.percentile on the pooled values, np.minimum."""
    keep_c = ~np.logical_or.reduce(list(flags_c.values())) if flags_c else np.ones(y_c.size, bool)
    keep_t = ~np.logical_or.reduce(list(flags_t.values())) if flags_t else np.ones(y_t.size, bool)
    kc, kt = y_c[keep_c], y_t[keep_t]
    pooled = np.concatenate([kc, kt])
    if ignore_zeros:
        pooled = pooled[pooled != 0]
    cap = np.percentile(pooled, percentile)
    return kc, kt, cap, np.minimum(kc, cap), np.minimum(kt, cap)


def revenue(rng, n, payer_share=0.1):
    return rng.lognormal(1.0, 1.5, n) * (rng.random(n) < payer_share)


@pytest.mark.parametrize("ignore_zeros", [True, False])
def test_corrected_analysis_matches_the_naive_implementation_and_scipy(ignore_zeros):
    rng = np.random.default_rng(30)
    n_c, n_t = 40_000, 41_234
    y_c, y_t = revenue(rng, n_c), revenue(rng, n_t) * 1.05
    y_c[:50] *= -1  # a few refunds larger than purchases: net revenue below zero
    reasons = ("fraud", "bot", "sandbox", "spillover", "regional_policy")
    fc = {r: rng.random(n_c) < p for r, p in zip(reasons, (0.01, 0.004, 0.02, 0.002, 0.01))}
    ft = {r: rng.random(n_t) < p for r, p in zip(reasons, (0.02, 0.004, 0.02, 0.002, 0.01))}
    y_c0, fc0 = y_c.copy(), {k: v.copy() for k, v in fc.items()}

    res = corrected_analysis(y_c, y_t, fc, ft, 99.0, cap_ignore_zeros=ignore_zeros)
    kc, kt, cap, cc, ct = reference(y_c, y_t, fc, ft, 99.0, ignore_zeros)

    assert res.cap == pytest.approx(cap, rel=1e-12)
    for result, (a, b) in ((res.raw, (y_c, y_t)), (res.filtered, (kc, kt)), (res.corrected, (cc, ct))):
        ref = sps.ttest_ind(b, a, equal_var=False)
        assert result.p_value == pytest.approx(ref.pvalue, rel=1e-7)
        assert result.df == pytest.approx(ref.df, rel=1e-7)
        assert (result.n_control, result.n_treatment) == (a.size, b.size)
        assert result.relative_lift == pytest.approx(b.mean() / a.mean() - 1, rel=1e-9)
    winsor = res.adjustments[-1]
    assert winsor["type"] == "winsorization"
    assert winsor["byArm"] == {CONTROL: int((kc > cap).sum()), TREATMENT: int((kt > cap).sum())}
    assert [r["type"] for r in res.adjustments[:-1]] == list(reasons)
    assert res.adjustments[0]["byArm"] == {CONTROL: int(fc["fraud"].sum()), TREATMENT: int(ft["fraud"].sum())}
    # fraud 1 % vs 2 %: differential, flagged, and the combined mask too
    assert {t.type for t in res.differential_exclusion if t.flagged} == {"fraud", "any"}
    assert res.differential_exclusion_flagged
    got, want = res.moments["corrected"][CONTROL], MomentStats.from_arrays(cc, shift_y=0.0)
    assert got.n == want.n
    assert (got.sum_y, got.sum_y2) == (pytest.approx(want.sum_y, rel=1e-9), pytest.approx(want.sum_y2, rel=1e-9))
    # the inputs are untouched
    np.testing.assert_array_equal(y_c, y_c0)
    for k in fc:
        np.testing.assert_array_equal(fc[k], fc0[k])


@settings(max_examples=120, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(3, 60), elements=st.sampled_from([0.0, 0.0, 0.0, 1.0, 2.0, 5.0, -4.0, 50.0])),
    hnp.arrays(np.float64, st.integers(3, 60), elements=st.sampled_from([0.0, 0.0, 1.0, 3.0, 9.0, -1.0, 80.0])),
    st.floats(0, 100),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_fast_path_equals_the_naive_implementation_on_small_tied_data(y_c, y_t, percentile, ignore_zeros, rnd):
    fc = {"fraud": np.array([rnd.random() < 0.2 for _ in y_c])}
    ft = {"fraud": np.array([rnd.random() < 0.2 for _ in y_t])}
    res = corrected_analysis(y_c, y_t, fc, ft, percentile, cap_ignore_zeros=ignore_zeros)
    kc, kt = y_c[~fc["fraud"]], y_t[~ft["fraud"]]
    pooled = np.concatenate([kc, kt])
    pooled = pooled[pooled != 0] if ignore_zeros else pooled
    if pooled.size == 0:
        assert res.cap is None and res.corrected == res.filtered
        return
    cap = np.percentile(pooled, percentile)
    assert res.cap == pytest.approx(cap, rel=1e-12, abs=1e-12)
    for arm, kept in ((CONTROL, kc), (TREATMENT, kt)):
        got, want = res.moments["corrected"][arm], MomentStats.from_arrays(np.minimum(kept, cap), shift_y=0.0)
        assert got.n == want.n
        assert got.sum_y == pytest.approx(want.sum_y, rel=1e-9, abs=1e-9)
        assert got.sum_y2 == pytest.approx(want.sum_y2, rel=1e-9, abs=1e-9)
    assert res.adjustments[-1]["byArm"] == {CONTROL: int((kc > cap).sum()), TREATMENT: int((kt > cap).sum())}


def test_no_flags_no_cap_gives_three_identical_results():
    rng = np.random.default_rng(31)
    y_c, y_t = revenue(rng, 3000), revenue(rng, 3000)
    res = corrected_analysis(y_c, y_t, {}, {}, None)
    assert res.raw == res.filtered == res.corrected
    assert res.cap is None and res.adjustments == []
    assert res.raw == welch_test(MomentStats.from_arrays(y_c), MomentStats.from_arrays(y_t))
    with pytest.raises(ValueError):
        corrected_analysis(y_c, y_t, {"fraud": np.zeros(3000, bool)}, {}, None)


def test_corrected_analysis_of_a_ratio_metric_filters_but_does_not_cap():
    rng = np.random.default_rng(32)
    n = 5000
    x_c, x_t = rng.poisson(2.0, n).astype(float), rng.poisson(2.0, n).astype(float)
    y_c, y_t = rng.binomial(x_c.astype(int), 0.03).astype(float), rng.binomial(x_t.astype(int), 0.05).astype(float)
    fc, ft = flags_of(n, sandbox=range(100)), flags_of(n, sandbox=range(120))
    res = corrected_analysis(y_c, y_t, fc, ft, kind="ratio", x_control=x_c, x_treatment=x_t)
    assert res.cap is None and res.corrected == res.filtered
    assert res.filtered.method == "ratio_delta"
    assert res.filtered.control_mean == pytest.approx(y_c[100:].sum() / x_c[100:].sum(), rel=1e-12)
    assert res.raw.treatment_mean == pytest.approx(y_t.sum() / x_t.sum(), rel=1e-12)
    with pytest.raises(ValueError):
        corrected_analysis(y_c, y_t, fc, ft, kind="ratio")


def test_corrected_analysis_with_a_covariate_uses_cuped_and_caps_y():
    rng = np.random.default_rng(33)
    n = 8000
    pre_c, pre_t = revenue(rng, n, 0.3), revenue(rng, n, 0.3)
    y_c, y_t = 0.8 * pre_c + revenue(rng, n, 0.3), 0.8 * pre_t + revenue(rng, n, 0.3)
    fc, ft = flags_of(n, bot=range(40)), flags_of(n, bot=range(45))
    res = corrected_analysis(y_c, y_t, fc, ft, 99.0, x_control=pre_c, x_treatment=pre_t)
    assert res.corrected.method == "cuped"
    _, _, cap, cc, ct = reference(y_c, y_t, fc, ft, 99.0, True)
    assert res.cap == pytest.approx(cap, rel=1e-12)
    assert res.moments["corrected"][TREATMENT].total_y == pytest.approx(ct.sum(), rel=1e-12)
    plain = welch_test(res.moments["corrected"][CONTROL], res.moments["corrected"][TREATMENT])
    assert res.corrected.se_absolute < 0.9 * plain.se_absolute  # the covariate removes variance


def test_nan_in_the_values_is_refused():
    y = np.ones(10)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError):
        corrected_analysis(y, bad, {}, {}, 99.0)


def test_everyone_excluded_in_one_arm_gives_nan_not_an_error():
    y = np.ones(10)
    res = corrected_analysis(y, y, {"fraud": np.ones(10, bool)}, {"fraud": np.zeros(10, bool)}, 99.0)
    assert res.filtered.n_control == 0 and math.isnan(res.filtered.p_value)
    assert res.adjustments[0]["severity"] == "HIGH"

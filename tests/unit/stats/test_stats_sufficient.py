"""MomentStats: moments against numpy, summability, storage round trip."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.stats.sufficient import MomentStats

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_moments_match_numpy():
    rng = np.random.default_rng(1)
    y = rng.lognormal(1.0, 1.2, 5000) * (rng.random(5000) < 0.2)
    x = rng.poisson(2.0, 5000).astype(float)
    s = MomentStats.from_arrays(y, x)
    assert s.n == 5000
    assert s.mean == pytest.approx(y.mean(), rel=1e-12)
    assert s.variance == pytest.approx(y.var(ddof=1), rel=1e-10)
    assert s.mean_x == pytest.approx(x.mean(), rel=1e-12)
    assert s.variance_x == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert s.covariance_xy == pytest.approx(np.cov(x, y, ddof=1)[0, 1], rel=1e-9)
    assert s.ratio == pytest.approx(y.sum() / x.sum(), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=60), st.data())
def test_stats_of_two_halves_add_up_to_the_stats_of_the_whole(pairs, data):
    y = np.array([p[0] for p in pairs])
    x = np.array([p[1] for p in pairs])
    cut = data.draw(st.integers(min_value=0, max_value=len(pairs)))
    whole = MomentStats.from_arrays(y, x)
    halves = MomentStats.from_arrays(y[:cut], x[:cut]) + MomentStats.from_arrays(y[cut:], x[cut:])
    assert halves.n == whole.n
    scale = 1.0 + float(np.abs(y).max() + np.abs(x).max()) ** 2 * len(pairs)
    for field in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"):
        assert math.isclose(getattr(halves, field), getattr(whole, field), rel_tol=1e-12, abs_tol=1e-12 * scale)


def test_daily_snapshots_sum_with_builtin_sum_and_zero():
    rng = np.random.default_rng(2)
    days = [rng.exponential(3.0, 100 + 10 * d) for d in range(7)]
    total = sum(MomentStats.from_arrays(d) for d in days)
    assert total == MomentStats.zero() + total
    allv = np.concatenate(days)
    assert total.n == allv.size
    assert total.mean == pytest.approx(allv.mean(), rel=1e-12)
    assert total.variance == pytest.approx(allv.var(ddof=1), rel=1e-10)


def test_storage_round_trip_uses_camel_case_keys():
    s = MomentStats(10, 4.5, 7.25, 3.0, 5.0, 2.5)
    d = s.to_dict()
    assert d == {"n": 10, "sumY": 4.5, "sumY2": 7.25, "sumX": 3.0, "sumX2": 5.0, "sumXY": 2.5}
    assert MomentStats.from_dict(d) == s
    assert MomentStats.from_dict({"n": 3, "sumY": 1, "sumY2": 1}) == MomentStats(3, 1.0, 1.0)


def test_proportion_from_counts_is_a_mean_of_zero_one_values():
    s = MomentStats.from_counts(37, 200)
    ref = MomentStats.from_arrays(np.r_[np.ones(37), np.zeros(163)], shift_y=0.0)
    assert s == ref
    assert s.variance == pytest.approx(0.185 * 0.815 * 200 / 199, rel=1e-12)
    with pytest.raises(ValueError):
        MomentStats.from_counts(5, 4)


def test_degenerate_sizes_give_nan_not_errors():
    assert math.isnan(MomentStats.zero().mean)
    assert math.isnan(MomentStats(1, 2.0, 4.0).variance)
    assert MomentStats(3, 6.0, 12.0).variance == 0.0  # constant values: exactly 0, never negative
    assert math.isnan(MomentStats(5, 1.0, 1.0).ratio)  # no denominator
    with pytest.raises(ValueError):
        MomentStats.from_arrays(np.ones(3), np.ones(4))

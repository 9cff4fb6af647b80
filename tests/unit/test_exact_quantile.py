"""stats/exact_quantile.py: the paged exact percentile equals the analysis' in-memory cap
(stats.corrections.winsorize_cap: the same order statistics and interpolation, bit for bit) and numpy's
percentile to rounding, with ties, negatives, refinements forced by a tiny collection limit, any page size."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.stats.corrections import winsorize_cap
from offerlab.stats.exact_quantile import ExactPercentile, order_keys


def run(values, percentile, page=97, limit=1 << 18):
    sel = ExactPercentile(percentile, collect_limit=limit)
    while not sel.done:
        for start in range(0, len(values), page):
            sel.add(values[start:start + page])
        sel.end_pass()
    return sel


def test_keys_order_like_the_floats():
    v = np.array([-np.inf, -1e300, -2.5, -1e-300, 0.0, 5e-324, 1.0, 2.5, 1e300, np.inf])
    assert np.all(np.diff(order_keys(v).astype(object)) > 0)
    assert order_keys(np.array([-0.0]))[0] == order_keys(np.array([0.0]))[0]


@pytest.mark.parametrize("limit", [1 << 18, 3])
@pytest.mark.parametrize("percentile", [0.0, 50.0, 99.0, 99.9, 100.0])
def test_lognormal_revenue_matches_numpy(limit, percentile):
    rng = np.random.default_rng(5)
    values = np.round(np.exp(rng.normal(3, 1.5, 20_000)), 2)
    sel = run(values, percentile, limit=limit)
    assert sel.value == winsorize_cap(values, percentile)
    assert sel.value == pytest.approx(np.percentile(values, percentile), rel=1e-12)
    assert sel.passes <= 5


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([9.99, 9.99, -3.0, 1e-9])),
                min_size=1, max_size=300), st.floats(0, 100), st.integers(1, 50), st.sampled_from([2, 5, 1 << 18]))
def test_any_multiset_any_page_size(values, percentile, page, limit):
    values = np.array(values)
    got = run(values, percentile, page, limit).value
    assert got == winsorize_cap(values, percentile)
    # numpy interpolates as lo + (hi - lo)·w: near a zero crossing its rounding error is relative to the
    # values interpolated between, not to the (tiny) result, hence the absolute tolerance's scale.
    scale = float(np.max(np.abs(values)))
    assert got == pytest.approx(np.percentile(values, percentile), rel=1e-9, abs=1e-12 * max(1.0, scale))

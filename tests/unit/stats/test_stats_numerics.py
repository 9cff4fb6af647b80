"""Shifted sums: stable moments that still merge by addition (the vectors), and the streamed
per-user deltas (winsorized contributions, growth, late exclusion) against a full recompute."""
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from offerlab.stats.frequentist import welch_test
from offerlab.stats.streaming import apply_deltas, capped, delta_contribution, user_contribution
from offerlab.stats.sufficient import MomentStats

VECTORS = json.loads((Path(__file__).parent / "vectors" / "numerics.json").read_text())["cases"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_numerics_vectors(case):
    values = np.array(case["values"])
    if "split" in case:
        k = case["split"]
        stats = MomentStats.from_arrays(values[:k]) + MomentStats.from_arrays(values[k:])
    else:
        stats = MomentStats.from_arrays(values, shift_y=case.get("shift"))
    assert stats.n == len(values)
    assert stats.mean == pytest.approx(case["mean"], rel=1e-15)
    assert stats.variance == pytest.approx(case["variance"], rel=1e-9)


def test_raw_power_sums_are_the_defect_and_the_shift_is_the_cure():
    y = 1e9 + np.array([4.0, 7.0, 13.0, 16.0])
    raw = MomentStats(4, float(y.sum()), float(np.dot(y, y)))  # what the old code stored
    assert raw.variance != pytest.approx(30.0, rel=0.1)
    assert MomentStats.from_arrays(y).variance == 30.0
    assert MomentStats.from_arrays(y, shift_y=1e9).variance == 30.0


def test_welch_on_a_large_offset_matches_scipy():
    rng = np.random.default_rng(5)
    a, b = 1e9 + rng.normal(0, 3, 500), 1e9 + rng.normal(0.5, 3, 600)
    res = welch_test(MomentStats.from_arrays(a, shift_y=1e9), MomentStats.from_arrays(b, shift_y=1e9))
    ref = sps.ttest_ind(b - 1e9, a - 1e9, equal_var=False)  # subtracting 1e9 is exact (Sterbenz)
    # the arm means themselves are only known to float spacing at 1e9 (1.2e-7): a 2e-7 relative error
    # on a 0.5 difference, about 1e-6 on this p-value
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-5)
    assert res.ci_absolute[1] - res.ci_absolute[0] > 0.1
    raw = [MomentStats(v.size, float(v.sum()), float(np.dot(v, v))) for v in (a, b)]
    assert welch_test(*raw).p_value != pytest.approx(ref.pvalue, rel=1e-2)  # what raw sums gave


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=40), st.data(),
       st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_recentering_is_exact_and_merges_agree(pairs, data, k1, k2):
    y = np.array([p[0] for p in pairs])
    x = np.array([p[1] for p in pairs])
    cut = data.draw(st.integers(min_value=0, max_value=len(pairs)))
    a = MomentStats.from_arrays(y[:cut], x[:cut], shift_y=k1, shift_x=k2)
    b = MomentStats.from_arrays(y[cut:], x[cut:])
    whole = MomentStats.from_arrays(y, x)
    merged = a + b
    scale = 1.0 + float(np.abs(y).max() + np.abs(x).max() + abs(k1) + abs(k2)) ** 2 * len(pairs)
    assert merged.n == whole.n
    assert math.isclose(merged.mean, whole.mean, rel_tol=1e-9, abs_tol=1e-9 * math.sqrt(scale))
    assert math.isclose(merged.mean_x, whole.mean_x, rel_tol=1e-9, abs_tol=1e-9 * math.sqrt(scale))
    if len(pairs) >= 2:
        for attr in ("variance", "variance_x", "covariance_xy"):
            assert math.isclose(getattr(merged, attr), getattr(whole, attr), rel_tol=1e-7, abs_tol=1e-7 * scale)
    back = merged.recentered(whole.shift_y, whole.shift_x)
    assert back.shift_y == whole.shift_y and back.total_y == pytest.approx(whole.total_y, rel=1e-9, abs=1e-6 * scale)


def test_storage_keeps_raw_documents_unchanged_and_round_trips_shifts():
    assert MomentStats(3, 1.0, 1.0).to_dict() == {"n": 3, "sumY": 1.0, "sumY2": 1.0, "sumX": 0.0, "sumX2": 0.0,
                                                 "sumXY": 0.0}
    s = MomentStats.from_arrays(np.array([3.0, 5.0, 9.0]), np.array([1.0, 1.0, 2.0]), shift_y=4.0, shift_x=1.0)
    assert s.to_dict()["shiftY"] == 4.0 and MomentStats.from_dict(s.to_dict()) == s
    assert MomentStats.zero() + s == s  # the empty statistic adopts the other's shifts


# -- streamed contributions ------------------------------------------------------------------


def test_capped_contribution_of_one_user():
    assert capped(250.0, 100.0) == 100.0 and capped(-5.0, 100.0, floor=-20.0) == -5.0
    assert capped(-50.0, None, floor=-20.0) == -20.0
    assert user_contribution(250.0, cap=100.0, shift=10.0) == {"n": 1, "sumY": 90.0, "sumY2": 8100.0}
    with pytest.raises(ValueError):
        capped(math.nan, 1.0)
    with pytest.raises(ValueError):
        capped(1.0, 1.0, floor=2.0)


def test_streamed_deltas_in_any_order_with_growth_and_late_exclusions_equal_a_recompute():
    rng = random.Random(7)
    cap, shift = 150.0, 9.99
    users = {f"u{i}": 0.0 for i in range(300)}
    excluded: set[str] = set()
    deltas = []
    counted: dict[str, float | None] = {u: None for u in users}  # the value each user is counted at
    for _ in range(3000):
        user = rng.choice(list(users))
        if rng.random() < 0.03:  # a fraud flag arrives: the user leaves the kept statistics
            excluded.add(user)
        else:
            users[user] += rng.choice([0.0, 9.99, 19.99, 49.99, 99.99])
        new = None if user in excluded else users[user]
        deltas.append(delta_contribution(counted[user], new, cap, shift))
        counted[user] = new
    rng.shuffle(deltas)  # blind increments commute: arrival order does not matter
    sums: dict[str, float] = {}
    for d in deltas:
        sums = apply_deltas(sums, d)
    kept = np.array([min(v, cap) for u, v in users.items() if u not in excluded])
    want = MomentStats.from_arrays(kept, shift_y=shift)
    got = MomentStats.from_dict({**sums, "shiftY": shift})
    assert got.n == want.n == kept.size
    assert got.sum_y == pytest.approx(want.sum_y, rel=1e-9)
    assert got.sum_y2 == pytest.approx(want.sum_y2, rel=1e-9)
    assert got.variance == pytest.approx(kept.var(ddof=1), rel=1e-9)


def test_ratio_deltas_carry_the_denominator_and_cross_terms():
    d = delta_contribution(None, 1.0, None, 0.0, new_x=4.0, x_shift=1.0)
    assert d == {"n": 1, "sumY": 1.0, "sumY2": 1.0, "sumX": 3.0, "sumX2": 9.0, "sumXY": 3.0}
    grow = delta_contribution(1.0, 2.0, None, 0.0, old_x=4.0, new_x=5.0, x_shift=1.0)
    total = apply_deltas(d, grow)
    assert total == {"n": 1, "sumY": 2.0, "sumY2": 4.0, "sumX": 4.0, "sumX2": 16.0, "sumXY": 8.0}
    gone = apply_deltas(total, delta_contribution(2.0, None, None, 0.0, old_x=5.0, x_shift=1.0))
    assert all(v == 0 for v in gone.values())
    with pytest.raises(ValueError):  # a denominator without its value
        delta_contribution(None, 1.0, None, 0.0, old_x=2.0)

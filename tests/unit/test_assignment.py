"""The assignment hash of API.md §2, against the published golden vectors and its own promises."""
import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from offerlab.domain.assignment import Arm, assign_arm, bucket_of, in_holdout, threshold

VECTORS = json.loads((Path(__file__).parent / "data" / "assignment-vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['salt'][:6]}:{v['unitId'][:12]}")
def test_bucket_matches_golden_vectors(vector):
    assert bucket_of(vector["salt"], vector["unitId"]) == vector["bucket"]


def test_vectors_cover_unicode_and_empty_ids():
    ids = {v["unitId"] for v in VECTORS}
    assert "" in ids and any(not i.isascii() for i in ids)


def test_threshold_uses_basis_points():
    assert threshold(10) == 1000 and threshold(0.01) == 1 and threshold(12.34) == 1234 and threshold(50) == 5000


@given(st.text(max_size=40), st.floats(min_value=0.01, max_value=50))
def test_holdout_membership_is_bucket_below_threshold(user_id, pct):
    assert in_holdout("s", pct, user_id) == (bucket_of("s", user_id) < round(pct * 100))


@given(st.text(max_size=40), st.sampled_from([1, 5, 10, 25, 50]), st.sampled_from([5, 10, 25, 50, 100]))
def test_raising_coverage_only_adds_users_and_never_changes_an_arm(user_id, low, high):
    if high < low:
        low, high = high, low
    common = dict(user_id=user_id, experiment_salt="exp", treatment_percentage=50,
                  holdout_salt="hold", holdout_percentage=10)
    before, after = assign_arm(coverage=low, **common), assign_arm(coverage=high, **common)
    if before != Arm.NOT_ENROLLED:
        assert after == before


def test_not_started_experiment_enrolls_nobody_outside_the_holdout():
    arms = {assign_arm(user_id=f"u{i}", experiment_salt="e", treatment_percentage=50, coverage=None,
                       holdout_salt="h", holdout_percentage=10) for i in range(500)}
    assert arms == {Arm.HOLDOUT, Arm.NOT_ENROLLED}


def test_shares_follow_configuration():
    n = 20_000
    arms = [assign_arm(user_id=f"user-{i}", experiment_salt="e1", treatment_percentage=30, coverage=50,
                       holdout_salt="h1", holdout_percentage=10) for i in range(n)]
    share = {a: arms.count(a) / n for a in Arm}
    # Binomial standard errors are below 0.4 %; 4 sigma bounds.
    assert abs(share[Arm.HOLDOUT] - 0.10) < 0.009
    enrolled = share[Arm.TREATMENT] + share[Arm.CONTROL]
    assert abs(enrolled - 0.9 * 0.5) < 0.015
    assert abs(share[Arm.TREATMENT] / enrolled - 0.30) < 0.015

"""The precompiled assignment (domain/assignment.py AssignmentPlan, bucket_of_bytes) is byte-exact
with the published formula: golden vectors, and the same arm as assign_arm for any input."""
import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from offerlab.domain.assignment import AssignmentPlan, assign_arm, bucket_of_bytes

VECTORS = json.loads((Path(__file__).parent / "data" / "assignment-vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['salt'][:6]}:{v['unitId'][:12]}")
def test_bucket_of_bytes_matches_golden_vectors(vector):
    assert bucket_of_bytes(f"{vector['salt']}:".encode(), vector["unitId"].encode()) == vector["bucket"]


pcts = st.integers(min_value=0, max_value=10_000).map(lambda bp: bp / 100)


@given(user_id=st.text(max_size=40), salt=st.text(max_size=20), holdout_salt=st.text(max_size=20),
       treatment=pcts, coverage=st.one_of(st.none(), pcts), holdout=st.integers(1, 5000).map(lambda bp: bp / 100))
def test_the_plan_assigns_exactly_like_assign_arm(user_id, salt, holdout_salt, treatment, coverage, holdout):
    config = dict(experiment_salt=salt, treatment_percentage=treatment, coverage=coverage,
                  holdout_salt=holdout_salt, holdout_percentage=holdout)
    expected = assign_arm(user_id=user_id, **config)
    assert AssignmentPlan(**config).arm_of(user_id) == expected


def test_the_plan_agrees_on_a_population():
    config = dict(experiment_salt="e1", treatment_percentage=30, coverage=50, holdout_salt="h1", holdout_percentage=10)
    plan = AssignmentPlan(**config)
    assert all(plan.arm_of(f"user-{i}") == assign_arm(user_id=f"user-{i}", **config) for i in range(5000))

"""Holdout cohorts, pure: membership (API.md §2), the lifecycle guards and the health thresholds."""
import pytest
from hypothesis import given, strategies as st

from offerlab.domain.assignment import bucket_of
from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.holdouts import (
    CONTAMINATION_CRITICAL, CONTAMINATION_DEGRADED, SRM_CRITICAL_P, CohortView, assess_health, cohorts_containing,
    contamination_rate, ensure_editable, ensure_freezable, ensure_retirable,
)
from offerlab.domain.types import DEFAULT_SPILLOVER_POLICY, CohortStatus, SpilloverAction, SpilloverChannel


def cohort(cohort_id="c1", salt="salt-1", pct=10.0, policy=None):
    return CohortView.of(cohort_id, salt, pct, policy or DEFAULT_SPILLOVER_POLICY)


@given(st.text(max_size=60), st.integers(min_value=1, max_value=5000))
def test_membership_is_the_published_formula(user_id, basis_points):
    pct = basis_points / 100
    assert cohort(pct=pct).contains(user_id) == (bucket_of("salt-1", user_id) < round(pct * 100))


def test_membership_lists_every_cohort_holding_the_user_in_order():
    a, b = cohort("a", "s-a", 50), cohort("b", "s-b", 50)
    users = [f"user-{i}" for i in range(400)]
    for u in users:
        expected = [c.cohort_id for c in (a, b) if bucket_of(c.salt, u) < 5000]
        assert cohorts_containing(u, [a, b]) == expected
    # With two independent 50 % cohorts every combination occurs among 400 users.
    assert {tuple(cohorts_containing(u, [a, b])) for u in users} == {(), ("a",), ("b",), ("a", "b")}


def test_a_policy_without_the_channel_falls_back_to_block():
    partial = cohort(policy={SpilloverChannel.REFERRAL: SpilloverAction.ALLOW})
    assert partial.action_for(SpilloverChannel.REFERRAL) == SpilloverAction.ALLOW
    assert partial.action_for(SpilloverChannel.GIFT) == SpilloverAction.BLOCK


def test_only_a_draft_is_editable_or_freezable():
    ensure_editable(CohortStatus.DRAFT)
    ensure_freezable(CohortStatus.DRAFT)
    for status in (CohortStatus.FROZEN, CohortStatus.RETIRED):
        with pytest.raises(FailedPrecondition):
            ensure_editable(status)
        with pytest.raises(FailedPrecondition):
            ensure_freezable(status)


def test_only_a_frozen_cohort_without_running_experiments_is_retirable():
    ensure_retirable(CohortStatus.FROZEN, [])
    for status in (CohortStatus.DRAFT, CohortStatus.RETIRED):
        with pytest.raises(FailedPrecondition):
            ensure_retirable(status, [])
    with pytest.raises(FailedPrecondition) as err:
        ensure_retirable(CohortStatus.FROZEN, ["exp-2", "exp-1"])
    assert err.value.details == {"experimentIds": ["exp-1", "exp-2"]}


def health(**overrides):
    args = dict(status=CohortStatus.FROZEN, assigned=1000, contaminated=0, srm_p=0.5, expected_share=0.1,
                observed_share=0.1)
    args.update(overrides)
    return assess_health(**args)


def test_a_frozen_clean_balanced_cohort_is_healthy():
    verdict = health()
    assert verdict.level == "HEALTHY" and verdict.issues == []


@pytest.mark.parametrize("contaminated, level", [
    (int(1000 * CONTAMINATION_DEGRADED) - 1, "HEALTHY"),
    (int(1000 * CONTAMINATION_DEGRADED), "DEGRADED"),
    (int(1000 * CONTAMINATION_CRITICAL) - 1, "DEGRADED"),
    (int(1000 * CONTAMINATION_CRITICAL), "CRITICAL"),
])
def test_contamination_thresholds(contaminated, level):
    verdict = health(contaminated=contaminated)
    assert verdict.level == level
    assert bool(verdict.issues) == (level != "HEALTHY")


def test_sample_ratio_mismatch_is_critical_only_below_the_alert_level():
    assert health(srm_p=SRM_CRITICAL_P).level == "HEALTHY"
    verdict = health(srm_p=SRM_CRITICAL_P / 10, observed_share=0.2)
    assert verdict.level == "CRITICAL" and "Sample-ratio mismatch" in verdict.issues[0]


def test_draft_and_retired_cohorts_are_degraded_and_the_worst_issue_wins():
    assert health(status=CohortStatus.DRAFT, assigned=0, srm_p=None, observed_share=None).level == "DEGRADED"
    assert health(status=CohortStatus.RETIRED).level == "DEGRADED"
    verdict = health(status=CohortStatus.RETIRED, contaminated=100)
    assert verdict.level == "CRITICAL" and len(verdict.issues) == 2


def test_contamination_rate_of_an_empty_cohort_is_zero():
    assert contamination_rate(0, 0) == 0.0 and contamination_rate(200, 3) == 0.015

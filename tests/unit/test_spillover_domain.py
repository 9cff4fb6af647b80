"""check_spillover's decision, pure (API.md §3): boundaries, policies, the experiment rule."""
import pytest

from offerlab.domain.assignment import Arm
from offerlab.domain.errors import InvalidArgument
from offerlab.domain.holdouts import CohortView
from offerlab.domain.spillover import ExperimentView, decide
from offerlab.domain.types import DEFAULT_SPILLOVER_POLICY, SpilloverAction as A, SpilloverChannel as Ch

FLAG_ALL = {ch: A.FLAG for ch in Ch}
ALLOW_ALL = {ch: A.ALLOW for ch in Ch}


def cohort(cohort_id, salt, pct=30, policy=DEFAULT_SPILLOVER_POLICY):
    return CohortView.of(cohort_id, salt, pct, policy)


def users(pred, n=1, start=0):
    """The first n ids u<i> satisfying pred (found by scanning: the hash decides, not the test)."""
    found = [f"u{i}" for i in range(start, start + 5000) if pred(f"u{i}")]
    assert len(found) >= n
    return found[:n]


HOLD = cohort("hold", "salt-h")
INSIDE, INSIDE2 = users(HOLD.contains, 2)
OUTSIDE, OUTSIDE2 = users(lambda u: not HOLD.contains(u), 2)


@pytest.mark.parametrize("channel, action", [(Ch.GIFT, A.BLOCK), (Ch.SHARED_WALLET, A.BLOCK), (Ch.REFERRAL, A.FLAG)])
def test_outside_to_inside_is_a_violation_decided_by_the_default_policy(channel, action):
    d = decide(OUTSIDE, INSIDE, channel, [HOLD])
    assert d.violation and d.action == action and d.cohort_ids == ["hold"]
    assert d.contaminated_cohort_ids == (["hold"] if action == A.FLAG else [])
    assert "hold" in d.reason and action.value in d.reason


@pytest.mark.parametrize("giver, recipient", [(INSIDE, INSIDE2), (INSIDE, OUTSIDE), (OUTSIDE, OUTSIDE2)])
def test_no_boundary_crossed_is_allowed(giver, recipient):
    d = decide(giver, recipient, Ch.GIFT, [HOLD])
    assert not d.violation and d.action == A.ALLOW and d.cohort_ids == [] and d.contaminated_cohort_ids == []


def test_an_allow_policy_reports_the_violation_but_lets_it_pass_uncontaminated():
    open_cohort = cohort("hold", "salt-h", policy=ALLOW_ALL)
    d = decide(OUTSIDE, INSIDE, Ch.GIFT, [open_cohort])
    assert d.violation and d.action == A.ALLOW and d.contaminated_cohort_ids == []


def test_the_strictest_policy_wins_and_a_block_contaminates_nobody():
    flagging = cohort("flag", "salt-f", 50, FLAG_ALL)
    blocking = cohort("block", "salt-b", 50, DEFAULT_SPILLOVER_POLICY)
    both = lambda u: flagging.contains(u) and blocking.contains(u)  # noqa: E731
    neither = lambda u: not flagging.contains(u) and not blocking.contains(u)  # noqa: E731
    recipient, giver = users(both)[0], users(neither)[0]
    d = decide(giver, recipient, Ch.GIFT, [flagging, blocking])
    assert d.action == A.BLOCK and set(d.cohort_ids) == {"flag", "block"} and d.contaminated_cohort_ids == []
    referral = decide(giver, recipient, Ch.REFERRAL, [flagging, blocking])  # both FLAG referrals
    assert referral.action == A.FLAG and set(referral.contaminated_cohort_ids) == {"flag", "block"}


def test_self_referral_is_invalid():
    with pytest.raises(InvalidArgument) as err:
        decide(INSIDE, INSIDE, Ch.REFERRAL, [HOLD])
    assert err.value.details["fields"][0]["path"] == "toUserId"


def experiment(coverage=100.0, policy=DEFAULT_SPILLOVER_POLICY):
    return ExperimentView("exp", "salt-e", 50, coverage, cohort("hold", "salt-h", 30, policy))


def arm_users(exp, arm, n=1):
    return users(lambda u: exp.arm_of(u) == arm, n)


@pytest.mark.parametrize("to_arm", [Arm.CONTROL, Arm.HOLDOUT])
def test_treatment_to_control_or_holdout_of_the_experiment_is_a_violation(to_arm):
    exp = experiment(policy=FLAG_ALL)
    giver, recipient = arm_users(exp, Arm.TREATMENT)[0], arm_users(exp, to_arm)[0]
    d = decide(giver, recipient, Ch.GIFT, [], exp)
    assert d.violation and d.experiment_violation and d.action == A.FLAG
    assert (d.from_arm, d.to_arm) == (Arm.TREATMENT, to_arm) and d.contaminates_experiment
    # A HOLDOUT recipient is also a member of the experiment's holdout cohort: that cohort is named.
    assert d.cohort_ids == (["hold"] if to_arm == Arm.HOLDOUT else [])
    assert d.contaminated_cohort_ids == (["hold"] if to_arm == Arm.HOLDOUT else [])


def test_the_experiment_uses_its_holdout_cohorts_policy():
    exp = experiment()  # default policy: gifts blocked, referrals flagged
    giver, recipient = arm_users(exp, Arm.TREATMENT)[0], arm_users(exp, Arm.CONTROL)[0]
    assert decide(giver, recipient, Ch.GIFT, [], exp).action == A.BLOCK
    assert decide(giver, recipient, Ch.REFERRAL, [], exp).action == A.FLAG


@pytest.mark.parametrize("from_arm, to_arm", [(Arm.CONTROL, Arm.TREATMENT), (Arm.TREATMENT, Arm.TREATMENT),
                                              (Arm.CONTROL, Arm.CONTROL), (Arm.HOLDOUT, Arm.CONTROL)])
def test_other_directions_within_the_experiment_are_not_violations(from_arm, to_arm):
    exp = experiment()
    giver = arm_users(exp, from_arm)[0]
    recipient = users(lambda u: u != giver and exp.arm_of(u) == to_arm)[0]
    d = decide(giver, recipient, Ch.GIFT, [], exp)
    assert not d.violation and (d.from_arm, d.to_arm) == (from_arm, to_arm)


def test_before_the_rollout_starts_nobody_is_in_treatment():
    exp = experiment(coverage=None)
    assert {exp.arm_of(f"u{i}") for i in range(300)} == {Arm.HOLDOUT, Arm.NOT_ENROLLED}

"""domain/rollout.py: stage readiness in plain words, and the sweep's decision table (pure, no emulator)."""
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.domain.assignment import Arm, assign_arm
from offerlab.domain.rollout import (
    Decision, Gate, GuardrailBreach, StageFacts, StageRequirements, decide, evaluate,
)

REQ = StageRequirements(min_hours_at_stage=24, min_exposures_per_arm=100)


def facts(**over):
    base = dict(hours_at_stage=30.0, exposures={"CONTROL": 150, "TREATMENT": 140, "HOLDOUT": 20},
                srm_p_value=0.4, stage_percentage=5.0, next_percentage=10.0)
    base.update(over)
    return StageFacts(**base)


def test_a_healthy_stage_is_ready_and_says_why():
    r = evaluate(REQ, facts())
    assert r.ready and r.blocking == []
    assert {c.gate for c in r.checks} == set(Gate)
    assert any("150 control, 140 treatment" in m for m in r.met)
    assert any("The next stage is 10%" in m for m in r.met)


@pytest.mark.parametrize("over, gate, words", [
    (dict(hours_at_stage=3.0), Gate.TIME_AT_STAGE, "another 21.0 hours"),
    (dict(exposures={"CONTROL": 99, "TREATMENT": 300}), Gate.EXPOSURES, "99 control"),
    (dict(srm_p_value=0.0004), Gate.NO_SRM, "not split between the versions"),
    (dict(guardrail_breaches=(GuardrailBreach("Refund Rate", "refund_rate", 0.08, 0.02, "max"),)),
     Gate.NO_GUARDRAIL_VIOLATION, "Guardrail 'Refund Rate' (refund_rate) is 0.08, above its maximum of 0.02"),
    (dict(open_issues=("unauthorised change",)), Gate.NO_OPEN_ISSUES, "unacknowledged: unauthorised change"),
    (dict(next_percentage=None, stage_percentage=50.0), Gate.NEXT_STAGE, "50% is the plan's final stage"),
])
def test_each_unmet_requirement_blocks_in_plain_words(over, gate, words):
    r = evaluate(REQ, facts(**over))
    assert not r.ready and r.failed(gate)
    assert len(r.blocking) == 1 and words in r.blocking[0], r.blocking


def test_srm_exactly_at_the_threshold_passes_and_missing_srm_passes():
    assert evaluate(REQ, facts(srm_p_value=0.001)).ready
    assert evaluate(REQ, facts(srm_p_value=None)).ready


def test_disabled_requirements_are_not_checked():
    req = StageRequirements(min_hours_at_stage=0, min_exposures_per_arm=0, require_no_srm=False,
                            require_no_guardrail_violation=False, require_no_open_issues=False)
    r = evaluate(req, facts(srm_p_value=0.0, open_issues=("x",), exposures={},
                            guardrail_breaches=(GuardrailBreach("k", "m", 1, 0, "max"),)))
    assert r.ready and {c.gate for c in r.checks} == {Gate.TIME_AT_STAGE, Gate.EXPOSURES, Gate.NEXT_STAGE}


def test_negative_time_at_stage_counts_as_zero():
    # A tick older than the stage's entry (a replay, the wall-clock health probe) never progresses.
    r = evaluate(REQ, facts(hours_at_stage=-5.0))
    assert not r.ready and "run for 0.0 hours" in r.blocking[0]


BREACH = dict(guardrail_breaches=(GuardrailBreach("Refund Rate", "refund_rate", 0.08, 0.02, "max"),))


@pytest.mark.parametrize("over, flags, index, expected", [
    ({}, (True, True, True), 2, Decision.PROGRESS),
    ({}, (False, True, True), 2, Decision.NOTHING),                      # ready, but autoProgress off
    (dict(hours_at_stage=1.0), (True, True, True), 2, Decision.NOTHING),  # waiting is not a violation
    (BREACH, (True, True, True), 2, Decision.ROLLBACK),
    (BREACH, (True, True, True), 0, Decision.PAUSE),                      # nothing below the first stage
    (BREACH, (True, True, False), 2, Decision.PAUSE),                     # no rollback: pause
    (BREACH, (True, False, False), 2, Decision.NOTHING),                  # neither: the sweep leaves it
    (BREACH, (True, False, True), 0, Decision.PAUSE),
    (dict(srm_p_value=1e-9), (True, True, True), 2, Decision.PAUSE),     # SRM is not a rollback reason
    (dict(srm_p_value=1e-9), (True, False, True), 2, Decision.NOTHING),
    (dict(open_issues=("alert",)), (True, True, True), 1, Decision.PAUSE),
    (dict(next_percentage=None), (True, True, True), 4, Decision.NOTHING),  # final stage: stays
])
def test_the_sweep_decision_table(over, flags, index, expected):
    auto, pause, rollback = flags
    r = evaluate(REQ, facts(**over))
    assert decide(r, auto_progress=auto, pause_on_violation=pause, rollback_on_failure=rollback,
                  stage_index=index) is expected


@settings(max_examples=60, deadline=None)
@given(stages=st.lists(st.integers(min_value=1, max_value=10_000), min_size=2, max_size=6, unique=True),
       treatment=st.integers(min_value=1, max_value=9_999))
def test_raising_coverage_only_adds_users_and_never_changes_an_arm(stages, treatment):
    """API.md §2, the property the rollout stands on: recomputed with the production hash."""
    salt, holdout_salt = uuid.uuid4().hex, uuid.uuid4().hex
    users = [f"u{i}" for i in range(300)]
    previous: dict[str, Arm] = {}
    for coverage in sorted(s / 100 for s in stages):
        arms = {u: assign_arm(user_id=u, experiment_salt=salt, treatment_percentage=treatment / 100,
                              coverage=coverage, holdout_salt=holdout_salt, holdout_percentage=10)
                for u in users}
        enrolled = {u: a for u, a in arms.items() if a in (Arm.CONTROL, Arm.TREATMENT)}
        assert set(previous) <= set(enrolled)
        assert all(enrolled[u] == a for u, a in previous.items())
        previous = enrolled

"""check_spillover and spillover contamination on the in-memory store: the decision per cohort policy and
per experiment arm, every call recorded as one holdoutSpilloverEvents document, both users' evaluations
recorded, refusals recording nothing, and the trigger's effect (mark_contamination on the recorded event)
marking a flagged recipient contaminated so that health and analyses see it. The Firestore trigger firing
on the emulator, and concurrent calls: tests/integration/test_holdout_spillover.py,
tests/reliability/test_delivery.py.
"""
import uuid

import pytest

from offerlab.domain.assignment import Arm, assign_arm, bucket_of
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from offerlab.domain.types import SpilloverChannel
from offerlab.domain.metrics import Metric
from offerlab.domain.user_rows import UserRow
from offerlab.service import analytics
from offerlab.service import experiments as svc_experiments
from offerlab.service import holdouts as svc
from offerlab.service import spillover
from offerlab.service.spillover import check_spillover
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import ANALYST, BACKEND, PM, buyers, definition, frozen_cohort, refused, running, seed

FLAG_GIFTS = {"gift": "FLAG"}


@pytest.fixture
def store():
    return InMemoryStore()


def pick(pred, n=1):
    tag = uuid.uuid4().hex[:8]
    found = []
    for user_id in (f"sp-{tag}-{i}" for i in range(200_000)):
        if pred(user_id):
            found.append(user_id)
            if len(found) == n:
                return found
    raise AssertionError("no such user among 200,000 candidates")


def inside(cohort):
    return lambda u: bucket_of(cohort.salt, u) < round(cohort.percentage * 100)


def outside(cohort):
    return lambda u: not inside(cohort)(u)


def events_from(store, user_id):
    return [e for e in store.docs("holdoutSpilloverEvents").values() if e["fromUserId"] == user_id]


def trigger(store, result):
    """What the Firestore trigger on holdoutSpilloverEvents runs for the recorded event."""
    return spillover.mark_contamination(store, result["eventId"], store.docs("holdoutSpilloverEvents")[result["eventId"]])


def arm(store, exp_id, cohort, user_id):
    exp = store.experiments.get(exp_id)
    return assign_arm(user_id=user_id, experiment_salt=exp.salt, treatment_percentage=exp.treatment_percentage,
                      coverage=exp.coverage, holdout_salt=cohort.salt, holdout_percentage=cohort.percentage)


def test_a_gift_from_outside_into_the_holdout_is_blocked_and_recorded(store):
    cohort = frozen_cohort(store, 30)
    (giver,) = pick(outside(cohort))
    (recipient,) = pick(inside(cohort))
    result = check_spillover(store, BACKEND, giver, recipient, SpilloverChannel.GIFT, None)
    assert result["violation"] is True and result["action"] == "BLOCK" and cohort.cohort_id in result["cohortIds"]
    (event,) = events_from(store, giver)
    assert event["violation"] is True and event["action"] == "BLOCK" and cohort.cohort_id in event["cohortIds"]
    assert event["toUserId"] == recipient and event["channel"] == "gift" and event["actor"] == "uid:backend"
    assert event["experimentId"] is None and event["contaminatedCohortIds"] == []
    # Both users were evaluated against the cohort (the health report's denominators).
    assignments = store.docs("holdoutAssignments")
    assert assignments[f"{cohort.cohort_id}_{giver}"]["inHoldout"] is False
    assert assignments[f"{cohort.cohort_id}_{recipient}"]["inHoldout"] is True
    # Blocked: the benefit never reached the recipient, nobody is contaminated.
    assert trigger(store, result) == 0 and store.docs("holdoutContaminations") == {}


def test_a_flagged_gift_contaminates_the_recipient_and_shows_in_health(store):
    cohort = frozen_cohort(store, 30, FLAG_GIFTS)
    (giver,) = pick(outside(cohort))
    (recipient,) = pick(inside(cohort))
    result = check_spillover(store, BACKEND, giver, recipient, SpilloverChannel.GIFT, None)
    assert result["violation"] is True and result["action"] == "FLAG"
    assert store.docs("holdoutSpilloverEvents")[result["eventId"]]["contaminatedCohortIds"] == [cohort.cohort_id]
    assert trigger(store, result) == 1
    assert trigger(store, result) == 0  # the trigger delivered twice
    record = store.docs("holdoutContaminations")[f"{cohort.cohort_id}_{recipient}"]
    assert record["spilloverEventId"] == result["eventId"] and record["fromUserId"] == giver
    health = svc.get_holdout_health(store, cohort.cohort_id)
    assert health["contaminatedUsers"] == 1 and health["contaminationRate"] > 0
    assert any("Contamination" in issue for issue in health["issues"]) and health["health"] in ("DEGRADED", "CRITICAL")


def test_no_boundary_crossed_is_allowed_and_still_recorded(store):
    cohort = frozen_cohort(store, 30)
    giver, recipient = pick(inside(cohort), 2)
    result = check_spillover(store, BACKEND, giver, recipient, SpilloverChannel.SHARED_WALLET, None)
    assert cohort.cohort_id not in result["cohortIds"] and result["violation"] is False and result["action"] == "ALLOW"
    (event,) = events_from(store, giver)
    assert event["action"] == result["action"] and event["violation"] == result["violation"]
    assert trigger(store, result) == 0


def test_treatment_to_control_of_an_experiment_is_flagged_and_contaminates_for_the_experiment(store):
    cohort = frozen_cohort(store, 10)  # default policy: referrals FLAG
    eid = running(store, cohort.cohort_id, stages=[100]).experiment_id
    (giver,) = pick(lambda u: arm(store, eid, cohort, u) == Arm.TREATMENT)
    recipients = pick(lambda u: arm(store, eid, cohort, u) == Arm.CONTROL, 4)
    result = check_spillover(store, BACKEND, giver, recipients[0], SpilloverChannel.REFERRAL, eid)
    assert result["violation"] is True and result["action"] == "FLAG" and result["experimentId"] == eid
    assert (result["fromArm"], result["toArm"]) == ("TREATMENT", "CONTROL")
    (event,) = events_from(store, giver)
    assert event["experimentId"] == eid and event["contaminatesExperiment"] is True
    assert trigger(store, result) == 1
    record = store.docs("holdoutContaminations")[f"{eid}_{recipients[0]}"]
    assert record["arm"] == "CONTROL" and record["experimentId"] == eid
    # The reverse direction is no violation.
    back = check_spillover(store, BACKEND, recipients[0], giver, SpilloverChannel.REFERRAL, eid)
    assert (back["fromArm"], back["toArm"]) == ("CONTROL", "TREATMENT") and back["violation"] is False
    assert trigger(store, back) == 0
    # The analysis leaves the contaminated control user out.
    seed(store, eid, buyers("CONTROL", 150, None, "c") + buyers("TREATMENT", 150, None, "t"))
    store.rows[eid][0] = UserRow(recipients[0], "CONTROL", counts={"purchase": 1}, amounts={"purchase": 9.99})
    analysis = analytics.analyze_experiment(store, ANALYST, eid, Metric.ARPU)
    by_type = {a.type: a for a in analysis.bias_adjustments}
    assert by_type["spillover"].by_arm == {"CONTROL": 1, "TREATMENT": 0}


def test_treatment_gift_to_the_experiments_holdout_is_blocked_by_its_cohorts_policy(store):
    cohort = frozen_cohort(store, 20)
    eid = running(store, cohort.cohort_id, stages=[100]).experiment_id
    (giver,) = pick(lambda u: arm(store, eid, cohort, u) == Arm.TREATMENT)
    (recipient,) = pick(lambda u: arm(store, eid, cohort, u) == Arm.HOLDOUT)
    result = check_spillover(store, BACKEND, giver, recipient, SpilloverChannel.GIFT, eid)
    assert result["action"] == "BLOCK" and cohort.cohort_id in result["cohortIds"] and result["toArm"] == "HOLDOUT"


def test_an_unfrozen_holdout_covers_nobody_yet(store):
    """API.md §10: only a FROZEN cohort covers an experiment, so a DRAFT cohort's would-be members are not
    HOLDOUT (nobody is enrolled before the start either) and no boundary is crossed into it."""
    draft = svc.create_holdout_cohort(store, PM, "draft", 20, "", {"gift": "ALLOW"})
    eid = svc_experiments.create_experiment(store, PM, definition(draft.cohort_id)).experiment_id
    (held_out,) = pick(inside(draft))
    (other,) = pick(outside(draft))
    result = check_spillover(store, BACKEND, other, held_out, SpilloverChannel.GIFT, eid)
    assert result["experimentId"] == eid and result["cohortIds"] == []  # not frozen: no active cohort boundary
    assert (result["fromArm"], result["toArm"]) == ("NOT_ENROLLED", "NOT_ENROLLED")
    assert result["violation"] is False


@pytest.mark.parametrize("case", ["self", "unknown experiment", "missing cohort"])
def test_refused_calls_record_nothing(store, case):
    (giver,) = pick(lambda u: True)
    if case == "self":
        err = refused(store, InvalidArgument, lambda: check_spillover(store, BACKEND, giver, giver,
                                                                      SpilloverChannel.REFERRAL, None))
        assert err.value.details["fields"][0]["path"] == "toUserId"
    elif case == "unknown experiment":
        refused(store, NotFound, lambda: check_spillover(store, BACKEND, giver, "someone-else",
                                                         SpilloverChannel.REFERRAL, "no-such-experiment"))
    else:
        cohort = frozen_cohort(store)
        eid = running(store, cohort.cohort_id).experiment_id
        store.db.collection("holdoutCohorts").pop(cohort.cohort_id)
        refused(store, FailedPrecondition, lambda: check_spillover(store, BACKEND, giver, "someone-else",
                                                                   SpilloverChannel.REFERRAL, eid))
    assert events_from(store, giver) == []

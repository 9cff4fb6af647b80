"""check_spillover on the real emulators, with the Firestore trigger (running in the functions emulator)
marking flagged recipients contaminated — for a cohort, and for an experiment's arm — so that the health
report's aggregation counts them.

The decisions per policy and arm, the recorded events, the refusals (nothing recorded) and the trigger's
effect are unit-tested on the in-memory store: tests/unit/test_spillover_use_cases.py; concurrent calls:
tests/reliability/test_delivery.py; over HTTP with roles: tests/e2e/test_holdouts.py."""
import time
import uuid
from datetime import datetime, timedelta, timezone

from google.cloud.firestore_v1.base_query import FieldFilter

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import Arm, assign_arm, bucket_of
from offerlab.domain.types import ExperimentStatus, SpilloverChannel
from offerlab.service import holdouts as svc
from offerlab.service.spillover import check_spillover
from offerlab.store import cohort_cache
from offerlab.store import collections as C
from offerlab.store import holdouts as repo
from offerlab.store.documents import Hypothesis, OfferExperiment
from offerlab.store.firestore_store import firestore_store
from tests.placements import scoped

STORE = firestore_store()  # the store the functions use, on the emulator

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
BACKEND = Caller("backend", None, frozenset({Role.SERVICE}))
FLAG_GIFTS = {"gift": "FLAG"}
TRIGGER_TIMEOUT = 30.0


def frozen_cohort(pct, policy=None):
    cohort = scoped(svc.create_holdout_cohort, STORE, PM, f"spill {uuid.uuid4().hex[:6]}", pct, "", policy)
    return svc.freeze_holdout_cohort(STORE, PM, cohort.cohort_id)


def pick(pred, n=1, apart_from=None):
    """n fresh user ids satisfying pred. With ``apart_from`` (a cohort id), only users outside every
    other active cohort: other tests' cohorts share the emulator, and a recipient inside one of them
    would cross its boundary too (and its policy could be stricter than the one under test)."""
    others = [c for c in cohort_cache.active_cohorts() if c.cohort_id != apart_from] if apart_from else []
    tag = uuid.uuid4().hex[:8]
    found = []
    for user_id in (f"sp-{tag}-{i}" for i in range(200_000)):
        if pred(user_id) and not any(c.contains(user_id) for c in others):
            found.append(user_id)
            if len(found) == n:
                return found
    raise AssertionError("no such user among 200,000 candidates")


def inside(cohort):
    return lambda u: bucket_of(cohort.salt, u) < round(cohort.percentage * 100)


def events_from(firestore_db, user_id):
    query = firestore_db.collection(C.HOLDOUT_SPILLOVER_EVENTS).where(filter=FieldFilter("fromUserId", "==", user_id))
    return [s.to_dict() for s in query.stream()]


def wait_for(predicate, timeout=TRIGGER_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


def test_a_flagged_gift_contaminates_the_recipient_and_shows_in_health(firestore_db):
    cohort = frozen_cohort(30, FLAG_GIFTS)
    (giver,) = pick(lambda u: not inside(cohort)(u))
    (recipient,) = pick(inside(cohort), apart_from=cohort.cohort_id)
    result = check_spillover(STORE, BACKEND, giver, recipient, SpilloverChannel.GIFT, None)
    assert result["violation"] is True and result["action"] == "FLAG"
    record = wait_for(lambda: repo.get_contamination(cohort.cohort_id, recipient))
    assert record is not None, "the trigger did not mark the recipient within 30 s"
    assert record.spillover_event_id == result["eventId"] and record.from_user_id == giver
    health = svc.get_holdout_health(STORE, cohort.cohort_id)
    assert health["contaminatedUsers"] >= 1 and health["contaminationRate"] > 0
    assert any("Contamination" in issue for issue in health["issues"]) and health["health"] in ("DEGRADED", "CRITICAL")


def experiment_doc(firestore_db, cohort, coverage=100.0):
    ref = firestore_db.collection(C.OFFER_EXPERIMENTS).document()
    now = datetime.now(timezone.utc)
    exp = OfferExperiment(
        experiment_id=ref.id, name="spill exp", hypothesis=Hypothesis(statement="h"), kpis=[], guardrails=[],
        holdout_cohort_id=cohort.cohort_id, treatment_percentage=50, offer_type="PROMO", offer_config={"d": 1},
        planned_start_date=now, planned_end_date=now + timedelta(days=30), approvers=[], author="pm@company.com",
        salt=uuid.uuid4().hex, status=ExperimentStatus.RUNNING, coverage=coverage, created_at=now)
    ref.set(exp.to_firestore())
    return exp


def arm(exp, cohort, user_id):
    return assign_arm(user_id=user_id, experiment_salt=exp.salt, treatment_percentage=exp.treatment_percentage,
                      coverage=exp.coverage, holdout_salt=cohort.salt, holdout_percentage=cohort.percentage)


def test_treatment_to_control_of_an_experiment_is_flagged_and_contaminates_for_the_experiment(firestore_db):
    cohort = frozen_cohort(10)  # default policy: referrals FLAG
    exp = experiment_doc(firestore_db, cohort)
    (giver,) = pick(lambda u: arm(exp, cohort, u) == Arm.TREATMENT, apart_from=cohort.cohort_id)
    (recipient,) = pick(lambda u: arm(exp, cohort, u) == Arm.CONTROL, apart_from=cohort.cohort_id)
    result = check_spillover(STORE, BACKEND, giver, recipient, SpilloverChannel.REFERRAL, exp.experiment_id)
    assert result["violation"] is True and result["action"] == "FLAG"
    assert (result["fromArm"], result["toArm"]) == ("TREATMENT", "CONTROL")
    (event,) = events_from(firestore_db, giver)
    assert event["experimentId"] == exp.experiment_id and event["contaminatesExperiment"] is True
    record = wait_for(lambda: repo.get_contamination(exp.experiment_id, recipient))
    assert record is not None and record.arm == "CONTROL" and record.experiment_id == exp.experiment_id
    # The reverse direction is no violation.
    back = check_spillover(STORE, BACKEND, recipient, giver, SpilloverChannel.REFERRAL, exp.experiment_id)
    assert (back["fromArm"], back["toArm"]) == ("CONTROL", "TREATMENT") and back["violation"] is False



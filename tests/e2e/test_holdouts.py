"""The holdout callables over HTTP, as apps and back-office tools call them: roles (API.md §1), the
wire shapes (§3) and the error codes of bad input (§9), each refusal writing nothing."""
import time
import uuid

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from offerlab.domain.assignment import bucket_of, threshold
from offerlab.store import cohort_cache
from offerlab.store import collections as C
from offerlab_client import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied


@pytest.fixture(scope="module")
def cohort(clients):
    pm = clients.experimenter()
    draft = pm.create_holdout_cohort(name=f"e2e {uuid.uuid4().hex[:6]}", percentage=50)
    frozen = pm.freeze_holdout_cohort(draft["cohortId"])
    time.sleep(cohort_cache.COHORT_TTL_SECONDS + 1)  # every warm instance now counts it (docs/holdouts.md)
    return frozen


def member(cohort, inside=True):
    tag = uuid.uuid4().hex[:8]
    limit = threshold(cohort["percentage"])
    return next(u for u in (f"e2e-{tag}-{i}" for i in range(1000)) if (bucket_of(cohort["salt"], u) < limit) == inside)


def test_an_end_user_asks_about_themselves_only(clients, cohort):
    user = member(cohort)
    mine = clients.end_user(user).is_user_in_holdout()
    assert mine["userId"] == user and mine["inHoldout"] is True and cohort["cohortId"] in mine["cohortIds"]
    assert clients.end_user(user).is_user_in_holdout(user)["cohortIds"] == mine["cohortIds"]
    with pytest.raises(PermissionDenied):
        clients.end_user(user).is_user_in_holdout("somebody-else")
    with pytest.raises(PermissionDenied):
        clients.experimenter().is_user_in_holdout("somebody-else")


def test_the_service_role_asks_about_anyone(clients, cohort):
    outsider = member(cohort, inside=False)
    answer = clients.service().is_user_in_holdout(outsider)
    assert answer["userId"] == outsider and cohort["cohortId"] not in answer["cohortIds"]
    assert clients.admin().is_user_in_holdout(outsider) == answer


def test_check_spillover_is_for_the_service_role(clients, cohort, firestore_db):
    giver, recipient = member(cohort, inside=False), member(cohort)
    for who in (clients.end_user(giver), clients.experimenter(), clients.analyst()):
        with pytest.raises(PermissionDenied):
            who.check_spillover(giver, recipient, "gift")
    result = clients.service().check_spillover(giver, recipient, "gift")
    assert result["violation"] is True and result["action"] == "BLOCK" and result["reason"]
    assert set(result) >= {"violation", "action", "reason", "eventId", "cohortIds"}
    events = firestore_db.collection(C.HOLDOUT_SPILLOVER_EVENTS).where(filter=FieldFilter("fromUserId", "==", giver))
    assert len(list(events.stream())) == 1  # the refused calls recorded nothing


@pytest.mark.parametrize("payload, path", [
    ({"toUserId": "same"}, "toUserId"),
    ({"channel": "email"}, "channel"),
    ({"fromUserId": "a/b"}, "fromUserId"),
])
def test_bad_spillover_input_is_invalid_and_recorded_nowhere(clients, firestore_db, payload, path):
    giver = f"bad-{uuid.uuid4().hex[:8]}"
    body = {"fromUserId": giver, "toUserId": f"{giver}-to", "channel": "gift", **payload}
    if payload.get("toUserId") == "same":
        body["toUserId"] = giver
    with pytest.raises(InvalidArgument) as err:
        clients.service().call("check_spillover", body)
    assert path in err.value.field_paths
    events = firestore_db.collection(C.HOLDOUT_SPILLOVER_EVENTS).where(filter=FieldFilter("fromUserId", "==", giver))
    assert list(events.stream()) == []


def test_unknown_experiment_is_not_found(clients):
    with pytest.raises(NotFound):
        clients.service().check_spillover("a-user", "b-user", "referral", experiment_id="no-such-experiment")


def test_health_roles_and_shape(clients, cohort):
    for who in (clients.experimenter(), clients.analyst(), clients.admin()):
        health = who.get_holdout_health(cohort["cohortId"])
        assert set(health) >= {"cohortId", "frozen", "assignedUsers", "contaminatedUsers", "contaminationRate",
                               "expectedShare", "observedShare", "srmPValue", "health", "issues"}
        assert health["frozen"] is True and health["expectedShare"] == 0.5
        assert health["health"] in ("HEALTHY", "DEGRADED", "CRITICAL")
    for who in (clients.end_user("u-1"), clients.service(), clients.approver()):
        with pytest.raises(PermissionDenied):
            who.get_holdout_health(cohort["cohortId"])
    with pytest.raises(NotFound):
        clients.analyst().get_holdout_health("no-such-cohort")


@pytest.mark.parametrize("percentage", [0, -1, 50.01, 12.345])
def test_percentage_outside_the_range_is_invalid(clients, percentage):
    with pytest.raises(InvalidArgument) as err:
        clients.experimenter().create_holdout_cohort(name="bad pct", percentage=percentage)
    assert err.value.field_paths == ["percentage"]


def test_edits_freezes_and_retirement_follow_the_lifecycle_and_roles(clients, firestore_db):
    pm, admin = clients.experimenter(), clients.admin()
    draft = pm.create_holdout_cohort(name="lifecycle", percentage=5)
    edited = pm.update_holdout_cohort(draft["cohortId"], percentage=7.5, spillover_policy={"referral": "BLOCK"})
    assert edited["percentage"] == 7.5 and edited["salt"] == draft["salt"]
    assert edited["spilloverPolicy"] == {"referral": "BLOCK", "gift": "BLOCK", "shared_wallet": "BLOCK"}
    with pytest.raises(InvalidArgument):
        pm.update_holdout_cohort(draft["cohortId"], percentage=60)
    with pytest.raises(FailedPrecondition):
        admin.retire_holdout_cohort(draft["cohortId"], reason="not frozen yet")
    frozen = pm.freeze_holdout_cohort(draft["cohortId"])
    stored = firestore_db.collection(C.HOLDOUT_COHORTS).document(draft["cohortId"]).get().to_dict()
    with pytest.raises(FailedPrecondition):
        pm.freeze_holdout_cohort(draft["cohortId"])
    with pytest.raises(FailedPrecondition):
        pm.update_holdout_cohort(draft["cohortId"], name="renamed")
    for who in (pm, clients.analyst(), clients.service()):
        with pytest.raises(PermissionDenied):
            who.retire_holdout_cohort(draft["cohortId"], reason="not mine to retire")
    assert firestore_db.collection(C.HOLDOUT_COHORTS).document(draft["cohortId"]).get().to_dict() == stored
    with pytest.raises(InvalidArgument):
        admin.call("retire_holdout_cohort", {"cohortId": draft["cohortId"]})  # a reason is required
    retired = admin.retire_holdout_cohort(draft["cohortId"], reason="programme ended")
    assert retired["status"] == "RETIRED" and retired["salt"] == frozen["salt"]
    assert retired["percentage"] == frozen["percentage"] and retired["retiredBy"] == "admin@company.com"
    health = clients.analyst().get_holdout_health(draft["cohortId"])
    assert health["status"] == "RETIRED" and any("retired" in issue for issue in health["issues"])

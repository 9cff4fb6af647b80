"""get_offer over HTTP (API.md §2, §3): 2,000 users get exactly the assignment the hash spec gives when
recomputed here from the published salts; the first exposure of each user is recorded once."""
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from offerlab_client import NotFound, PermissionDenied
from tests.e2e.test_experiment_lifecycle import running_experiment


def bucket(salt, unit):  # API.md §2, written out again: the test must not trust the code under test
    return int.from_bytes(sha256(f"{salt}:{unit}".encode()).digest()[:8], "big") % 10000


def expected_arm(user, exp, cohort):
    if bucket(cohort["salt"], user) < round(cohort["percentage"] * 100):
        return "HOLDOUT"
    if bucket(exp["salt"] + ":coverage", user) >= round(exp["coverage"] * 100):
        return "NOT_ENROLLED"
    return "TREATMENT" if bucket(exp["salt"] + ":arm", user) < round(exp["treatmentPercentage"] * 100) else "CONTROL"


def exposures_of(firestore_db, experiment_id):
    query = firestore_db.collection("experimentExposures").where(filter=FieldFilter("experimentId", "==", experiment_id))
    return {d.get("userId"): d.to_dict() for d in query.stream()}


def test_two_thousand_users_match_the_hash_spec(clients, firestore_db):
    exp, cohort = running_experiment(clients, stages=(40, 80), treatment=30, holdout=10)
    eid = exp["experimentId"]
    users = [f"u-{uuid.uuid4().hex[:10]}" for _ in range(2000)] + ["ü-ß-用户"]

    def ask(user):
        return user, clients.end_user(user).get_offer(experiment_id=eid)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(pool.map(ask, users))
    arms = {}
    for user, answer in answers.items():
        want = expected_arm(user, exp, cohort)
        assert answer["arm"] == want, user
        assert answer["userId"] == user and answer["experimentId"] == eid
        assert answer["offerConfig"] == (exp["offerConfig"] if want == "TREATMENT" else exp["controlConfig"])
        arms[want] = arms.get(want, 0) + 1
    assert set(arms) == {"HOLDOUT", "NOT_ENROLLED", "CONTROL", "TREATMENT"}
    # Shares near 10% holdout, 40% of the rest enrolled, 30% of those treated (loose: 2,000 users).
    assert 120 < arms["HOLDOUT"] < 290 and 560 < arms["CONTROL"] + arms["TREATMENT"] < 880

    exposed = exposures_of(firestore_db, eid)
    assert set(exposed) == {u for u, a in answers.items() if a["arm"] != "NOT_ENROLLED"}
    for user, doc in exposed.items():
        assert doc["arm"] == answers[user]["arm"] and doc["coverage"] == 40

    # Asking again changes nothing: same answers, same first exposure.
    again = list(users[:50])
    with ThreadPoolExecutor(max_workers=8) as pool:
        second = dict(pool.map(ask, again))
    assert all(second[u] == answers[u] for u in again)
    later = exposures_of(firestore_db, eid)
    assert all(later[u]["firstExposedAt"] == exposed[u]["firstExposedAt"] for u in again if u in exposed)


def test_who_may_ask_for_whom(clients):
    exp, _ = running_experiment(clients, stages=(100,))
    eid = exp["experimentId"]
    with pytest.raises(PermissionDenied):
        clients.end_user("alice").get_offer(user_id="bob", experiment_id=eid)
    assert clients.end_user("alice").get_offer(user_id="alice", experiment_id=eid)["userId"] == "alice"
    assert clients.end_user("alice").get_offer(experiment_id=eid)["userId"] == "alice"
    assert clients.service().get_offer(user_id="bob", experiment_id=eid)["userId"] == "bob"
    with pytest.raises(NotFound):
        clients.service().get_offer(user_id="bob", experiment_id=f"nope-{uuid.uuid4().hex}")


def _poll(fn, until, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_a_paused_experiment_serves_the_status_quo_within_the_cache_ttl(clients, firestore_db):
    exp, cohort = running_experiment(clients, stages=(100,), treatment=99.99, holdout=1)
    eid = exp["experimentId"]
    treated = next(u for u in (f"p-{i}" for i in range(1000)) if expected_arm(u, exp, cohort) == "TREATMENT")
    svc_client = clients.service()
    assert svc_client.get_offer(user_id=treated, experiment_id=eid)["offerConfig"] == exp["offerConfig"]
    clients.experimenter().pause_experiment(eid, "hold on")
    fresh_user = next(u for u in (f"q-{i}" for i in range(1000)) if expected_arm(u, exp, cohort) == "TREATMENT")
    paused = _poll(lambda: svc_client.get_offer(user_id=treated, experiment_id=eid), lambda a: a["arm"] == "NOT_ENROLLED")
    assert paused == {"userId": treated, "arm": "NOT_ENROLLED", "experimentId": eid, "offerConfig": exp["controlConfig"],
                      "placement": exp["placement"], "reason": "not_running"}
    svc_client.get_offer(user_id=fresh_user, experiment_id=eid)
    assert fresh_user not in exposures_of(firestore_db, eid)  # not running: nobody is exposed
    clients.experimenter().resume_experiment(eid)
    resumed = _poll(lambda: svc_client.get_offer(user_id=treated, experiment_id=eid), lambda a: a["arm"] == "TREATMENT")
    assert resumed["offerConfig"] == exp["offerConfig"]


def test_without_experiment_id_the_experiments_placement_answers(clients):
    exp, cohort = running_experiment(clients, stages=(100,))
    placed = _poll(lambda: clients.end_user("zed").get_placement_offer(exp["placement"]),
                   lambda a: a["experimentId"] == exp["experimentId"])
    assert placed["arm"] == expected_arm("zed", exp, cohort) and placed["placement"] == exp["placement"]
    # Neither placement nor experimentId: the "default" placement, where nothing runs in this module.
    assert clients.end_user("zed").get_offer() == {"userId": "zed", "arm": "NOT_ENROLLED", "experimentId": None,
                                                   "offerConfig": None, "placement": "default",
                                                   "reason": "not_in_traffic"}

"""A program of experiments over HTTP (API.md §10): a global and a scoped cohort, three experiments in two
placements, 1,200 users asked over the wire for both placements: every answer is the one the published
hashes give, no holdout member ever gets a treatment or a shipped offer, nobody is in two experiments of a
placement. Then a ship through four-eyes approval changes exactly the non-holdout users' offer, an unship
reverts it, and the audit report shows it; bad input is refused with the API.md §9 codes."""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256

import pytest

from offerlab.store import collections as C
from offerlab_client import FailedPrecondition, InvalidArgument, PermissionDenied
from tests.e2e.test_experiment_lifecycle import experiment_body

USERS = [f"e2e-{i}" for i in range(1200)] + ["Ünïcødé-用户"]  # an empty id is no user id on the wire
TTL = 20  # seconds to wait for every warm instance's caches (store/experiment_cache.py: 2 x 5 s, plus slack)


def bucket(salt, unit):  # API.md §2, written out again
    return int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8], "big") % 10000


def member(cohort, user):
    return bucket(cohort["salt"], user) < round(cohort["percentage"] * 100)


def expected(user, placement, experiments, cohorts):
    """(experimentId, arm, reason) from the published hashes (docs/program.md §1–§2)."""
    layer = bucket(f"layer:{placement}", user)
    holder = next((e for e in experiments if e["placement"] == placement and e["status"] == "RUNNING"
                   and any(s["start"] <= layer < s["end"] for s in e["trafficSegments"])), None)
    if holder is None:
        return None, "NOT_ENROLLED", "not_in_traffic"
    if any(member(cohorts[c], user) for c in holder["coveringCohortIds"]):
        return holder["experimentId"], "HOLDOUT", "holdout"
    if bucket(f"{holder['salt']}:coverage", user) >= round(holder["coverage"] * 100):
        return holder["experimentId"], "NOT_ENROLLED", "not_covered"
    arm = "TREATMENT" if bucket(f"{holder['salt']}:arm", user) < round(holder["treatmentPercentage"] * 100) else "CONTROL"
    return holder["experimentId"], arm, None


def launch(clients, cohort_id, placement, **over):
    pm = clients.experimenter()
    exp = pm.call("create_experiment", experiment_body(cohort_id, placement=placement, **over))
    pm.create_rollout_plan(exp["experimentId"], stages=[100])
    pm.submit_for_approval(exp["experimentId"])
    clients.approver("ceo").approve_experiment(exp["experimentId"])
    clients.approver("cfo").approve_experiment(exp["experimentId"])
    return pm.start_experiment(exp["experimentId"])


def ask_all(clients, placement):
    service = clients.service()
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(lambda u: (u, service.get_placement_offer(placement, user_id=u)), USERS))


def poll(fn, until, timeout=TTL):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_a_program_over_http_holds_out_ships_and_unships(clients, firestore_db):
    pm, admin, analyst = clients.experimenter(), clients.admin(), clients.analyst()
    pw, st = f"paywall-{uuid.uuid4().hex[:6]}", "default"
    glob = pm.create_holdout_cohort(name=f"global {uuid.uuid4().hex[:4]}", percentage=5)
    glob = pm.freeze_holdout_cohort(glob["cohortId"])
    scoped = pm.create_scoped_holdout_cohort(name="paywall holdout", percentage=10, placements=[pw])
    scoped = pm.freeze_holdout_cohort(scoped["cohortId"])
    cohorts = {c["cohortId"]: c for c in (glob, scoped)}
    a = launch(clients, scoped["cohortId"], pw, trafficPercentage=50)
    b = launch(clients, glob["cohortId"], pw, trafficPercentage=40, treatmentPercentage=70)
    c = launch(clients, glob["cohortId"], st, offerType="TRIAL", offerConfig={"trialDays": 14},
               controlConfig={"trialDays": 7})
    assert set(a["coveringCohortIds"]) == {glob["cohortId"], scoped["cohortId"]} and c["coveringCohortIds"] == [glob["cohortId"]]
    assert [(s["start"], s["end"]) for s in b["trafficSegments"]] == [(5000, 9000)]
    # A third experiment that does not fit beside a and b is refused with placement_capacity, writing nothing.
    pm_ = clients.experimenter()
    extra = pm_.call("create_experiment", experiment_body(glob["cohortId"], placement=pw, trafficPercentage=20))
    pm_.create_rollout_plan(extra["experimentId"], stages=[100])
    pm_.submit_for_approval(extra["experimentId"])
    clients.approver("ceo").approve_experiment(extra["experimentId"])
    clients.approver("cfo").approve_experiment(extra["experimentId"])
    with pytest.raises(FailedPrecondition) as err:
        pm_.start_experiment(extra["experimentId"])
    assert [i["item"] for i in err.value.details["checklist"] if not i["ok"]] == ["placement_capacity"]

    experiments = [a, b, c]
    answers = {p: ask_all(clients, p) for p in (pw, st)}
    enrolled = {}
    for placement, got in answers.items():
        for user, answer in got.items():
            eid, arm, reason = expected(user, placement, experiments, cohorts)
            assert (answer["experimentId"], answer["arm"], answer.get("reason")) == (eid, arm, reason), (user, placement)
            assert answer["placement"] == placement
            if any(member(co, user) for co in cohorts.values()
                   if eid and co["cohortId"] in next(e for e in experiments if e["experimentId"] == eid)["coveringCohortIds"]):
                assert answer["arm"] not in ("TREATMENT", "SHIPPED")
            if eid:
                enrolled.setdefault(placement, {})[user] = eid
    shares = {e["experimentId"]: sum(1 for u in enrolled[pw].values() if u == e["experimentId"]) / len(USERS) for e in (a, b)}
    n = len(USERS)
    assert abs(shares[a["experimentId"]] - 0.5) < 4 * (0.25 / n) ** 0.5
    assert abs(shares[b["experimentId"]] - 0.4) < 4 * (0.24 / n) ** 0.5
    health = analyst.get_holdout_health(glob["cohortId"])
    assert health["exposedUsers"] > 0 and health["contaminatedUsers"] == 0 and health["health"] == "HEALTHY"
    assert analyst.get_holdout_health(scoped["cohortId"])["contaminatedUsers"] == 0

    # Ship c's TREATMENT: refused while RUNNING; after completion through four-eyes approval.
    cid = c["experimentId"]
    with pytest.raises(FailedPrecondition):
        pm.ship_experiment(cid, "TREATMENT", "too early")
    pm.complete_experiment(cid)
    with pytest.raises(InvalidArgument):
        pm.ship_experiment(cid, "HOLDOUT", "no such arm")
    with pytest.raises(FailedPrecondition):
        admin.unship_experiment(cid, "nothing shipped")
    pending = pm.ship_experiment(cid, "TREATMENT", "14-day trials won")
    assert pending["status"] == "SHIP_PENDING_APPROVAL"
    with pytest.raises(PermissionDenied):
        pm.approve_experiment(cid)  # the author never approves
    clients.approver("ceo").approve_experiment(cid, comment="yes")
    shipped = clients.approver("cfo").approve_experiment(cid)
    assert shipped["status"] == "SHIPPED" and shipped["ship"]["coveringCohortIds"] == [glob["cohortId"]]
    service = clients.service()
    probe = next(u for u in USERS if not member(glob, u))
    poll(lambda: service.get_placement_offer(st, user_id=probe), lambda x: x["arm"] == "SHIPPED")
    after = ask_all(clients, st)
    for user, answer in after.items():
        if member(glob, user):  # holdout users keep the status quo
            assert answer == {"userId": user, "arm": "HOLDOUT", "experimentId": cid, "offerConfig": {"trialDays": 7},
                              "placement": st, "reason": "holdout"}
        else:
            assert answer == {"userId": user, "arm": "SHIPPED", "experimentId": cid, "offerConfig": {"trialDays": 14},
                              "placement": st, "reason": "shipped"}
    changed = [u for u in USERS if after[u]["offerConfig"] != answers[st][u]["offerConfig"]]
    assert set(changed) <= {u for u in USERS if not member(glob, u)}
    assert set(changed) == {u for u in USERS if not member(glob, u) and answers[st][u]["arm"] != "TREATMENT"}
    assert analyst.get_holdout_health(glob["cohortId"])["contaminatedUsers"] == 0

    # The audit report shows the ship; unship (admin only) reverts everyone.
    report = poll(lambda: analyst.get_audit_report(cid), lambda r: any(s["eventType"] == "EXPERIMENT_SHIPPED"
                                                                     for s in r.get("shipping", [])), timeout=90)
    events = [s["eventType"] for s in report["shipping"]]
    assert events == ["EXPERIMENT_SHIP_REQUESTED", "EXPERIMENT_SHIP_APPROVAL_RECORDED", "EXPERIMENT_SHIPPED"]
    with pytest.raises(PermissionDenied):
        pm.unship_experiment(cid, "not mine to undo")
    assert admin.unship_experiment(cid, "regulator asked")["status"] == "COMPLETED"
    poll(lambda: service.get_placement_offer(st, user_id=probe), lambda x: x["arm"] == "NOT_ENROLLED")
    reverted = ask_all(clients, st)
    assert {x["arm"] for x in reverted.values()} == {"NOT_ENROLLED"} and {x["offerConfig"] for x in reverted.values()} == {None}

    # The holdout read-out: a DRAFT cohort is refused; a frozen one stores a read-out.
    draft = pm.create_holdout_cohort(name="draft", percentage=5)
    with pytest.raises(FailedPrecondition):
        analyst.analyze_holdout(draft["cohortId"], "net_ltv")
    with pytest.raises(InvalidArgument):
        pm.create_scoped_holdout_cohort(name="bad", percentage=5, offer_types=["LOTTERY"])
    readout = analyst.analyze_holdout(glob["cohortId"], "net_ltv")
    assert readout["cohortId"] == glob["cohortId"] and readout["holdoutUsers"] > 0 and readout["comparisonUsers"] > 0
    stored = firestore_db.collection(C.EXPERIMENT_ANALYSES).document(readout["analysisId"]).get().to_dict()
    assert stored["kind"] == "HOLDOUT"

"""Holdout cohort use cases on the in-memory store: the lifecycle (edit, freeze, retire; every refusal
writes nothing), membership and its assignment records (written once, in or out), the health report,
and the contamination effect the spillover trigger runs (once per user, redeliveries and poison events
without effect). The aggregation counts, the warm-instance LRU and the trigger itself run on the
emulators: tests/integration/test_holdouts.py, test_holdout_spillover.py; over HTTP with roles:
tests/e2e/test_holdouts.py.
"""
import uuid
from datetime import datetime, timezone

import pytest

from offerlab.domain.actors import Caller
from offerlab.domain.assignment import bucket_of
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from offerlab.domain.types import SpilloverAction, SpilloverChannel
from offerlab.service import experiments as svc_experiments
from offerlab.service import holdouts as svc
from offerlab.service import spillover
from offerlab.store.documents import HoldoutSpilloverEvent
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import ADMIN, BACKEND, PM, frozen_cohort, refused, running, unchanged


@pytest.fixture
def store():
    return InMemoryStore()


def fresh_users(n):
    tag = uuid.uuid4().hex[:8]
    return [f"it-{tag}-{i}" for i in range(n)]


def raw(store, collection, doc_id):
    return store.docs(collection).get(doc_id)


# --- lifecycle ---------------------------------------------------------------------------------------------

def test_creation_writes_a_draft_at_version_1(store):
    cohort = svc.create_holdout_cohort(store, PM, "new", 10, "d", {"gift": "FLAG"})
    doc = raw(store, "holdoutCohorts", cohort.cohort_id)
    assert doc["status"] == "DRAFT" and doc["version"] == 1 and doc["lastChange"]["action"] == "COHORT_CREATED"
    assert doc["createdBy"] == "pm@company.com" and len(doc["salt"]) == 32
    assert doc["spilloverPolicy"]["gift"] == "FLAG" and doc["spilloverPolicy"]["referral"] == "FLAG"  # merged on defaults


def test_a_draft_is_editable_until_frozen_then_every_change_is_refused(store):
    draft = svc.create_holdout_cohort(store, PM, "edit me", 10, "", None)
    edited = svc.update_holdout_cohort(store, PM, draft.cohort_id, {
        "percentage": 12.5, "description": "d2", "spillover_policy": {SpilloverChannel.REFERRAL: SpilloverAction.ALLOW}})
    assert edited.percentage == 12.5 and edited.salt == draft.salt and edited.version == 2
    assert edited.spillover_policy[SpilloverChannel.GIFT] == SpilloverAction.BLOCK  # merged, not replaced
    assert edited.spillover_policy[SpilloverChannel.REFERRAL] == SpilloverAction.ALLOW
    assert raw(store, "holdoutCohorts", draft.cohort_id)["lastChange"]["action"] == "COHORT_UPDATED"
    resets = store.holdout_records.cache_resets
    svc.freeze_holdout_cohort(store, PM, draft.cohort_id)
    assert store.holdout_records.cache_resets == resets + 1  # this instance counts the cohort at once
    refused(store, FailedPrecondition, lambda: svc.update_holdout_cohort(store, PM, draft.cohort_id, {"percentage": 20}))
    refused(store, FailedPrecondition, lambda: svc.freeze_holdout_cohort(store, PM, draft.cohort_id))
    after = raw(store, "holdoutCohorts", draft.cohort_id)
    assert after["status"] == "FROZEN" and after["version"] == 3 and after["lastChange"]["action"] == "COHORT_FROZEN"
    assert after["frozenBy"] == "pm@company.com" and after["frozenAt"] is not None


def test_an_empty_edit_is_invalid_and_writes_nothing(store):
    draft = svc.create_holdout_cohort(store, PM, "empty edit", 10, "", None)
    refused(store, InvalidArgument, lambda: svc.update_holdout_cohort(store, PM, draft.cohort_id, {}))


def test_unknown_cohorts_are_not_found_and_nothing_is_written(store):
    for action in (lambda: svc.freeze_holdout_cohort(store, PM, "no-such-cohort"),
                   lambda: svc.update_holdout_cohort(store, PM, "no-such-cohort", {"name": "x"}),
                   lambda: svc.retire_holdout_cohort(store, ADMIN, "no-such-cohort", "r"),
                   lambda: svc.get_holdout_health(store, "no-such-cohort")):
        refused(store, NotFound, action)


def test_retiring_keeps_the_definition_and_stops_counting_the_cohort(store):
    cohort = frozen_cohort(store, pct=50)
    member = next(u for u in fresh_users(50) if bucket_of(cohort.salt, u) < 5000)
    assert cohort.cohort_id in svc.is_user_in_holdout(store, BACKEND, member)["cohortIds"]
    before = raw(store, "holdoutCohorts", cohort.cohort_id)
    resets = store.holdout_records.cache_resets
    retired = svc.retire_holdout_cohort(store, ADMIN, cohort.cohort_id, "programme ended")
    assert store.holdout_records.cache_resets == resets + 1
    after = raw(store, "holdoutCohorts", cohort.cohort_id)
    definition = ("cohortId", "name", "description", "percentage", "salt", "spilloverPolicy", "frozenAt", "frozenBy",
                  "createdAt", "createdBy")
    assert {k: after[k] for k in definition} == {k: before[k] for k in definition}
    assert after["status"] == "RETIRED" and after["retiredBy"] == "admin@company.com"
    assert after["retirementReason"] == "programme ended" and after["lastChange"]["action"] == "COHORT_RETIRED"
    assert retired.version == before["version"] + 1
    assert cohort.cohort_id not in svc.is_user_in_holdout(store, BACKEND, member)["cohortIds"]
    refused(store, FailedPrecondition, lambda: svc.retire_holdout_cohort(store, ADMIN, cohort.cohort_id, "again"))
    refused(store, FailedPrecondition, lambda: svc.update_holdout_cohort(store, PM, cohort.cohort_id, {"name": "revived"}))
    refused(store, FailedPrecondition, lambda: svc.freeze_holdout_cohort(store, PM, cohort.cohort_id))


def test_a_draft_or_the_holdout_of_a_running_or_paused_experiment_cannot_be_retired(store):
    draft = svc.create_holdout_cohort(store, PM, "draft", 5, "", None)
    refused(store, FailedPrecondition, lambda: svc.retire_holdout_cohort(store, ADMIN, draft.cohort_id, "r"))
    cohort = frozen_cohort(store)
    exp = running(store, cohort.cohort_id)
    svc_experiments.pause_experiment(store, PM, exp.experiment_id, "held")
    err = refused(store, FailedPrecondition, lambda: svc.retire_holdout_cohort(store, ADMIN, cohort.cohort_id, "r"))
    assert err.value.details == {"experimentIds": [exp.experiment_id]}
    assert raw(store, "holdoutCohorts", cohort.cohort_id)["status"] == "FROZEN"
    svc_experiments.kill_experiment(store, ADMIN, exp.experiment_id, "over")  # ended: no longer holds it
    assert svc.retire_holdout_cohort(store, ADMIN, cohort.cohort_id, "r").status.value == "RETIRED"


# --- membership and its assignment records ------------------------------------------------------------------

def test_each_users_assignment_is_recorded_once_in_or_out(store):
    cohort = frozen_cohort(store, pct=30)
    users = fresh_users(40)
    for u in users:
        answer = svc.is_user_in_holdout(store, BACKEND, u)
        assert (cohort.cohort_id in answer["cohortIds"]) == (bucket_of(cohort.salt, u) < 3000)
        assert answer["inHoldout"] == bool(answer["cohortIds"]) and answer["userId"] == u
    first = {u: raw(store, "holdoutAssignments", f"{cohort.cohort_id}_{u}") for u in users}
    for u, doc in first.items():
        assert doc["inHoldout"] == (bucket_of(cohort.salt, u) < 3000) and doc["bucket"] == bucket_of(cohort.salt, u)
    # Asked again: the same answers, the records untouched.
    for u in users:
        answer = unchanged(store, lambda: svc.is_user_in_holdout(store, BACKEND, u))
        assert (cohort.cohort_id in answer["cohortIds"]) == first[u]["inHoldout"]
    health = svc.get_holdout_health(store, cohort.cohort_id)
    assert health["evaluatedUsers"] == 40 and health["assignedUsers"] == sum(d["inHoldout"] for d in first.values())
    assert health["observedShare"] == health["assignedUsers"] / 40 and health["expectedShare"] == 0.3


def test_a_user_asks_only_about_themselves_and_a_bad_id_is_refused(store):
    frozen_cohort(store)
    user = Caller("end-user-1", None, frozenset())
    answer = svc.is_user_in_holdout(store, user, None)
    assert answer["userId"] == "end-user-1"
    assert svc.is_user_in_holdout(store, user, "end-user-1")["userId"] == "end-user-1"
    refused(store, PermissionDenied, lambda: svc.is_user_in_holdout(store, user, "someone-else"))
    refused(store, InvalidArgument, lambda: svc.is_user_in_holdout(store, Caller("a/b", None, frozenset()), None))


def test_a_draft_cohort_counts_nobody(store):
    draft = svc.create_holdout_cohort(store, PM, "not yet", 50, "", None)
    answer = svc.is_user_in_holdout(store, BACKEND, "someone")
    assert draft.cohort_id not in answer["cohortIds"] and answer["inHoldout"] is False
    assert store.docs("holdoutAssignments") == {}


# --- health --------------------------------------------------------------------------------------------

def test_health_of_a_draft_reports_not_frozen(store):
    draft = svc.create_holdout_cohort(store, PM, "draft health", 10, "", None)
    health = unchanged(store, lambda: svc.get_holdout_health(store, draft.cohort_id))
    assert health["frozen"] is False and health["health"] == "DEGRADED" and health["evaluatedUsers"] == 0
    assert health["observedShare"] is None and health["srmPValue"] is None and health["expectedShare"] == 0.1


def test_health_flags_a_share_far_from_the_configured_one(store):
    cohort = frozen_cohort(store, pct=10)
    docs = store.db.collection("holdoutAssignments")
    for i in range(1000):  # 30 % recorded inside a 10 % cohort: assignment or recording is broken
        docs[f"{cohort.cohort_id}_u{i}"] = {"cohortId": cohort.cohort_id, "userId": f"u{i}", "inHoldout": i < 300,
                                            "bucket": 0, "assignedAt": datetime.now(timezone.utc)}
    health = svc.get_holdout_health(store, cohort.cohort_id)
    assert health["srmPValue"] < 1e-6 and health["health"] == "CRITICAL"
    assert any("Sample-ratio" in issue for issue in health["issues"])


# --- the contamination effect (what the trigger runs) ---------------------------------------------------------

def flagged_event(cohort_id, recipient, action=SpilloverAction.FLAG, contaminated=True):
    return HoldoutSpilloverEvent(
        from_user_id="giver", to_user_id=recipient, channel=SpilloverChannel.REFERRAL, violation=True,
        action=action, reason="r", cohort_ids=[cohort_id], actor="test", recorded_at=datetime.now(timezone.utc),
        contaminated_cohort_ids=[cohort_id] if contaminated else [])


def test_a_flagged_event_contaminates_once_even_when_redelivered(store):
    cohort = frozen_cohort(store, pct=50)
    recipient = next(u for u in fresh_users(50) if bucket_of(cohort.salt, u) < 5000)
    svc.is_user_in_holdout(store, BACKEND, recipient)
    event = flagged_event(cohort.cohort_id, recipient)
    event_id = f"evt-{uuid.uuid4().hex}"
    before = svc.get_holdout_health(store, cohort.cohort_id)["contaminatedUsers"]
    assert spillover.mark_contamination(store, event_id, event.to_firestore()) == 1
    assert unchanged(store, lambda: spillover.mark_contamination(store, event_id, event.to_firestore())) == 0  # redelivery
    second = f"{event_id}-2"
    assert spillover.mark_contamination(store, second, event.to_firestore()) == 0  # already contaminated: kept as it was
    record = store.docs("holdoutContaminations")[f"{cohort.cohort_id}_{recipient}"]
    assert record["spilloverEventId"] == event_id and record["channel"] == "referral" and record["fromUserId"] == "giver"
    health = svc.get_holdout_health(store, cohort.cohort_id)
    assert health["contaminatedUsers"] == before + 1 and health["contaminationRate"] == 1.0
    assert health["health"] == "CRITICAL" and any("Contamination" in i for i in health["issues"])


def test_a_malformed_event_is_dropped_without_effect(store):
    for data in ({"toUserId": 3}, None, {}):
        assert unchanged(store, lambda: spillover.mark_contamination(store, f"evt-{uuid.uuid4().hex}", data)) == 0
    assert store.docs("processedEvents") == {}  # dropped, not marked: nothing to redeliver into


def test_blocked_and_allowed_events_contaminate_nobody(store):
    cohort = frozen_cohort(store, pct=50)
    recipient = next(u for u in fresh_users(50) if bucket_of(cohort.salt, u) < 5000)
    for action in (SpilloverAction.BLOCK, SpilloverAction.ALLOW):
        event = flagged_event(cohort.cohort_id, recipient, action, contaminated=False)
        assert unchanged(store, lambda: spillover.mark_contamination(
            store, f"evt-{uuid.uuid4().hex}", event.to_firestore())) == 0
    assert store.docs("holdoutContaminations") == {}

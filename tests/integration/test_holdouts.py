"""Holdout use cases on the real Firestore emulator, called in-process through the service layer.

Lifecycle (edit, freeze, retire: refusals write nothing), assignment records written once, health
figures by aggregation, and the contamination effect (idempotent, poison events dropped). The same
paths over HTTP, with roles, are in tests/e2e/test_holdouts.py.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import bucket_of
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from offerlab.domain.types import ExperimentStatus, SpilloverAction, SpilloverChannel
from offerlab.service import holdouts as svc
from offerlab.service import spillover
from offerlab.store import cohort_cache
from offerlab.store import collections as C
from offerlab.store import holdouts as repo
from offerlab.store.documents import HoldoutSpilloverEvent, Hypothesis, OfferExperiment
from offerlab.store.firestore_store import firestore_store

STORE = firestore_store()  # the store the functions use, on the emulator

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
ADMIN = Caller("admin-uid", "admin@company.com", frozenset({Role.ADMIN}))
BACKEND = Caller("backend", None, frozenset({Role.SERVICE}))


def fresh_users(n):
    tag = uuid.uuid4().hex[:8]
    return [f"it-{tag}-{i}" for i in range(n)]


def frozen_cohort(pct=10.0, policy=None):
    cohort = svc.create_holdout_cohort(STORE, PM, f"it {uuid.uuid4().hex[:6]}", pct, "", policy)
    return svc.freeze_holdout_cohort(STORE, PM, cohort.cohort_id)  # also refreshes this process's cache


def raw(firestore_db, collection, doc_id):
    return firestore_db.collection(collection).document(doc_id).get().to_dict()


def experiment_doc(firestore_db, cohort_id, status=ExperimentStatus.RUNNING, coverage=100.0):
    """An experiment document as the lifecycle area writes it (store/documents.py OfferExperiment)."""
    ref = firestore_db.collection(C.OFFER_EXPERIMENTS).document()
    now = datetime.now(timezone.utc)
    exp = OfferExperiment(
        experiment_id=ref.id, name="it exp", hypothesis=Hypothesis(statement="h"), kpis=[], guardrails=[],
        holdout_cohort_id=cohort_id, treatment_percentage=50, offer_type="PROMO", offer_config={"d": 1},
        planned_start_date=now, planned_end_date=now + timedelta(days=30), approvers=[], author="pm@company.com",
        salt=uuid.uuid4().hex, status=status, coverage=coverage, created_at=now)
    ref.set(exp.to_firestore())
    return exp


# --- lifecycle ---------------------------------------------------------------------------------------

def test_a_draft_is_editable_until_frozen_then_every_change_is_refused(firestore_db):
    draft = svc.create_holdout_cohort(STORE, PM, "edit me", 10, "", None)
    edited = svc.update_holdout_cohort(STORE, PM, draft.cohort_id, {
        "percentage": 12.5, "description": "d2", "spillover_policy": {SpilloverChannel.REFERRAL: SpilloverAction.ALLOW}})
    assert edited.percentage == 12.5 and edited.salt == draft.salt and edited.version == 2
    assert edited.spillover_policy[SpilloverChannel.GIFT] == SpilloverAction.BLOCK  # merged, not replaced
    assert edited.spillover_policy[SpilloverChannel.REFERRAL] == SpilloverAction.ALLOW
    svc.freeze_holdout_cohort(STORE, PM, draft.cohort_id)
    before = raw(firestore_db, C.HOLDOUT_COHORTS, draft.cohort_id)
    with pytest.raises(FailedPrecondition):
        svc.update_holdout_cohort(STORE, PM, draft.cohort_id, {"percentage": 20})
    with pytest.raises(FailedPrecondition):
        svc.freeze_holdout_cohort(STORE, PM, draft.cohort_id)
    assert raw(firestore_db, C.HOLDOUT_COHORTS, draft.cohort_id) == before
    assert before["status"] == "FROZEN" and before["version"] == 3 and before["lastChange"]["action"] == "COHORT_FROZEN"


def test_an_empty_edit_is_invalid_and_writes_nothing(firestore_db):
    draft = svc.create_holdout_cohort(STORE, PM, "empty edit", 10, "", None)
    before = raw(firestore_db, C.HOLDOUT_COHORTS, draft.cohort_id)
    with pytest.raises(InvalidArgument):
        svc.update_holdout_cohort(STORE, PM, draft.cohort_id, {})
    assert raw(firestore_db, C.HOLDOUT_COHORTS, draft.cohort_id) == before


def test_unknown_cohorts_are_not_found():
    for action in (lambda: svc.freeze_holdout_cohort(STORE, PM, "no-such-cohort"),
                   lambda: svc.update_holdout_cohort(STORE, PM, "no-such-cohort", {"name": "x"}),
                   lambda: svc.retire_holdout_cohort(STORE, ADMIN, "no-such-cohort", "r"),
                   lambda: svc.get_holdout_health(STORE, "no-such-cohort")):
        with pytest.raises(NotFound):
            action()


def test_retiring_keeps_the_definition_and_stops_counting_the_cohort(firestore_db):
    cohort = frozen_cohort(pct=50)
    member = next(u for u in fresh_users(50) if bucket_of(cohort.salt, u) < 5000)
    assert cohort.cohort_id in svc.is_user_in_holdout(STORE, BACKEND, member)["cohortIds"]
    before = raw(firestore_db, C.HOLDOUT_COHORTS, cohort.cohort_id)
    retired = svc.retire_holdout_cohort(STORE, ADMIN, cohort.cohort_id, "programme ended")
    after = raw(firestore_db, C.HOLDOUT_COHORTS, cohort.cohort_id)
    definition = ("cohortId", "name", "description", "percentage", "salt", "spilloverPolicy", "frozenAt", "frozenBy",
                  "createdAt", "createdBy")
    assert {k: after[k] for k in definition} == {k: before[k] for k in definition}
    assert after["status"] == "RETIRED" and after["retiredBy"] == "admin@company.com"
    assert after["retirementReason"] == "programme ended" and after["lastChange"]["action"] == "COHORT_RETIRED"
    assert retired.version == before["version"] + 1
    assert cohort.cohort_id not in svc.is_user_in_holdout(STORE, BACKEND, member)["cohortIds"]
    with pytest.raises(FailedPrecondition):
        svc.retire_holdout_cohort(STORE, ADMIN, cohort.cohort_id, "again")
    with pytest.raises(FailedPrecondition):
        svc.update_holdout_cohort(STORE, PM, cohort.cohort_id, {"name": "revived"})


def test_a_draft_or_the_holdout_of_a_running_experiment_cannot_be_retired(firestore_db):
    draft = svc.create_holdout_cohort(STORE, PM, "draft", 5, "", None)
    with pytest.raises(FailedPrecondition):
        svc.retire_holdout_cohort(STORE, ADMIN, draft.cohort_id, "r")
    cohort = frozen_cohort()
    exp = experiment_doc(firestore_db, cohort.cohort_id, ExperimentStatus.PAUSED)
    with pytest.raises(FailedPrecondition) as err:
        svc.retire_holdout_cohort(STORE, ADMIN, cohort.cohort_id, "r")
    assert err.value.details == {"experimentIds": [exp.experiment_id]}
    assert raw(firestore_db, C.HOLDOUT_COHORTS, cohort.cohort_id)["status"] == "FROZEN"


# --- assignment records --------------------------------------------------------------------------------

def test_each_users_assignment_is_recorded_once_in_or_out(firestore_db):
    cohort = frozen_cohort(pct=30)
    users = fresh_users(40)
    for u in users:
        assert (cohort.cohort_id in svc.is_user_in_holdout(STORE, BACKEND, u)["cohortIds"]) == (bucket_of(cohort.salt, u) < 3000)
    first = {u: raw(firestore_db, C.HOLDOUT_ASSIGNMENTS, f"{cohort.cohort_id}_{u}") for u in users}
    for u, doc in first.items():
        assert doc["inHoldout"] == (bucket_of(cohort.salt, u) < 3000) and doc["bucket"] == bucket_of(cohort.salt, u)
    # A new instance (empty LRU) evaluates the same users again: same answers, records untouched.
    cohort_cache.recently_recorded = cohort_cache.RecentSet(1000)
    cohort_cache.invalidate()
    for u in users:
        assert (cohort.cohort_id in svc.is_user_in_holdout(STORE, BACKEND, u)["cohortIds"]) == first[u]["inHoldout"]
    assert {u: raw(firestore_db, C.HOLDOUT_ASSIGNMENTS, f"{cohort.cohort_id}_{u}") for u in users} == first
    health = svc.get_holdout_health(STORE, cohort.cohort_id)
    assert health["evaluatedUsers"] >= 40 and health["assignedUsers"] >= sum(d["inHoldout"] for d in first.values())


def test_health_of_a_draft_reports_not_frozen():
    draft = svc.create_holdout_cohort(STORE, PM, "draft health", 10, "", None)
    health = svc.get_holdout_health(STORE, draft.cohort_id)
    assert health["frozen"] is False and health["health"] == "DEGRADED" and health["evaluatedUsers"] == 0
    assert health["observedShare"] is None and health["srmPValue"] is None and health["expectedShare"] == 0.1


# --- contamination effect (what the trigger runs) --------------------------------------------------------

def test_a_flagged_event_contaminates_once_even_when_redelivered(firestore_db):
    cohort = frozen_cohort(pct=50)
    recipient = next(u for u in fresh_users(50) if bucket_of(cohort.salt, u) < 5000)
    event = HoldoutSpilloverEvent(
        from_user_id="giver", to_user_id=recipient, channel=SpilloverChannel.REFERRAL, violation=True,
        action=SpilloverAction.FLAG, reason="r", cohort_ids=[cohort.cohort_id], actor="test",
        recorded_at=datetime.now(timezone.utc), contaminated_cohort_ids=[cohort.cohort_id])
    event_id = f"evt-{uuid.uuid4().hex}"
    before = svc.get_holdout_health(STORE, cohort.cohort_id)["contaminatedUsers"]
    assert spillover.mark_contamination(STORE, event_id, event.to_firestore()) == 1
    assert spillover.mark_contamination(STORE, event_id, event.to_firestore()) == 0  # redelivery: no second effect
    assert spillover.mark_contamination(STORE, f"{event_id}-2", event.to_firestore()) == 0  # already contaminated
    record = repo.get_contamination(cohort.cohort_id, recipient)
    assert record.spillover_event_id == event_id and record.channel == SpilloverChannel.REFERRAL
    assert svc.get_holdout_health(STORE, cohort.cohort_id)["contaminatedUsers"] == before + 1


def test_a_malformed_event_is_dropped_without_effect():
    assert spillover.mark_contamination(STORE, f"evt-{uuid.uuid4().hex}", {"toUserId": 3}) == 0
    assert spillover.mark_contamination(STORE, f"evt-{uuid.uuid4().hex}", None) == 0


def test_blocked_and_allowed_events_contaminate_nobody():
    cohort = frozen_cohort(pct=50)
    recipient = next(u for u in fresh_users(50) if bucket_of(cohort.salt, u) < 5000)
    for action in (SpilloverAction.BLOCK, SpilloverAction.ALLOW):
        event = HoldoutSpilloverEvent(
            from_user_id="giver", to_user_id=recipient, channel=SpilloverChannel.GIFT, violation=True,
            action=action, reason="r", cohort_ids=[cohort.cohort_id], actor="test",
            recorded_at=datetime.now(timezone.utc))
        assert spillover.mark_contamination(STORE, f"evt-{uuid.uuid4().hex}", event.to_firestore()) == 0
    assert repo.get_contamination(cohort.cohort_id, recipient) is None

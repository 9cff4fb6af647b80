"""Holdout use cases on the real Firestore emulator, called in-process through the service layer: what only
the real store shows — the query for experiments still holding a cohort (retirement refused), assignment
records created once across instances (the warm-instance LRU, a cold one finding the record exists) and
counted by aggregation, and the contamination effect applied once by the real ``apply_once``.

The lifecycle (edit, freeze, retire; every refusal writes nothing), membership, health and the
contamination rules are unit-tested on the in-memory store: tests/unit/test_holdout_use_cases.py; the same
paths over HTTP, with roles: tests/e2e/test_holdouts.py.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import bucket_of
from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.types import ExperimentStatus, SpilloverAction, SpilloverChannel
from offerlab.service import holdouts as svc
from offerlab.service import spillover
from offerlab.store import cohort_cache
from offerlab.store import collections as C
from offerlab.store import holdouts as repo
from offerlab.store.documents import HoldoutSpilloverEvent, Hypothesis, OfferExperiment
from offerlab.store.firestore_store import firestore_store
from tests.placements import scoped

STORE = firestore_store()  # the store the functions use, on the emulator

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
ADMIN = Caller("admin-uid", "admin@company.com", frozenset({Role.ADMIN}))
BACKEND = Caller("backend", None, frozenset({Role.SERVICE}))


def fresh_users(n):
    tag = uuid.uuid4().hex[:8]
    return [f"it-{tag}-{i}" for i in range(n)]


def frozen_cohort(pct=10.0, policy=None):
    cohort = scoped(svc.create_holdout_cohort, STORE, PM, f"it {uuid.uuid4().hex[:6]}", pct, "", policy)
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



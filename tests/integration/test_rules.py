"""firestore.rules over the emulator's REST API with unsigned user tokens (the Python Admin client
sends `Bearer owner` and bypasses rules, so it only seeds the documents here).

A table: every collection x (read, create, update, delete) x (anonymous, end user, each role).
Writes: denied for everyone. Reads: as the comment in firestore.rules says.
"""
import uuid

import pytest
import requests

from offerlab.store import collections as C
from offerlab_client import emulator_token

PROJECT = "demo-offerlab"
ROLES = [None, "end_user", "experimenter", "approver", "analyst", "service", "admin"]
STAFF = {"experimenter", "approver", "analyst", "admin"}
READERS = {
    C.HOLDOUT_COHORTS: STAFF, C.OFFER_EXPERIMENTS: STAFF, C.ROLLOUT_PLANS: STAFF, C.EXPERIMENT_EVENTS: STAFF,
    C.ROLLOUT_EVENTS: STAFF, C.EXPERIMENT_SNAPSHOTS: STAFF, C.EXPERIMENT_ANALYSES: STAFF,
    C.HOLDOUT_ASSIGNMENTS: {"analyst", "admin"}, C.HOLDOUT_SPILLOVER_EVENTS: {"analyst", "admin"},
    C.EXPERIMENT_LEDGER: {"analyst", "approver", "admin"}, C.PROCESSED_EVENTS: set(),
    C.EXPERIMENT_EXPOSURES: {"analyst", "admin"}, C.USER_METRIC_TOTALS: {"analyst", "admin"},
    C.FRAUD_SCORES: {"analyst", "admin"},
    C.HOLDOUT_CONTAMINATIONS: {"analyst", "admin"},
    C.LEDGER_HEADS: {"analyst", "approver", "admin"}, C.EXPERIMENT_ALERTS: STAFF,
    C.PLACEMENT_LAYERS: STAFF, C.PROGRAM_LOCKS: set(),
    C.OFFER_REFUSALS: {"analyst", "admin"}, C.CUSTOMER_STATUS: {"analyst", "admin"}, C.PRICE_SERIES: STAFF,
    C.EXCHANGE_RATES: STAFF,
    C.EXPERIMENT_AGGREGATES: STAFF,
}


def _token(role):
    if role is None:
        return None
    if role == "end_user":
        return emulator_token("end-user-1", project=PROJECT)
    return emulator_token(f"{role}-1", email=f"{role}@company.com", roles=[role], project=PROJECT)


def _headers(role):
    token = _token(role)
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def seeded(firestore_db):
    """One existing document per collection (written with admin rights)."""
    doc_id = f"rules-{uuid.uuid4().hex[:8]}"
    for name in C.ALL_COLLECTIONS:
        firestore_db.collection(name).document(doc_id).set({"seed": True, "owner": "end-user-1"})
    return doc_id


def _url(firestore_host, path):
    return f"http://{firestore_host}/v1/projects/{PROJECT}/databases/(default)/documents/{path}"


def test_the_table_covers_every_collection():
    assert set(READERS) == set(C.ALL_COLLECTIONS)


@pytest.mark.parametrize("collection", C.ALL_COLLECTIONS)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_reads_follow_roles(firestore_host, seeded, collection, role):
    resp = requests.get(_url(firestore_host, f"{collection}/{seeded}"), headers=_headers(role), timeout=10)
    allowed = role in READERS[collection]
    assert resp.status_code == (200 if allowed else 403), resp.text[:200]


@pytest.mark.parametrize("collection", C.ALL_COLLECTIONS)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_every_client_write_is_denied(firestore_host, firestore_db, seeded, collection, role):
    headers = _headers(role)
    body = {"fields": {"status": {"stringValue": "HACKED"}}}
    new_id = f"new-{uuid.uuid4().hex[:8]}"
    create = requests.post(_url(firestore_host, f"{collection}?documentId={new_id}"), json=body, headers=headers, timeout=10)
    update = requests.patch(_url(firestore_host, f"{collection}/{seeded}"), json=body, headers=headers, timeout=10)
    delete = requests.delete(_url(firestore_host, f"{collection}/{seeded}"), headers=headers, timeout=10)
    assert (create.status_code, update.status_code, delete.status_code) == (403, 403, 403)
    # And nothing changed underneath.
    assert not firestore_db.collection(collection).document(new_id).get().exists
    assert firestore_db.collection(collection).document(seeded).get().to_dict() == {"seed": True, "owner": "end-user-1"}


def test_list_queries_are_denied_to_end_users(firestore_host, seeded):
    resp = requests.get(_url(firestore_host, C.OFFER_EXPERIMENTS), headers=_headers("end_user"), timeout=10)
    assert resp.status_code == 403

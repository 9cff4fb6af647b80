"""The callable plumbing over HTTP, as a mobile or back-office client calls it (API.md §1, §9)."""
import uuid

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter

from offerlab.store import collections as C
from offerlab_client import InvalidArgument, PermissionDenied, Unauthenticated


def _cohorts_named(firestore_db, name):
    return list(firestore_db.collection(C.HOLDOUT_COHORTS).where(filter=FieldFilter("name", "==", name)).stream())


def test_no_token_is_unauthenticated(clients):
    with pytest.raises(Unauthenticated):
        clients.anonymous().ping()
    with pytest.raises(Unauthenticated):
        clients.anonymous().create_holdout_cohort(name="x", percentage=10)


def test_a_forged_header_is_unauthenticated(functions_url):
    resp = requests.post(f"{functions_url}/ping", json={"data": {}}, headers={"Authorization": "Basic abc"}, timeout=30)
    assert resp.status_code == 401 and resp.json()["error"]["status"] == "UNAUTHENTICATED"


def test_any_signed_in_user_may_ping_and_roles_come_from_the_claim(clients):
    result = clients.as_("u-42", "a@b.com", ("analyst", "bogus")).ping(echo="hi")
    assert result == {"ok": True, "uid": "u-42", "echo": "hi", "roles": ["analyst"]}


@pytest.mark.parametrize("role", [(), ("analyst",), ("approver",), ("service",)])
def test_wrong_role_is_permission_denied_and_writes_nothing(clients, firestore_db, role):
    name = f"denied-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PermissionDenied):
        clients.as_("someone", "someone@company.com", role).create_holdout_cohort(name=name, percentage=10)
    assert _cohorts_named(firestore_db, name) == []


def test_bad_payload_lists_each_bad_field_and_writes_nothing(clients, firestore_db):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidArgument) as err:
        clients.experimenter().call("create_holdout_cohort", {
            "name": name, "percentage": 75, "spilloverPolicy": {"gift": "MAYBE"}, "surprise": True})
    assert set(err.value.field_paths) == {"percentage", "spilloverPolicy.gift", "surprise"}
    assert _cohorts_named(firestore_db, name) == []


def test_a_non_object_payload_is_invalid(clients):
    with pytest.raises(InvalidArgument):
        clients.experimenter().call("create_holdout_cohort", ["not", "an", "object"])


def test_an_oversized_payload_is_refused_without_internal_detail(clients):
    with pytest.raises(InvalidArgument) as err:
        clients.experimenter().call("create_holdout_cohort", {"name": "x" * 300_000, "percentage": 10})
    assert "Traceback" not in err.value.message and "pydantic" not in str(err.value.details)


def test_valid_call_returns_the_result(clients):
    cohort = clients.experimenter().create_holdout_cohort(name="e2e holdout", percentage=10)
    assert cohort["status"] == "DRAFT" and cohort["percentage"] == 10 and len(cohort["salt"]) == 32
    assert cohort["spilloverPolicy"] == {"referral": "FLAG", "gift": "BLOCK", "shared_wallet": "BLOCK"}
    assert cohort["createdBy"] == "pm@company.com" and cohort["createdAt"].endswith("Z")
    frozen = clients.experimenter().freeze_holdout_cohort(cohort["cohortId"])
    assert frozen["status"] == "FROZEN" and frozen["salt"] == cohort["salt"]


def test_wire_format_errors_carry_status_and_message_only(functions_url, clients):
    token = clients.experimenter().token
    resp = requests.post(f"{functions_url}/freeze_holdout_cohort", json={"data": {"cohortId": "does-not-exist"}},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    error = resp.json()["error"]
    assert error["status"] == "NOT_FOUND" and set(error) <= {"status", "message", "details"}

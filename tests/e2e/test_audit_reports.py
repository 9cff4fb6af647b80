"""The ledger callables and the audit export over HTTP, as a back-office client calls them (API.md §3, §4).

History is created the way the other areas create it (documents written by their services; here with
the admin client) and appended by the triggers in the functions emulator.
"""
from __future__ import annotations

import csv
import io
import json
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from offerlab.store import collections as C
from offerlab_client import InvalidArgument, NotFound, PermissionDenied, Unauthenticated


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.3):
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as err:  # functions still loading
            value = err
        if value and not isinstance(value, Exception):
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting (last value: {value!r})")


def _now():
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def history(clients, firestore_db):
    """One experiment with a full history: created, submitted, approved by two approvers, started, a rollout
    stage, a guardrail pause, an analysis, then a hand edit of the price. Returns its id."""
    wait_for(lambda: clients.analyst().get_ledger_statistics(), timeout=180)
    experiment_id = f"exp-e2e-{uuid.uuid4().hex[:10]}"
    stamp = lambda v, action: {"action": action, "actor": "pm@company.com", "at": _now(), "version": v}  # noqa: E731
    doc = {"experimentId": experiment_id, "name": "Premium price test", "status": "DRAFT", "author": "pm@company.com",
           "hypothesis": {"statement": "Raising the price to 12.99 increases net LTV by 15%",
                          "expectedImpact": "+15% net LTV", "risksIdentified": ["churn"], "successCriteria": ["LTV +10%"]},
           "offerType": "PRICE_CHANGE", "offerConfig": {"newPrice": 12.99}, "approvers": ["ceo@company.com", "cfo@company.com"],
           "version": 1, "lastChange": stamp(1, "EXPERIMENT_CREATED")}
    ref = firestore_db.collection(C.OFFER_EXPERIMENTS).document(experiment_id)
    ref.set(doc)
    events = firestore_db.collection(C.EXPERIMENT_EVENTS)
    lifecycle = [
        ("EXPERIMENT_SUBMITTED", "pm@company.com", "DRAFT", "PENDING_APPROVAL", {}),
        ("EXPERIMENT_APPROVED", "ceo@company.com", "PENDING_APPROVAL", "PENDING_APPROVAL", {"comment": "go"}),
        ("EXPERIMENT_APPROVED", "cfo@company.com", "PENDING_APPROVAL", "APPROVED", {"comment": "=SUM(A1)"}),
        ("EXPERIMENT_STARTED", "pm@company.com", "APPROVED", "RUNNING", {}),
        ("GUARDRAIL_PAUSED", "system:guardrail_sweep", "RUNNING", "PAUSED",
         {"reason": "refund_rate above 0.02", "violations": [{"kpiName": "Refund Rate", "observed": 0.031}]}),
    ]
    for version, (event_type, actor, before, after, payload) in enumerate(lifecycle, start=2):
        events.document(f"{experiment_id}_{version}").set({
            "experimentId": experiment_id, "eventType": event_type, "actor": actor, "fromStatus": before,
            "toStatus": after, "version": version, "payload": payload, "occurredAt": _now()})
        time.sleep(0.05)  # distinct recordedAt, so the timeline order is the order of events
    firestore_db.collection(C.ROLLOUT_EVENTS).document(f"{experiment_id}_1").set({
        "experimentId": experiment_id, "eventType": "ROLLOUT_STARTED", "actor": "pm@company.com",
        "fromStage": None, "toStage": 1.0, "version": 1, "occurredAt": _now()})
    firestore_db.collection(C.EXPERIMENT_ANALYSES).document(f"an-{experiment_id}").set({
        "analysisId": f"an-{experiment_id}", "experimentId": experiment_id, "metric": "net_ltv", "pValue": 0.0123,
        "rawPercentChange": 4.5, "correctedPercentChange": 4.1, "confidenceInterval": [0.5, 7.7],
        "inputsDigest": "cd" * 32, "createdBy": "analyst@company.com", "createdAt": _now()})
    ref.update({"offerConfig.newPrice": 9.99})  # the console edit
    # 1 created + 5 lifecycle + 1 rollout + 1 analysis + 1 unauthorised = 9 entries
    wait_for(lambda: len(clients.analyst().get_audit_trail(experiment_id)["entries"]) >= 9, timeout=90)
    return experiment_id


def test_the_audit_trail_is_in_sequence_order_and_verifies(clients, history):
    trail = clients.analyst().get_audit_trail(history)
    entries = trail["entries"]
    assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1)) and len(entries) == 9
    assert {e["eventType"] for e in entries} >= {"EXPERIMENT_APPROVED", "ROLLOUT_STARTED", "ANALYSIS_RECORDED",
                                                 "UNAUTHORISED_CHANGE", "EXPERIMENT_CHANGED"}
    result = clients.approver().verify_ledger(history)
    assert result["valid"] is True and result["entriesChecked"] == 9 and result["errors"] == []
    assert result["headHash"] == entries[-1]["hash"]
    page = clients.admin().get_audit_trail(history, after_sequence=4, limit=2)
    assert [e["sequence"] for e in page["entries"]] == [5, 6] and page["nextAfterSequence"] == 6


def test_the_audit_report_has_every_section(clients, history):
    report = clients.experimenter().get_audit_report(history)
    assert report["hypothesis"]["statement"].startswith("Raising the price")
    assert [(a["approver"], a["comment"]) for a in report["approvals"]] == [("ceo@company.com", "go"),
                                                                             ("cfo@company.com", "=SUM(A1)")]
    assert all(a["approvedAt"].endswith("Z") for a in report["approvals"])
    assert [t["toStatus"] for t in report["timeline"]] == ["PENDING_APPROVAL", "PENDING_APPROVAL", "APPROVED",
                                                           "RUNNING", "PAUSED"]
    [guardrail] = report["guardrailActions"]
    assert guardrail["eventType"] == "GUARDRAIL_PAUSED" and guardrail["violations"][0]["kpiName"] == "Refund Rate"
    [stage] = report["rolloutStages"]
    assert stage["toStage"] == 1 and stage["eventType"] == "ROLLOUT_STARTED"
    [analysis] = report["analyses"]
    assert analysis["pValue"] == 0.0123 and len(analysis["digest"]) == 64 and analysis["inputsDigest"] == "cd" * 32
    [change] = report["unauthorisedChanges"]
    assert change["changedFields"] == ["offerConfig.newPrice"]
    assert report["alerts"][0]["type"] == "UNAUTHORISED_CHANGE"
    assert report["integrity"]["valid"] is True and report["ledger"]["entries"] == 9


def test_export_as_json_loads(clients, history):
    resp = clients.analyst().export_audit_report(history, "json")
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "attachment" in resp.headers["Content-Disposition"]
    report = json.loads(resp.text)
    assert report["experimentId"] == history and report["integrity"]["valid"] is True


def test_export_as_csv_opens_as_a_table(clients, history):
    resp = clients.approver().export_audit_report(history, "csv")
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0] == ["section", "sequence", "time", "event", "actor", "details"]
    assert all(len(r) == 6 for r in rows)
    sections = {r[0] for r in rows[1:]}
    assert {"experiment", "hypothesis", "integrity", "approval", "timeline", "guardrail", "rollout", "analysis",
            "unauthorised"} <= sections
    approvals = [r for r in rows if r[0] == "approval"]
    assert [r[4] for r in approvals] == ["ceo@company.com", "cfo@company.com"]
    # A cell a spreadsheet would run as a formula is neutralised.
    assert not any(cell.startswith("=") for row in rows for cell in row)
    assert ["integrity", "", "", "valid", "", "true"] in rows


def test_export_refuses_without_a_token_wrong_roles_and_bad_formats(clients, functions_url, history):
    url = f"{functions_url}/export_audit_report"
    resp = requests.get(url, params={"experimentId": history, "format": "csv"}, timeout=60)
    assert resp.status_code == 401 and resp.json()["error"]["status"] == "UNAUTHENTICATED"
    with pytest.raises(Unauthenticated):
        clients.as_("x").with_token("not-a-token").export_audit_report(history, "csv")
    for denied in (clients.end_user("u-1"), clients.experimenter(), clients.service()):
        with pytest.raises(PermissionDenied) as err:
            denied.export_audit_report(history, "json")
        assert err.value.http_status == 403
    with pytest.raises(InvalidArgument) as err:
        clients.analyst().export_audit_report(history, "xlsx")
    assert err.value.http_status == 400 and err.value.field_paths == ["format"]
    with pytest.raises(NotFound) as err:
        clients.analyst().export_audit_report(f"exp-missing-{uuid.uuid4().hex[:8]}", "json")
    assert err.value.http_status == 404


def test_callables_check_roles_and_input(clients, history):
    with pytest.raises(Unauthenticated):
        clients.anonymous().verify_ledger(history)
    for denied in (clients.end_user("u-2"), clients.service(), clients.experimenter()):
        with pytest.raises(PermissionDenied):
            denied.get_audit_trail(history)
        with pytest.raises(PermissionDenied):
            denied.verify_ledger(history)
    with pytest.raises(PermissionDenied):
        clients.end_user("u-3").get_audit_report(history)
    with pytest.raises(InvalidArgument) as err:
        clients.analyst().call("get_audit_trail", {"experimentId": "a/b", "limit": 0, "extra": 1})
    assert set(err.value.field_paths) == {"experimentId", "limit", "extra"}
    with pytest.raises(NotFound):
        clients.analyst().verify_ledger(f"exp-missing-{uuid.uuid4().hex[:8]}")


def test_ledger_statistics(clients, history):
    stats = clients.experimenter().get_ledger_statistics()
    assert set(stats) >= {"totalExperiments", "activeExperiments", "completedExperiments", "killedExperiments",
                          "totalEntries"}
    assert all(isinstance(v, int) and v >= 0 for v in stats.values())
    assert stats["totalEntries"] >= 9 and stats["totalExperiments"] >= 1 and stats["unauthorisedChanges"] >= 1
    with pytest.raises(PermissionDenied):
        clients.end_user("u-4").get_ledger_statistics()

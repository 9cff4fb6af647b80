"""Rendering of the audit report and the HTTP export's refusals, without a server (the e2e tests cover
the deployed endpoint): CSV that a spreadsheet opens safely, JSON that loads, errors in the callable shape."""
import csv
import io
import json

import pytest

from offerlab.api.ledger import export
from offerlab.domain.errors import NotFound
from offerlab.service.audit_report import RENDERERS, render_csv, render_json

REPORT = {
    "experimentId": "exp-1", "generatedAt": "2026-11-25T12:00:00.000000Z",
    "experiment": {"name": "Prix, \"premium\"\nligne 2", "offerConfig": {"newPrice": 12.99}},
    "hypothesis": {"statement": "+15 % LTV"},
    "approvals": [{"approver": "ceo@company.com", "approvedAt": "2026-11-25T10:00:00.000000Z", "comment": "=HYPERLINK(\"x\")",
                   "sequence": 3}],
    "rejections": [], "timeline": [{"sequence": 2, "at": "t", "eventType": "EXPERIMENT_SUBMITTED", "actor": "@pm",
                                    "fromStatus": "DRAFT", "toStatus": "PENDING_APPROVAL", "reason": None}],
    "guardrailActions": [], "rolloutStages": [], "analyses": [{"sequence": 5, "recordedAt": "t", "createdBy": "-a",
                                                               "pValue": 0.01, "digest": "ab" * 32}],
    "spilloverViolations": [], "unauthorisedChanges": [],
    "integrity": {"valid": False, "entriesChecked": 5, "headHash": "cd" * 32, "firstBadSequence": 4, "pendingEntries": 0,
                  "errors": [{"sequence": 4, "code": "HASH_MISMATCH", "message": "entry 4 does not match its hash"}]},
}


def test_csv_is_a_table_with_formulas_neutralised():
    text = render_csv(REPORT)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["section", "sequence", "time", "event", "actor", "details"] and all(len(r) == 6 for r in rows)
    assert ["experiment", "", "", "name", "", "Prix, \"premium\"\nligne 2"] in rows
    approval = next(r for r in rows if r[0] == "approval")
    assert approval[4] == "ceo@company.com" and json.loads(approval[5]) == {"comment": "=HYPERLINK(\"x\")"}
    timeline = next(r for r in rows if r[0] == "timeline")
    assert timeline[4] == "'@pm"
    analysis = next(r for r in rows if r[0] == "analysis")
    assert analysis[4] == "'-a"
    assert ["integrity.error", "4", "", "HASH_MISMATCH", "", "entry 4 does not match its hash"] in rows
    assert not any(cell[:1] in ("=", "+", "-", "@") for row in rows for cell in row)


def test_json_round_trips():
    assert json.loads(render_json(REPORT)) == REPORT


def _claims(token):
    if token == "good-analyst":
        return {"uid": "a1", "email": "a@company.com", "roles": ["analyst"]}
    if token == "good-experimenter":
        return {"uid": "e1", "roles": ["experimenter"]}
    raise ValueError("bad token")


def _build(experiment_id):
    if experiment_id == "missing":
        raise NotFound("No such experiment or ledger chain.")
    if experiment_id == "boom":
        raise RuntimeError("secret internal detail")
    return REPORT


@pytest.mark.parametrize("method, auth, args, status, code", [
    ("GET", None, {"experimentId": "exp-1"}, 401, "UNAUTHENTICATED"),
    ("GET", "Basic abc", {"experimentId": "exp-1"}, 401, "UNAUTHENTICATED"),
    ("GET", "Bearer forged", {"experimentId": "exp-1"}, 401, "UNAUTHENTICATED"),
    ("GET", "Bearer good-experimenter", {"experimentId": "exp-1"}, 403, "PERMISSION_DENIED"),
    ("GET", "Bearer good-analyst", {"experimentId": "exp-1", "format": "pdf"}, 400, "INVALID_ARGUMENT"),
    ("GET", "Bearer good-analyst", {}, 400, "INVALID_ARGUMENT"),
    ("GET", "Bearer good-analyst", {"experimentId": "missing"}, 404, "NOT_FOUND"),
    ("GET", "Bearer good-analyst", {"experimentId": "boom"}, 500, "INTERNAL"),
    ("POST", "Bearer good-analyst", {"experimentId": "exp-1"}, 405, "INVALID_ARGUMENT"),
])
def test_export_refusals_use_the_callable_error_shape(method, auth, args, status, code):
    body, got_status, headers = export(method, auth, args, _claims, _build, RENDERERS)
    error = json.loads(body)["error"]
    assert (got_status, error["status"]) == (status, code)
    assert headers["Content-Type"] == "application/json"
    assert "secret" not in body and "Traceback" not in body


@pytest.mark.parametrize("fmt, media", [("csv", "text/csv"), ("json", "application/json")])
def test_export_renders_each_format(fmt, media):
    body, status, headers = export("GET", "Bearer good-analyst", {"experimentId": "exp-1", "format": fmt},
                                   _claims, _build, RENDERERS)
    assert status == 200 and headers["Content-Type"].startswith(media)
    assert headers["Content-Disposition"] == f'attachment; filename="audit-exp-1.{fmt}"'
    assert body == RENDERERS[fmt][0](REPORT)


@pytest.mark.parametrize("bad_id", ["..", ".", "__name__", "a/b", ""])
def test_export_refuses_ids_firestore_cannot_address(bad_id):
    body, status, _ = export("GET", "Bearer good-analyst", {"experimentId": bad_id}, _claims, _build, RENDERERS)
    assert status == 400 and json.loads(body)["error"]["details"]["fields"][0]["path"] == "experimentId"


def test_report_sections_from_entries_as_the_lifecycle_service_writes_them():
    """Entries shaped like service/experiments.py's events: approvals of several approvers, a guardrail
    pause, a coverage change (the pure derivation the report and the offline verifier share)."""
    from offerlab.ledger.report import history_sections

    def entry(seq, event_type, actor, inner, kind="EXPERIMENT_EVENT", **payload):
        return {"sequence": seq, "eventType": event_type, "actor": actor, "sourceKind": kind,
                "recordedAt": f"2026-11-25T10:00:0{seq}.000000Z", "snapshotDigest": "d" * 64, "hash": "h",
                "payload": {"occurredAt": f"2026-11-25T09:00:0{seq}.000000Z", "payload": inner, **payload}}

    entries = [
        entry(1, "EXPERIMENT_APPROVAL_RECORDED", "ceo@company.com", {"approver": "ceo@company.com", "comment": "ok"}),
        entry(2, "EXPERIMENT_APPROVED", "cfo@company.com", {"approver": "cfo@company.com", "comment": None},
              fromStatus="PENDING_APPROVAL", toStatus="APPROVED"),
        entry(3, "EXPERIMENT_PAUSED", "system:guardrail_sweep",
              {"reason": "refund", "source": "guardrail", "violations": [{"kpiName": "Refund Rate"}]},
              fromStatus="RUNNING", toStatus="PAUSED"),
        entry(4, "EXPERIMENT_COVERAGE_CHANGED", "system:rollout", {"fromCoverage": 1, "toCoverage": 5, "reason": "auto"}),
    ]
    report = history_sections(entries)
    assert [a["approver"] for a in report["approvals"]] == ["ceo@company.com", "cfo@company.com"]
    [guardrail] = report["guardrailActions"]
    assert guardrail["actionTaken"] == "PAUSE" and guardrail["violations"] == [{"kpiName": "Refund Rate"}]
    [stage] = report["rolloutStages"]
    assert (stage["fromStage"], stage["toStage"]) == (1, 5)
    assert [t["sequence"] for t in report["timeline"]] == [1, 2, 3, 4]
    assert [t["leafIndex"] for t in report["timeline"]] == [0, 1, 2, 3]

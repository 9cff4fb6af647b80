"""The audit report (API.md §3 ``get_audit_report``, §4 ``export_audit_report``), built from the ledger.

Everything in the report that describes history comes from the verified ledger entries, not from the
mutable documents: the experiment document only supplies the current definition (name, hypothesis,
approvers) and is itself covered by the ledger's EXPERIMENT_CHANGED entries. The report carries the
integrity verdict of the chain it was built from, so a reader knows whether to trust it.

Sections and how entries are classified (docs/ledger.md §9):

* timeline — lifecycle events (sourceKind EXPERIMENT_EVENT) with fromStatus/toStatus;
* approvals / rejections — lifecycle events whose eventType ends in APPROVED or APPROVAL_RECORDED /
  REJECTED: who (payload.approver, else the actor), when;
* guardrailActions — events whose eventType mentions GUARDRAIL, or whose payload carries violations
  (a guardrail's PAUSE/KILL is an EXPERIMENT_PAUSED/KILLED event with payload.violations);
* rolloutStages — rollout events (sourceKind ROLLOUT_EVENT) with fromStage/toStage, and lifecycle events
  that change the coverage (payload.toCoverage);
* analyses — ANALYSIS_RECORDED entries, with the digest of the stored analysis (snapshotDigest);
* spilloverViolations, unauthorisedChanges — their entries; integrity — ``verify_ledger``'s result.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable

from offerlab.domain.clock import utcnow
from offerlab.ledger.drafts import COHORT_CHAIN_PREFIX, UNAUTHORISED_CHANGE, SourceKind
from offerlab.ledger.values import rfc3339, to_ledger_value
from offerlab.service import ledger as ledger_service
from offerlab.store import ledger as repo

PAGE = 1000
EXPERIMENT_FIELDS = ("experimentId", "name", "description", "status", "author", "offerType", "offerConfig",
                     "controlConfig", "holdoutCohortId", "treatmentPercentage", "plannedStartDate",
                     "plannedEndDate", "startedAt", "endedAt", "createdAt", "approvers", "kpis", "guardrails",
                     "coverage", "version")


def _all_entries(chain_id: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    while True:
        page = repo.read_entries(chain_id, entries[-1]["sequence"] if entries else 0, PAGE)
        entries.extend(page)
        if len(page) < PAGE:
            return entries


def _inner(payload: dict[str, Any]) -> dict[str, Any]:
    """Lifecycle events keep their details under ``payload``; the entry's payload is the whole event."""
    inner = payload.get("payload")
    return inner if isinstance(inner, dict) else {}


def _when(entry: dict[str, Any]) -> Any:
    payload = entry.get("payload") or {}
    return payload.get("occurredAt") or payload.get("createdAt") or payload.get("recordedAt") or entry.get("recordedAt")


def _kind(entry: dict[str, Any]) -> str:
    return str(entry.get("sourceKind") or "")


def _event(entry: dict[str, Any]) -> str:
    return str(entry.get("eventType") or "").upper()


def _base(entry: dict[str, Any]) -> dict[str, Any]:
    return {"sequence": entry.get("sequence"), "at": _when(entry), "eventType": entry.get("eventType"),
            "actor": entry.get("actor")}


def build_report(chain_id: str) -> dict[str, Any]:
    """The report of one experiment (or a cohort chain, ``cohort:<id>``)."""
    integrity = ledger_service.verify_ledger(chain_id)  # seals pending entries first; NOT_FOUND if unknown
    entries = _all_entries(chain_id)
    is_cohort = chain_id.startswith(COHORT_CHAIN_PREFIX)
    document = None if is_cohort else repo.read_experiment(chain_id)
    document = to_ledger_value(document) if document is not None else None

    timeline, approvals, rejections, guardrails, stages, analyses, spillovers, unauthorised = ([] for _ in range(8))
    hypothesis = (document or {}).get("hypothesis")
    for entry in entries:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        inner = _inner(payload)
        kind, event = _kind(entry), _event(entry)
        if kind == SourceKind.EXPERIMENT_EVENT.value:
            timeline.append({**_base(entry), "fromStatus": payload.get("fromStatus"),
                             "toStatus": payload.get("toStatus"), "reason": inner.get("reason")})
            # EXPERIMENT_APPROVED (the last approval) and EXPERIMENT_APPROVAL_RECORDED (one of several).
            if event.endswith("APPROVED") or event.endswith("APPROVAL_RECORDED"):
                approvals.append({"approver": inner.get("approver") or entry.get("actor"), "approvedAt": _when(entry),
                                  "comment": inner.get("comment"), "sequence": entry.get("sequence")})
            elif event.endswith("REJECTED"):
                rejections.append({"approver": entry.get("actor"), "rejectedAt": _when(entry),
                                   "reason": inner.get("reason"), "sequence": entry.get("sequence")})
            if hypothesis is None and isinstance(inner.get("hypothesis"), dict):
                hypothesis = inner["hypothesis"]
        if "GUARDRAIL" in event or any(k in payload or k in inner for k in ("violations", "guardrail")):
            derived = "KILL" if event.endswith("KILLED") else "PAUSE" if event.endswith("PAUSED") else None
            guardrails.append({**_base(entry),
                               "actionTaken": inner.get("actionTaken") or payload.get("actionTaken") or derived,
                               "violations": inner.get("violations") or payload.get("violations"),
                               "reason": inner.get("reason") or payload.get("reason")})
        if kind == SourceKind.EXPERIMENT_EVENT.value and "toCoverage" in inner:  # a coverage (stage) change
            stages.append({**_base(entry), "fromStage": inner.get("fromCoverage"), "toStage": inner.get("toCoverage"),
                           "reason": inner.get("reason")})
        if kind == SourceKind.ROLLOUT_EVENT.value:
            stages.append({**_base(entry), "fromStage": payload.get("fromStage"), "toStage": payload.get("toStage"),
                           "reason": payload.get("reason"), "evidence": payload.get("evidence")})
        elif kind == SourceKind.ANALYSIS.value:
            analyses.append({"sequence": entry.get("sequence"), "recordedAt": entry.get("recordedAt"),
                             **{k: payload.get(k) for k in (
                                 "analysisId", "metric", "rawPercentChange", "correctedPercentChange", "pValue",
                                 "confidenceInterval", "sampleSizes", "srmPValue", "dataQuality", "recommendation",
                                 "method", "inputsDigest", "createdBy", "currencyBreakdown")},
                             "digest": entry.get("snapshotDigest"), "entryHash": entry.get("hash")})
        elif kind == SourceKind.SPILLOVER_VIOLATION.value:
            spillovers.append({**_base(entry), **{k: payload.get(k) for k in (
                "fromUserId", "toUserId", "channel", "action", "reason", "cohortIds")}})
        if entry.get("eventType") == UNAUTHORISED_CHANGE:
            unauthorised.append({**_base(entry), "changedFields": payload.get("changedFields"),
                                 "changes": payload.get("changes"), "problems": payload.get("problems")})
    # The ledger's order is the order of recording; the report reads in the order things happened.
    for items, key in ((timeline, "at"), (approvals, "approvedAt"), (rejections, "rejectedAt"),
                       (guardrails, "at"), (stages, "at")):
        items.sort(key=lambda item, k=key: (str(item.get(k) or ""), item.get("sequence") or 0))
    return {
        "experimentId": chain_id,
        "generatedAt": rfc3339(utcnow()),
        "experiment": {k: document.get(k) for k in EXPERIMENT_FIELDS if k in document} if document else None,
        "hypothesis": hypothesis,
        "approvals": approvals,
        "currentApprovals": (document or {}).get("approvals") or {},
        "rejections": rejections,
        "timeline": timeline,
        "guardrailActions": guardrails,
        "rolloutStages": stages,
        "analyses": analyses,
        "spilloverViolations": spillovers,
        "unauthorisedChanges": unauthorised,
        "shipping": shipping_section(entries),
        "alerts": [to_ledger_value(a) for a in repo.alerts_of_chain(chain_id)],
        "integrity": integrity,
        "ledger": {"entries": len(entries), "headHash": integrity.get("headHash"),
                   "firstSequence": entries[0]["sequence"] if entries else None,
                   "lastSequence": entries[-1]["sequence"] if entries else None},
    }


# --- shipping (API.md §10) --------------------------------------------------------------------------------

SHIP_EVENTS = ("EXPERIMENT_SHIP_REQUESTED", "EXPERIMENT_SHIP_APPROVAL_RECORDED", "EXPERIMENT_SHIPPED",
               "EXPERIMENT_SHIP_REJECTED", "EXPERIMENT_UNSHIPPED")


def shipping_section(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ship requests, approvals, rejections and unships of the chain, from its lifecycle entries: which
    arm, whose config, who approved, which cohorts kept the status quo, what it replaced or was replaced by."""
    out = []
    for entry in entries:
        if _kind(entry) != SourceKind.EXPERIMENT_EVENT.value or _event(entry) not in SHIP_EVENTS:
            continue
        inner = _inner(entry.get("payload") if isinstance(entry.get("payload"), dict) else {})
        out.append({**_base(entry), **{k: inner.get(k) for k in (
            "arm", "reason", "placement", "shippedConfig", "approver", "approved", "required", "coveringCohortIds",
            "replaces", "supersededBy")}})
    out.sort(key=lambda item: (str(item.get("at") or ""), item.get("sequence") or 0))
    return out


# --- rendering -------------------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "sequence", "time", "event", "actor", "details")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A spreadsheet-safe cell: values that a spreadsheet would run as a formula are quoted with an
    apostrophe (OWASP, "CSV Injection"); structured values as compact JSON."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _details(item: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in skip and v is not None}


def render_csv(report: dict[str, Any]) -> str:
    """One row per fact: summary and integrity rows first, then each section's items in sequence order.

    UTF-8 with a byte-order mark, so spreadsheet programs detect the encoding; RFC 4180 quoting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows: list[tuple[Any, ...]] = [("report", None, report.get("generatedAt"), "experimentId", None, report["experimentId"])]
    for key, value in (report.get("experiment") or {}).items():
        rows.append(("experiment", None, None, key, None, value))
    for key, value in (report.get("hypothesis") or {}).items() if isinstance(report.get("hypothesis"), dict) else []:
        rows.append(("hypothesis", None, None, key, None, value))
    integrity = report.get("integrity") or {}
    for key in ("valid", "entriesChecked", "headHash", "firstBadSequence", "pendingEntries"):
        rows.append(("integrity", None, None, key, None, integrity.get(key)))
    for error in integrity.get("errors") or []:
        rows.append(("integrity.error", error.get("sequence"), None, error.get("code"), None, error.get("message")))
    for item in report.get("approvals") or []:
        rows.append(("approval", item.get("sequence"), item.get("approvedAt"), "APPROVED", item.get("approver"),
                     _details(item, ("sequence", "approvedAt", "approver"))))
    for item in report.get("rejections") or []:
        rows.append(("rejection", item.get("sequence"), item.get("rejectedAt"), "REJECTED", item.get("approver"),
                     _details(item, ("sequence", "rejectedAt", "approver"))))
    sections = (("timeline", "timeline"), ("guardrail", "guardrailActions"), ("rollout", "rolloutStages"),
                ("spillover", "spilloverViolations"), ("unauthorised", "unauthorisedChanges"), ("shipping", "shipping"))
    for name, key in sections:
        for item in report.get(key) or []:
            rows.append((name, item.get("sequence"), item.get("at"), item.get("eventType"), item.get("actor"),
                         _details(item, ("sequence", "at", "eventType", "actor"))))
    for item in report.get("analyses") or []:
        rows.append(("analysis", item.get("sequence"), item.get("recordedAt"), "ANALYSIS_RECORDED",
                     item.get("createdBy"), _details(item, ("sequence", "recordedAt", "createdBy"))))
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + buffer.getvalue()


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, sort_keys=False)


# Formats of export_audit_report: (renderer, media type, file extension).
RENDERERS: dict[str, tuple[Callable[[dict[str, Any]], str], str, str]] = {
    "csv": (render_csv, "text/csv; charset=utf-8", "csv"),
    "json": (render_json, "application/json; charset=utf-8", "json"),
    "html": (lambda report: _render_html(report), "text/html; charset=utf-8", "html"),
}


def _render_html(report: dict[str, Any]) -> str:
    from offerlab.service.report_html import render_html  # noqa: PLC0415 - only the html export needs it

    return render_html(report)

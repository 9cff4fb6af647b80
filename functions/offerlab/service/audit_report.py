"""The audit report (API.md §3 ``get_audit_report``, §4 ``export_audit_report``, §12), built from the ledger.

Everything in the report that describes history comes from the verified ledger entries — decoded from
their hashed bytes — not from the mutable documents: the experiment document only supplies the current
definition (name, hypothesis, approvers) and is itself covered by the ledger's EXPERIMENT_CHANGED
entries. The history sections are derived by ``ledger.report.history_sections``, a pure function the
offline verifier runs again on the report's own entries.

What makes the report checkable without trusting us (docs/ledger.md §12):

* ``checkpoint`` — the chain's signed checkpoint (a C2SP signed note) at the tree size the report covers,
  with the log's verifier key: the report is built from exactly the entries 1..treeSize of that tree;
* ``ledger.leaves`` — every one of those entries as its canonical bytes, hash and ``leafIndex``: anyone
  can hash them into the checkpoint's root (RFC 9162), i.e. check the inclusion of every entry;
* every history item carries its entry's ``sequence`` and ``leafIndex``;
* ``attestation`` — a signed note by the same key over the SHA-256 of the whole report without the
  attestation (RFC 8785 encoding), so an edit anywhere in an export is caught, including the parts the
  ledger does not cover (the current experiment document, alerts).

``integrity`` is ``verify_ledger``'s verdict on the whole chain, checkpoint included.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
from typing import Any, Callable

from offerlab.domain.clock import utcnow
from offerlab.ledger import note
from offerlab.ledger.canonical import canonicalize
from offerlab.ledger.chain import CANONICAL_FIELD, decode_entry
from offerlab.ledger.drafts import COHORT_CHAIN_PREFIX
from offerlab.ledger.report import attestation_text, history_sections, hypothesis_of
from offerlab.ledger.values import rfc3339, to_ledger_value
from offerlab.service import ledger as ledger_service
from offerlab.service.ledger import Ledger

log = logging.getLogger("offerlab.ledger")

PAGE = 1000
EXPERIMENT_FIELDS = ("experimentId", "name", "description", "status", "author", "offerType", "offerConfig",
                     "controlConfig", "holdoutCohortId", "treatmentPercentage", "plannedStartDate",
                     "plannedEndDate", "startedAt", "endedAt", "createdAt", "approvers", "kpis", "guardrails",
                     "coverage", "version")


def _entries(ledger: Ledger, chain_id: str, up_to: int | None) -> list[dict[str, Any]]:
    """Entries 1..up_to (all when None) as stored, in sequence order, page by page."""
    entries: list[dict[str, Any]] = []
    while True:
        page = ledger.repo.read_entries(chain_id, entries[-1]["sequence"] if entries else 0, PAGE)
        entries.extend(page)
        if len(page) < PAGE or (up_to is not None and len(entries) >= up_to):
            return entries[:up_to] if up_to is not None else entries


def report_digest(report: dict[str, Any]) -> str:
    """Base64 SHA-256 of the report's RFC 8785 encoding without its ``attestation``."""
    body = {k: v for k, v in report.items() if k != "attestation"}
    return base64.b64encode(hashlib.sha256(canonicalize(body)).digest()).decode()


def build_report(ledger: Ledger, chain_id: str) -> dict[str, Any]:
    """The report of one experiment (or a cohort chain, ``cohort:<id>``)."""
    integrity = ledger_service.verify_ledger(ledger, chain_id)  # seals pending entries first; NOT_FOUND if unknown
    checkpoint = None
    try:
        checkpoint = ledger_service.issue_checkpoint(ledger, chain_id)
    except ledger_service.LedgerIntegrityError:
        log.critical("ledger: chain %s does not extend its published checkpoint; report without checkpoint", chain_id)
    stored = _entries(ledger, chain_id, checkpoint["treeSize"] if checkpoint else None)
    entries = [decode_entry(e) or dict(e) for e in stored]  # what the hashed bytes say
    is_cohort = chain_id.startswith(COHORT_CHAIN_PREFIX)
    document = None if is_cohort else ledger.repo.read_experiment(chain_id)
    document = to_ledger_value(document) if document is not None else None
    hypothesis = (document or {}).get("hypothesis") or hypothesis_of(entries)
    report = {
        "experimentId": chain_id,
        "generatedAt": rfc3339(utcnow()),
        "experiment": {k: document.get(k) for k in EXPERIMENT_FIELDS if k in document} if document else None,
        "hypothesis": hypothesis,
        "currentApprovals": (document or {}).get("approvals") or {},
        **history_sections(entries),
        "alerts": [to_ledger_value(a) for a in ledger.repo.alerts_of_chain(chain_id)],
        "integrity": integrity,
        "checkpoint": None if checkpoint is None else {
            "note": checkpoint["checkpoint"], "treeSize": checkpoint["treeSize"], "rootHash": checkpoint["rootHash"],
            "origin": checkpoint["origin"], "verifierKey": checkpoint["verifierKey"]},
        "ledger": {"entries": len(entries), "headHash": entries[-1].get("hash") if entries else None,
                   "firstSequence": entries[0]["sequence"] if entries else None,
                   "lastSequence": entries[-1]["sequence"] if entries else None,
                   "treeSize": checkpoint["treeSize"] if checkpoint else None,
                   "leaves": [{"sequence": e.get("sequence"), "leafIndex": (e.get("sequence") or 0) - 1,
                               "hash": e.get("hash"), "canonical": e.get(CANONICAL_FIELD)} for e in stored]},
        "attestation": None,
    }
    if checkpoint is not None and ledger.signer is not None:
        text = attestation_text(checkpoint["origin"], checkpoint["treeSize"], report_digest(report))
        report["attestation"] = note.sign(text, [ledger.signer])
    return report


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
    checkpoint = report.get("checkpoint") or {}
    for key in ("treeSize", "rootHash", "origin", "verifierKey", "note"):
        if checkpoint:
            rows.append(("checkpoint", None, None, key, None, checkpoint.get(key)))
    if report.get("attestation"):
        rows.append(("attestation", None, report.get("generatedAt"), "note", None, report.get("attestation")))
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
    for leaf in (report.get("ledger") or {}).get("leaves") or []:
        rows.append(("entry", leaf.get("sequence"), None, "leaf", None,
                     {"leafIndex": leaf.get("leafIndex"), "hash": leaf.get("hash"), "canonical": leaf.get("canonical")}))
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

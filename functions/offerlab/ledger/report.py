"""The history sections of an audit report, derived from ledger entries alone (pure).

``service/audit_report.build_report`` puts them in the report; the offline verifier
(``offerlab_client/verify.py``) derives them again from the entries of an exported report, after
checking those entries against the signed checkpoint, and requires the two to be equal: so every
history section of a verified report is what the checkpointed ledger says, not what the exporter says.

How entries are classified (docs/ledger.md §9):

* timeline — lifecycle events (sourceKind EXPERIMENT_EVENT) with fromStatus/toStatus;
* approvals / rejections — lifecycle events whose eventType ends in APPROVED or APPROVAL_RECORDED /
  REJECTED: who (payload.approver, else the actor), when;
* guardrailActions — events whose eventType mentions GUARDRAIL, or whose payload carries violations
  (a guardrail's PAUSE/KILL is an EXPERIMENT_PAUSED/KILLED event with payload.violations);
* rolloutStages — rollout events (sourceKind ROLLOUT_EVENT) with fromStage/toStage, and lifecycle events
  that change the coverage (payload.toCoverage);
* analyses — ANALYSIS_RECORDED entries, with the digest of the stored analysis (snapshotDigest);
* spilloverViolations, unauthorisedChanges — their entries;
* shipping — ship requests, ship approvals and rejections, shipped and unshipped (API.md §10): which arm,
  whose config, who approved, which cohorts kept the status quo, what it replaced or was replaced by.

Every item names its entry by ``sequence`` and ``leafIndex`` (= sequence − 1, its Merkle leaf).
"""
from __future__ import annotations

from typing import Any, Iterable

from offerlab.domain.lifecycle import ExperimentEventType as E
from offerlab.ledger.drafts import UNAUTHORISED_CHANGE, SourceKind

SECTIONS = ("approvals", "rejections", "timeline", "guardrailActions", "rolloutStages", "analyses",
            "spilloverViolations", "unauthorisedChanges", "shipping")
# One approval (of a launch or of a ship), the last one included; a rejection of either.
APPROVAL_EVENTS = frozenset(e.value for e in (E.EXPERIMENT_APPROVED, E.EXPERIMENT_APPROVAL_RECORDED,
                                              E.EXPERIMENT_SHIP_APPROVAL_RECORDED))
REJECTION_EVENTS = frozenset(e.value for e in (E.EXPERIMENT_REJECTED, E.EXPERIMENT_SHIP_REJECTED))
SHIP_EVENTS = frozenset(e.value for e in (E.EXPERIMENT_SHIP_REQUESTED, E.EXPERIMENT_SHIP_APPROVAL_RECORDED,
                                          E.EXPERIMENT_SHIPPED, E.EXPERIMENT_SHIP_REJECTED, E.EXPERIMENT_UNSHIPPED))
SHIP_FIELDS = ("arm", "reason", "placement", "shippedConfig", "approver", "approved", "required", "coveringCohortIds",
               "replaces", "supersededBy")
ANALYSIS_FIELDS = ("analysisId", "metric", "rawPercentChange", "correctedPercentChange", "pValue",
                   "confidenceInterval", "sampleSizes", "srmPValue", "dataQuality", "recommendation",
                   "method", "inputsDigest", "createdBy", "currencyBreakdown")


def _inner(payload: dict[str, Any]) -> dict[str, Any]:
    """Lifecycle events keep their details under ``payload``; the entry's payload is the whole event."""
    inner = payload.get("payload")
    return inner if isinstance(inner, dict) else {}


def _when(entry: dict[str, Any]) -> Any:
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    return payload.get("occurredAt") or payload.get("createdAt") or payload.get("recordedAt") or entry.get("recordedAt")


def _ref(entry: dict[str, Any]) -> dict[str, Any]:
    sequence = entry.get("sequence")
    return {"sequence": sequence, "leafIndex": sequence - 1 if type(sequence) is int else None}


def _base(entry: dict[str, Any]) -> dict[str, Any]:
    return {**_ref(entry), "at": _when(entry), "eventType": entry.get("eventType"), "actor": entry.get("actor")}


def history_sections(entries: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The report's history sections from entries in sequence order."""
    timeline, approvals, rejections, guardrails, stages, analyses, spillovers, unauthorised, shipping = (
        [] for _ in range(9))
    for entry in entries:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        inner = _inner(payload)
        kind, event = str(entry.get("sourceKind") or ""), str(entry.get("eventType") or "").upper()
        if kind == SourceKind.EXPERIMENT_EVENT.value:
            timeline.append({**_base(entry), "fromStatus": payload.get("fromStatus"),
                             "toStatus": payload.get("toStatus"), "reason": inner.get("reason")})
            if event in APPROVAL_EVENTS:
                approvals.append({"approver": inner.get("approver") or entry.get("actor"), "approvedAt": _when(entry),
                                  "comment": inner.get("comment"), **_ref(entry)})
            elif event in REJECTION_EVENTS:
                rejections.append({"approver": entry.get("actor"), "rejectedAt": _when(entry),
                                   "reason": inner.get("reason"), **_ref(entry)})
            if event in SHIP_EVENTS:
                shipping.append({**_base(entry), **{k: inner.get(k) for k in SHIP_FIELDS}})
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
            analyses.append({**_ref(entry), "recordedAt": entry.get("recordedAt"),
                             **{k: payload.get(k) for k in ANALYSIS_FIELDS},
                             "digest": entry.get("snapshotDigest"), "entryHash": entry.get("hash")})
        elif kind == SourceKind.SPILLOVER_VIOLATION.value:
            spillovers.append({**_base(entry), **{k: payload.get(k) for k in (
                "fromUserId", "toUserId", "channel", "action", "reason", "cohortIds")}})
        if entry.get("eventType") == UNAUTHORISED_CHANGE:
            unauthorised.append({**_base(entry), "changedFields": payload.get("changedFields"),
                                 "changes": payload.get("changes"), "problems": payload.get("problems")})
    # The ledger's order is the order of recording; the report reads in the order things happened.
    for items, key in ((timeline, "at"), (approvals, "approvedAt"), (rejections, "rejectedAt"),
                       (guardrails, "at"), (stages, "at"), (shipping, "at")):
        items.sort(key=lambda item, k=key: (str(item.get(k) or ""), item.get("sequence") or 0))
    return {"approvals": approvals, "rejections": rejections, "timeline": timeline, "guardrailActions": guardrails,
            "rolloutStages": stages, "analyses": analyses, "spilloverViolations": spillovers,
            "unauthorisedChanges": unauthorised, "shipping": shipping}


def hypothesis_of(entries: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The hypothesis recorded with the experiment's lifecycle events (the first one that carries it)."""
    for entry in entries:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        inner = _inner(payload)
        if entry.get("sourceKind") == SourceKind.EXPERIMENT_EVENT.value and isinstance(inner.get("hypothesis"), dict):
            return inner["hypothesis"]
    return None


ATTESTATION_HEADER = "offerlab-audit-report/v1"


def attestation_text(origin_line: str, tree_size: int, digest_b64: str) -> str:
    """The note text by which the log key vouches for a whole exported report. Its second line is the
    origin, not a number, so it can never be mistaken for a checkpoint (tlog-checkpoint line 2 is a size)."""
    return f"{ATTESTATION_HEADER}\n{origin_line}\n{tree_size}\n{digest_b64}\n"

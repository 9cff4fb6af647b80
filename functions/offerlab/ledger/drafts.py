"""What the ledger records for each source event (docs/ledger.md §6): pure rules, no I/O.

A trigger hands over the source document (before/after images) and gets back *drafts*: ledger entries
without sequence, prevHash and hash, each for one chain, plus an alert when the change was not made
through the functions. The store records the drafts; the sequencer numbers and hashes them later.

Source documents are written by other areas while this one evolves, so every field is read
defensively: a missing or odd field never raises, the draft records what is there.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

from offerlab.ledger.canonical import canonicalize
from offerlab.ledger.chain import digest
from offerlab.ledger.values import to_ledger_value

UNATTRIBUTED_CHAIN = "unattributed"    # events that name no experiment or cohort (logged, still chained)
UNKNOWN_ACTOR = "unknown"
UNVERIFIED_ACTOR = "unattributed"      # a change that bypassed the functions has no trustworthy actor
COHORT_CHAIN_PREFIX = "cohort:"
EXCHANGE_RATES_CHAIN = "exchange-rates"  # every set_exchange_rates, in order (docs/regions.md §5)
MAX_PAYLOAD_BYTES = 256 * 1024         # a ledger entry must stay far below Firestore's 1 MiB document cap
MAX_CHANGES = 50                       # changed paths listed with their values in one entry


class SourceKind(str, enum.Enum):
    """Which trigger produced an entry (stored in the entry as ``sourceKind``)."""

    EXPERIMENT_EVENT = "EXPERIMENT_EVENT"        # experimentEvents, created
    ROLLOUT_EVENT = "ROLLOUT_EVENT"              # rolloutEvents, created
    ANALYSIS = "ANALYSIS"                        # experimentAnalyses, created
    SPILLOVER_VIOLATION = "SPILLOVER_VIOLATION"  # holdoutSpilloverEvents with violation == true, created
    EXPERIMENT_DOCUMENT = "EXPERIMENT_DOCUMENT"  # offerExperiments, any write
    COHORT_DOCUMENT = "COHORT_DOCUMENT"          # holdoutCohorts, any write
    EXCHANGE_RATES = "EXCHANGE_RATES"            # exchangeRates, created (never changed)


UNAUTHORISED_CHANGE = "UNAUTHORISED_CHANGE"


@dataclass(frozen=True)
class Draft:
    chain_id: str
    entry: dict[str, Any]                 # the DRAFT_FIELDS of chain.py
    alert: dict[str, Any] | None = None   # an alert to raise with the entry (unauthorised change)


@dataclass(frozen=True)
class SourceEvent:
    """A trigger's input, free of Firebase types: the document path, its id, both images, when recorded."""

    kind: SourceKind
    document: str                          # the document path: collection/id
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    recorded_at: str                       # RFC 3339, microseconds (values.rfc3339)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return self.document.rsplit("/", 1)[-1]


def cohort_chain(cohort_id: str) -> str:
    return f"{COHORT_CHAIN_PREFIX}{cohort_id}"


def _text(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = (data or {}).get(key)
    return value if isinstance(value, str) and value.strip() else None


def _valid_chain_id(value: str | None) -> str | None:
    """A usable chain id: a legal Firestore document id (no '/', not '.'/'..', not '__…__'), printable, short."""
    if not value or "/" in value or len(value) > 200 or not value.isprintable() or value in (".", ".."):
        return None
    if value.startswith("__") and value.endswith("__"):
        return None
    return value


def bounded_payload(value: dict[str, Any], snapshot_digest: str) -> dict[str, Any]:
    """The payload itself, or (if huge) its top-level field names and the digest of the whole."""
    if len(canonicalize(value)) <= MAX_PAYLOAD_BYTES:
        return value
    return {"truncated": True, "fields": sorted(value)[:200], "digest": snapshot_digest}


def _entry(source: SourceEvent, event_type: str, actor: str, payload: dict[str, Any], snapshot: Any) -> dict[str, Any]:
    snapshot_digest = digest(snapshot)
    return {"eventType": event_type, "actor": actor, "sourceKind": source.kind.value,
            "sourceDocument": source.document, "payload": bounded_payload(payload, snapshot_digest),
            "snapshotDigest": snapshot_digest, "recordedAt": source.recorded_at}


def drafts_for(source: SourceEvent) -> list[Draft]:
    """The drafts one source event produces (possibly none: a non-violation spillover check, a no-op write)."""
    if source.kind in (SourceKind.EXPERIMENT_DOCUMENT, SourceKind.COHORT_DOCUMENT):
        return _document_change(source)
    data = to_ledger_value(dict(source.after or {}))
    if source.kind is SourceKind.EXPERIMENT_EVENT or source.kind is SourceKind.ROLLOUT_EVENT:
        chain = _valid_chain_id(_text(data, "experimentId")) or _chain_from_doc_id(source.doc_id)
        default_type = "EXPERIMENT_EVENT" if source.kind is SourceKind.EXPERIMENT_EVENT else "ROLLOUT_EVENT"
        event_type = _text(data, "eventType") or default_type
        return [Draft(chain, _entry(source, event_type, _text(data, "actor") or UNKNOWN_ACTOR, data, data))]
    if source.kind is SourceKind.ANALYSIS:
        # An experiment's analysis goes on its chain; a holdout cohort's read-out (kind HOLDOUT, no
        # experimentId) on the cohort's chain.
        cohort = _valid_chain_id(_text(data, "cohortId"))
        chain = _valid_chain_id(_text(data, "experimentId")) or (cohort_chain(cohort) if cohort else UNATTRIBUTED_CHAIN)
        actor = _text(data, "createdBy") or _text(data, "actor") or UNKNOWN_ACTOR
        return [Draft(chain, _entry(source, "ANALYSIS_RECORDED", actor, data, data))]
    if source.kind is SourceKind.EXCHANGE_RATES:
        actor = _text(data, "setBy") or UNKNOWN_ACTOR
        return [Draft(EXCHANGE_RATES_CHAIN, _entry(source, "EXCHANGE_RATES_SET", actor, data, data))]
    if source.kind is SourceKind.SPILLOVER_VIOLATION:
        if data.get("violation") is not True:
            return []
        experiment = _valid_chain_id(_text(data, "experimentId"))
        if experiment:
            chains = [experiment]
        else:
            cohorts = data.get("cohortIds") if isinstance(data.get("cohortIds"), list) else []
            chains = sorted({cohort_chain(c) for c in cohorts if isinstance(c, str) and _valid_chain_id(c)})
            chains = chains or [UNATTRIBUTED_CHAIN]
        actor = _text(data, "actor") or UNKNOWN_ACTOR
        return [Draft(chain, _entry(source, "SPILLOVER_VIOLATION", actor, data, data)) for chain in chains]
    return []


def _chain_from_doc_id(doc_id: str) -> str:
    """``{experimentId}_{version}`` is the documented id of lifecycle and rollout events."""
    head, sep, _ = doc_id.rpartition("_")
    return _valid_chain_id(head) if sep and head else UNATTRIBUTED_CHAIN


# --- changes of experiment and cohort documents ------------------------------------------------------

def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the fields that differ (maps are descended into; lists compare whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths: list[str] = []
        for key in sorted(set(before) | set(after)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                paths.append(path)
            else:
                paths.extend(changed_paths(before[key], after[key], path))
        return paths
    if before == after and type(before) is type(after):
        return []
    return [prefix or "(document)"]


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def authorisation_problems(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                           changed: list[str]) -> list[str]:
    """Why a write did not come through the functions (docs/ledger.md §7); empty when it did.

    Every service write bumps ``version`` by exactly one and stamps ``lastChange.version`` with it.
    """
    if after is None:
        return ["the document was deleted (the functions never delete it)"]
    problems = []
    version = after.get("version")
    last_change = after.get("lastChange")
    stamped = last_change.get("version") if isinstance(last_change, dict) else None
    if type(version) is not int:
        problems.append("the document has no integer version")
    if type(stamped) is not int or stamped != version:
        problems.append("lastChange.version does not equal the document's version")
    if before is None and version != 1:
        problems.append("a new document must start at version 1")
    if before is not None and changed:
        previous = before.get("version")
        if previous == version:
            problems.append("fields changed without the version changing")
        elif type(previous) is not int or type(version) is not int or version != previous + 1:
            problems.append("the version did not advance by exactly one")
    return problems


def _document_change(source: SourceEvent) -> list[Draft]:
    before = to_ledger_value(dict(source.before)) if source.before is not None else None
    after = to_ledger_value(dict(source.after)) if source.after is not None else None
    changed = changed_paths(before or {}, after or {}) if (before is not None and after is not None) else \
        sorted((after or before or {}).keys())
    if before is not None and after is not None and not changed:
        return []  # a write that changed nothing
    is_experiment = source.kind is SourceKind.EXPERIMENT_DOCUMENT
    chain = (_valid_chain_id(source.doc_id) or UNATTRIBUTED_CHAIN) if is_experiment else \
        cohort_chain(source.doc_id)
    problems = authorisation_problems(before, after, changed)
    shown = changed[:MAX_CHANGES]
    last_change = (after or {}).get("lastChange") if isinstance((after or {}).get("lastChange"), dict) else None
    payload = {
        "document": "experiment" if is_experiment else "cohort",
        "documentId": source.doc_id,
        "operation": "create" if before is None else ("delete" if after is None else "update"),
        "fromVersion": (before or {}).get("version"), "toVersion": (after or {}).get("version"),
        "status": (after or before or {}).get("status"),
        "changedFields": shown, "changedFieldCount": len(changed),
        "changes": [{"path": p, "before": _at(before, p), "after": _at(after, p)} for p in shown]
        if before is not None else [],
        "lastChange": last_change,
    }
    snapshot = after if after is not None else before
    if not problems:
        actor = _text(last_change, "actor") or UNKNOWN_ACTOR
        event_type = "EXPERIMENT_CHANGED" if is_experiment else "COHORT_CHANGED"
        payload["action"] = _text(last_change, "action")
        return [Draft(chain, _entry(source, event_type, actor, payload, snapshot))]
    payload["problems"] = problems
    entry = _entry(source, UNAUTHORISED_CHANGE, UNVERIFIED_ACTOR, payload, snapshot)
    alert = {
        "type": UNAUTHORISED_CHANGE, "severity": "CRITICAL", "chainId": chain,
        "experimentId": source.doc_id if is_experiment else None,
        "cohortId": None if is_experiment else source.doc_id,
        "sourceDocument": source.document, "changedFields": shown, "problems": problems,
        "detectedAt": source.recorded_at, "acknowledged": False,
    }
    return [Draft(chain, entry, alert)]

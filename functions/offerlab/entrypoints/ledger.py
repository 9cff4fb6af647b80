"""The ledger's functions (API.md §3 "Ledger and reports", §4, §12; docs/ledger.md).

Callables: get_audit_trail, verify_ledger, get_audit_report, get_ledger_statistics, get_checkpoint,
get_inclusion_proof, get_consistency_proof. HTTP: export_audit_report. Firestore triggers that append
(one per source collection, docs/ledger.md §6). Schedule: ledger_sweep seals whatever a contended burst
left pending and checkpoints every chain that grew (harmless at any time).

This module wires the use cases to their storage: Firestore, Cloud Storage for published checkpoints,
and the signing key from configuration (``_ledger``).
"""
from __future__ import annotations

__all__ = [
    "get_audit_trail", "verify_ledger", "get_audit_report", "get_ledger_statistics", "export_audit_report",
    "get_checkpoint", "get_inclusion_proof", "get_consistency_proof",
    "ledger_on_experiment_event", "ledger_on_rollout_event", "ledger_on_analysis", "ledger_on_spillover_event",
    "ledger_on_experiment_write", "ledger_on_cohort_write", "ledger_sweep", "ledger_on_exchange_rates",
]

import logging
from datetime import datetime, timezone
from typing import Any

from firebase_functions import firestore_fn, https_fn, scheduler_fn

from offerlab.api import ledger as m
from offerlab.api.callable import handle
from offerlab.api.models import Empty
from offerlab.domain.errors import InvalidArgument
from offerlab.ledger.drafts import SourceEvent, SourceKind
from offerlab.ledger.values import rfc3339
from offerlab.store import collections as C

log = logging.getLogger("offerlab.ledger")


def _ledger():
    """The use cases' dependencies: Firestore, Cloud Storage, the key from configuration (lazy: cold start)."""
    from offerlab.service.ledger import Ledger  # noqa: PLC0415 - keeps main.py's import light
    from offerlab.store.checkpoints import (  # noqa: PLC0415
        GcsCheckpointPublisher, previous_verifiers_from_environment, signer_from_environment)
    from offerlab.store.ledger import FirestoreLedgerRepository  # noqa: PLC0415

    return Ledger(FirestoreLedgerRepository(), GcsCheckpointPublisher(), signer_from_environment(),
                  previous_verifiers_from_environment())


# --- callables --------------------------------------------------------------------------------------------

@https_fn.on_call()
def get_audit_trail(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import ledger as svc  # noqa: PLC0415 - keeps main.py's import light

    return handle(req, m.AuditTrailRequest, lambda caller, p: svc.get_audit_trail(
        _ledger(), p.experiment_id, p.after_sequence, p.limit), roles=m.AUDITORS)


@https_fn.on_call()
def verify_ledger(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import ledger as svc  # noqa: PLC0415

    return handle(req, m.ChainRef, lambda caller, p: svc.verify_ledger(_ledger(), p.experiment_id), roles=m.AUDITORS)


@https_fn.on_call()
def get_checkpoint(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import ledger as svc  # noqa: PLC0415

    return handle(req, m.ChainRef, lambda caller, p: svc.get_checkpoint(_ledger(), p.experiment_id), roles=m.AUDITORS)


@https_fn.on_call()
def get_inclusion_proof(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import ledger as svc  # noqa: PLC0415

    return handle(req, m.InclusionProofRequest, lambda caller, p: svc.get_inclusion_proof(
        _ledger(), p.experiment_id, p.sequence, p.tree_size), roles=m.AUDITORS)


@https_fn.on_call()
def get_consistency_proof(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import ledger as svc  # noqa: PLC0415

    return handle(req, m.ConsistencyProofRequest, lambda caller, p: svc.get_consistency_proof(
        _ledger(), p.experiment_id, p.from_size, p.to_size), roles=m.AUDITORS)


@https_fn.on_call()
def get_audit_report(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import audit_report  # noqa: PLC0415

    return handle(req, m.ChainRef, lambda caller, p: audit_report.build_report(_ledger(), p.experiment_id),
                  roles=m.REPORT_READERS)


@https_fn.on_call()
def get_ledger_statistics(req: https_fn.CallableRequest) -> dict:
    from offerlab.service import ledger as svc  # noqa: PLC0415

    return handle(req, Empty, lambda caller, p: svc.ledger_statistics(_ledger()), roles=m.STATISTICS_READERS)


# --- HTTP export ------------------------------------------------------------------------------------------

@https_fn.on_request()
def export_audit_report(req: https_fn.Request) -> https_fn.Response:
    from firebase_admin import auth  # noqa: PLC0415

    from offerlab.service import audit_report  # noqa: PLC0415

    try:
        args = m.query_args(req.args)
    except InvalidArgument as err:
        body, status, headers = m.error_response(err.code, err.message, err.details)
        return https_fn.Response(body, status=status, headers=headers)
    body, status, headers = m.export(req.method, req.headers.get("Authorization"), args, auth.verify_id_token,
                                     lambda chain_id: audit_report.build_report(_ledger(), chain_id),
                                     audit_report.RENDERERS)
    return https_fn.Response(body, status=status, headers=headers)


# --- triggers that append ---------------------------------------------------------------------------------

def _data(snapshot: Any) -> dict[str, Any] | None:
    if snapshot is None or not getattr(snapshot, "exists", True):
        return None
    return snapshot.to_dict() or {}


def _stamp(snapshot: Any, fallback: str) -> str:
    """What identifies this write of the document across redeliveries: its update time, else the event id."""
    value = getattr(snapshot, "update_time", None) if snapshot is not None else None
    return str(value) if value else fallback


def _append(event: Any, kind: SourceKind, before: Any, after: Any) -> None:
    """Record one source event. Never raises: firebase-functions 0.6.0 Firestore triggers are not retried
    (FirestoreOptions has no ``retry``), so a failure is logged loudly, never looped on."""
    from offerlab.service import ledger as svc  # noqa: PLC0415

    try:
        source = SourceEvent(kind=kind, document=event.document, before=_data(before), after=_data(after),
                             recorded_at=rfc3339(datetime.now(timezone.utc)))
        key = f"{kind.value}|{event.document}|{_stamp(after, event.id)}"
        svc.record_source_event(_ledger(), source, key)
    except Exception:
        log.exception("ledger: could not record event %s on %s; dropped", getattr(event, "id", "?"),
                      getattr(event, "document", "?"))


@firestore_fn.on_document_created(document=f"{C.EXPERIMENT_EVENTS}/{{eventId}}")
def ledger_on_experiment_event(event: firestore_fn.Event) -> None:
    _append(event, SourceKind.EXPERIMENT_EVENT, None, event.data)


@firestore_fn.on_document_created(document=f"{C.ROLLOUT_EVENTS}/{{eventId}}")
def ledger_on_rollout_event(event: firestore_fn.Event) -> None:
    _append(event, SourceKind.ROLLOUT_EVENT, None, event.data)


@firestore_fn.on_document_created(document=f"{C.EXPERIMENT_ANALYSES}/{{analysisId}}")
def ledger_on_analysis(event: firestore_fn.Event) -> None:
    _append(event, SourceKind.ANALYSIS, None, event.data)


@firestore_fn.on_document_created(document=f"{C.HOLDOUT_SPILLOVER_EVENTS}/{{eventId}}")
def ledger_on_spillover_event(event: firestore_fn.Event) -> None:
    # Only violations are ledgered; the cheap check avoids a transaction for every allowed check.
    data = _data(event.data) or {}
    if data.get("violation") is True:
        _append(event, SourceKind.SPILLOVER_VIOLATION, None, event.data)


@firestore_fn.on_document_written(document=f"{C.OFFER_EXPERIMENTS}/{{experimentId}}")
def ledger_on_experiment_write(event: firestore_fn.Event) -> None:
    _append(event, SourceKind.EXPERIMENT_DOCUMENT, event.data.before, event.data.after)


@firestore_fn.on_document_written(document=f"{C.HOLDOUT_COHORTS}/{{cohortId}}")
def ledger_on_cohort_write(event: firestore_fn.Event) -> None:
    _append(event, SourceKind.COHORT_DOCUMENT, event.data.before, event.data.after)


@firestore_fn.on_document_created(document=f"{C.EXCHANGE_RATES}/{{ratesId}}")
def ledger_on_exchange_rates(event: firestore_fn.Event) -> None:
    _append(event, SourceKind.EXCHANGE_RATES, None, event.data)


# --- schedule ---------------------------------------------------------------------------------------------

@scheduler_fn.on_schedule(schedule="every 5 minutes")
def ledger_sweep(event: scheduler_fn.ScheduledEvent) -> None:
    from offerlab.service import ledger as svc  # noqa: PLC0415

    result = svc.sweep(_ledger())
    log.info("ledger_sweep: %s", result)

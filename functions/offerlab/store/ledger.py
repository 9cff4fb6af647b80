"""Repository of the ledger (docs/ledger.md §8): pending entries, sealed entries, chain heads, alerts.

Layout (collection names in store/collections.py):

    ledgerHeads/{chainId}                           {chainId, lastSequence, headHash, count, updatedAt}
    ledgerHeads/{chainId}/pendingEntries/{id}       a recorded draft, not yet numbered (id from the source event)
    experimentLedger/{chainId}_{sequence:012d}      a sealed entry (chain.ENTRY_FIELDS)
    experimentAlerts/{alertId}                      an alert (same id as the pending entry that raised it)

Recording a draft touches only its own new documents, so any number of triggers record concurrently
without contention. Sequencing is one transaction on the chain head that seals a batch of pending
entries in (recordedAt, id) order; it is the only writer of entries and heads.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Iterable

from offerlab.domain.errors import Aborted
from offerlab.ledger.chain import GENESIS_HASH, entry_doc_id, seal
from offerlab.ledger.drafts import UNAUTHORISED_CHANGE
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.transaction import run_in_transaction

log = logging.getLogger("offerlab.ledger")

# One sequencing transaction seals at most this many entries: each costs two writes (create the entry,
# delete the pending record) and Firestore allows 500 writes per transaction.
SEQUENCE_BATCH = 200


def head_ref(chain_id: str):
    return db().collection(C.LEDGER_HEADS).document(chain_id)


def pending_collection(chain_id: str):
    return head_ref(chain_id).collection(C.LEDGER_PENDING)


def entry_ref(chain_id: str, sequence: int):
    return db().collection(C.EXPERIMENT_LEDGER).document(entry_doc_id(chain_id, sequence))


def alert_ref(alert_id: str):
    return db().collection(C.EXPERIMENT_ALERTS).document(alert_id)


def record_pending(transaction: Any, chain_id: str, pending_id: str, draft: dict[str, Any],
                   alert: dict[str, Any] | None) -> None:
    """Inside ``apply_once``'s transaction: create the pending record (and its alert). Writes only."""
    transaction.create(pending_collection(chain_id).document(pending_id), {**draft, "chainId": chain_id})
    if alert is not None:
        transaction.create(alert_ref(pending_id), {**alert, "alertId": pending_id,
                                                   "raisedAt": datetime.now(timezone.utc)})


def pending_ids(chain_id: str, limit: int = SEQUENCE_BATCH) -> list[str]:
    """Ids of the chain's pending records in sealing order: (recordedAt, id). Read outside any transaction."""
    from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415 - lazy (cold start)

    query = pending_collection(chain_id).order_by("recordedAt").order_by(FieldPath.document_id()).limit(limit)
    return [snap.id for snap in query.stream()]


def pending_exists(chain_id: str, pending_id: str) -> bool:
    return pending_collection(chain_id).document(pending_id).get().exists


def count_pending(chain_id: str) -> int:
    return _count(pending_collection(chain_id))


def sequence_pending(chain_id: str, limit: int = SEQUENCE_BATCH) -> int:
    """Seal the oldest pending records of a chain after its head, in one transaction; how many were sealed.

    The pending ids are listed outside the transaction and each is re-read inside it (point reads lock
    documents, not a query range), so a record created meanwhile simply waits for the next run. Raises
    ``Aborted`` when another sequencer holds the head (the caller retries).
    """
    ids = pending_ids(chain_id, limit)
    if not ids:
        return 0
    head = head_ref(chain_id)
    refs = [pending_collection(chain_id).document(i) for i in ids]

    def body(transaction: Any) -> int:
        head_snap = head.get(transaction=transaction)
        found = {snap.id: snap.to_dict() for snap in transaction.get_all(refs) if snap.exists}
        drafts = [found[i] for i in ids if i in found]
        if not drafts:
            return 0
        state = head_snap.to_dict() if head_snap.exists else {"lastSequence": 0, "headHash": GENESIS_HASH, "count": 0}
        last, head_hash, count = state.get("lastSequence"), state.get("headHash"), state.get("count")
        if type(last) is not int or type(head_hash) is not str or type(count) is not int:
            # A head that is not ours (edited or replaced): never overwrite the evidence. The entries stay
            # pending and verify_ledger reports the head (HEAD_INVALID / HEAD_HASH_MISMATCH).
            log.error("ledger: head of chain %s is malformed; not sequencing", chain_id)
            return 0
        sealed = seal(chain_id, drafts, last, head_hash)
        for entry in sealed:
            transaction.create(entry_ref(chain_id, entry["sequence"]), entry)
        for i in ids:
            if i in found:
                transaction.delete(pending_collection(chain_id).document(i))
        transaction.set(head, {"chainId": chain_id, "lastSequence": sealed[-1]["sequence"],
                               "headHash": sealed[-1]["hash"], "count": count + len(sealed),
                               "updatedAt": datetime.now(timezone.utc)})
        return len(sealed)

    from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415 - lazy (cold start)

    try:
        return run_in_transaction(body)
    except AlreadyExists:
        # Another sequencer sealed the same sequence number first: the emulator reports the losing
        # commit's entry creation as ALREADY_EXISTS rather than ABORTED. Contention all the same.
        raise Aborted("Another sequencer holds the chain's head.") from None


def read_head(chain_id: str) -> dict[str, Any] | None:
    snap = head_ref(chain_id).get()
    return snap.to_dict() if snap.exists else None


def read_chain(chain_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every stored entry that claims this chain, as (document id, data), in no particular order.

    Read by the ``experimentId`` field (a single-field index, automatic) rather than by id range, so
    an entry copied under another id is still seen, and flagged, by verification.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.EXPERIMENT_LEDGER).where(filter=FieldFilter("experimentId", "==", chain_id))
    return [(snap.id, snap.to_dict()) for snap in query.stream()]


def read_entries(chain_id: str, after_sequence: int, limit: int) -> list[dict[str, Any]]:
    """Entries ``after_sequence + 1`` … in sequence order, by document id range (ids sort by sequence)."""
    from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415

    ledger = db().collection(C.EXPERIMENT_LEDGER)
    start = ledger.document(entry_doc_id(chain_id, after_sequence + 1))
    end = ledger.document(entry_doc_id(chain_id, 10**12 - 1))
    query = ledger.order_by(FieldPath.document_id()).start_at([start]).end_at([end]).limit(limit)
    return [snap.to_dict() for snap in query.stream()]


def chains_with_pending(limit: int = 500) -> list[str]:
    """Chains that have pending records (a collection-group scan), for the sweep."""
    chains = []
    for snap in db().collection_group(C.LEDGER_PENDING).limit(limit).stream():
        chain = snap.reference.parent.parent.id if snap.reference.parent.parent is not None else None
        if chain and chain not in chains:
            chains.append(chain)
    return chains


def alerts_of_chain(chain_id: str, limit: int = 200) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.EXPERIMENT_ALERTS).where(filter=FieldFilter("chainId", "==", chain_id)).limit(limit)
    return [snap.to_dict() for snap in query.stream()]


def read_experiment(experiment_id: str) -> dict[str, Any] | None:
    snap = db().collection(C.OFFER_EXPERIMENTS).document(experiment_id).get()
    return snap.to_dict() if snap.exists else None


def read_cohort(cohort_id: str) -> dict[str, Any] | None:
    snap = db().collection(C.HOLDOUT_COHORTS).document(cohort_id).get()
    return snap.to_dict() if snap.exists else None


def _count(query: Any) -> int:
    result = query.count(alias="n").get()
    return int(result[0][0].value) if result and result[0] else 0


def ledger_statistics(active: Iterable[str], completed: Iterable[str], killed: Iterable[str]) -> dict[str, int]:
    """Counts by aggregation queries (no document is read): experiments by status, entries, chains."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    experiments = db().collection(C.OFFER_EXPERIMENTS)

    def by_status(statuses: Iterable[str]) -> int:
        return _count(experiments.where(filter=FieldFilter("status", "in", list(statuses))))

    return {
        "totalExperiments": _count(experiments),
        "activeExperiments": by_status(active),
        "completedExperiments": by_status(completed),
        "killedExperiments": by_status(killed),
        "totalEntries": _count(db().collection(C.EXPERIMENT_LEDGER)),
        "totalChains": _count(db().collection(C.LEDGER_HEADS)),
        "unauthorisedChanges": _count(db().collection(C.EXPERIMENT_ALERTS).where(
            filter=FieldFilter("type", "==", UNAUTHORISED_CHANGE))),
    }

"""Firestore repository of the ledger (docs/ledger.md §8, §11): pending entries, sealed entries, chain
heads with their Merkle tree, tree nodes, checkpoint records, alerts.

Layout (collection names in store/collections.py, and the two sub-collections below):

    ledgerHeads/{chainId}                           the head: {chainId, lastSequence, headHash, count,
                                                    treeSize, frontier[], rootHash, checkpointSize,
                                                    checkpointDue, updatedAt}
    ledgerHeads/{chainId}/pendingEntries/{id}       a recorded draft, not yet numbered (id from the source event)
    ledgerHeads/{chainId}/treeNodes/{LL}_{index}    a perfect subtree of the chain's Merkle tree {level, index, hash}
    ledgerHeads/{chainId}/checkpoints/{size:012d}   a signed checkpoint, as published {treeSize, rootHash, note, ...}
    experimentLedger/{chainId}_{sequence:012d}      a sealed entry (chain.STORED_FIELDS)
    experimentAlerts/{alertId}                      an alert (same id as the pending entry that raised it)

Recording a draft touches only its own new documents, so any number of triggers record concurrently
without contention. Sequencing is one transaction on the chain head that seals a batch of pending
entries in (recordedAt, id) order and grows the Merkle tree from the head's frontier (merkle.append):
it reads the head and the batch, never the chain. It is the only writer of entries, nodes and heads.
"""
from __future__ import annotations

import base64
import logging
from datetime import datetime, timezone
from typing import Any, Iterable

from offerlab.domain.errors import Aborted
from offerlab.ledger.chain import entry_doc_id
from offerlab.ledger.drafts import UNAUTHORISED_CHANGE
from offerlab.ledger.head import grow, new_head_state
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.idempotency import apply_once
from offerlab.store.transaction import run_in_transaction

log = logging.getLogger("offerlab.ledger")

# Sub-collections of ledgerHeads/{chainId} besides pendingEntries (documented in docs/ledger.md §11).
LEDGER_TREE_NODES = "treeNodes"
LEDGER_CHECKPOINTS = "checkpoints"

# One sequencing transaction seals at most this many entries. Each costs two writes (create the entry,
# delete the pending record) plus the tree nodes it completes (one on average, besides its leaf), and
# Firestore allows 500 writes per transaction: 100 entries are at most ~410 writes.
SEQUENCE_BATCH = 100


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def node_doc_id(level: int, index: int) -> str:
    return f"{level:02d}_{index:012d}"


class FirestoreLedgerRepository:
    """The ledger's repository on Firestore (service.ledger.LedgerRepository)."""

    # --- documents ---------------------------------------------------------------------------------------
    def _head(self, chain_id: str):
        return db().collection(C.LEDGER_HEADS).document(chain_id)

    def _pending(self, chain_id: str):
        return self._head(chain_id).collection(C.LEDGER_PENDING)

    def _nodes(self, chain_id: str):
        return self._head(chain_id).collection(LEDGER_TREE_NODES)

    def _checkpoints(self, chain_id: str):
        return self._head(chain_id).collection(LEDGER_CHECKPOINTS)

    def _entry(self, chain_id: str, sequence: int):
        return db().collection(C.EXPERIMENT_LEDGER).document(entry_doc_id(chain_id, sequence))

    def _alert(self, alert_id: str):
        return db().collection(C.EXPERIMENT_ALERTS).document(alert_id)

    # --- recording ---------------------------------------------------------------------------------------
    def record_once(self, scope: str, event_key: str,
                    records: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]) -> bool:
        """Record (chain id, pending id, draft, alert) tuples exactly once per event key, in one
        transaction with the processed-event marker (``apply_once``, which re-runs a contended
        transaction a bounded number of times and raises ``Aborted`` after). True when recorded now."""
        def effect(transaction: Any) -> None:
            now = datetime.now(timezone.utc)
            for chain_id, pending_id, draft, alert in records:
                transaction.create(self._pending(chain_id).document(pending_id), {**draft, "chainId": chain_id})
                if alert is not None:
                    transaction.create(self._alert(pending_id), {**alert, "alertId": pending_id, "raisedAt": now})

        return apply_once(scope, event_key, effect)

    def pending_exists(self, chain_id: str, pending_id: str) -> bool:
        return self._pending(chain_id).document(pending_id).get().exists

    def count_pending(self, chain_id: str) -> int:
        return _count(self._pending(chain_id))

    def _pending_ids(self, chain_id: str, limit: int) -> list[str]:
        from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415 - lazy (cold start)

        query = self._pending(chain_id).order_by("recordedAt").order_by(FieldPath.document_id()).limit(limit)
        return [snap.id for snap in query.stream()]

    def sequence_pending(self, chain_id: str, limit: int = SEQUENCE_BATCH) -> list[dict[str, Any]]:
        """Seal the oldest pending records of a chain after its head, in one transaction; the sealed entries.

        The pending ids are listed outside the transaction and each is re-read inside it (point reads lock
        documents, not a query range), so a record created meanwhile waits for the next run. Raises
        ``Aborted`` when another sequencer holds the head (the caller decides whether to try again) and
        ``head.MalformedHead`` when the head is not ours (never overwritten: it is evidence).
        """
        ids = self._pending_ids(chain_id, limit)
        if not ids:
            return []
        head = self._head(chain_id)
        refs = [self._pending(chain_id).document(i) for i in ids]

        def body(transaction: Any) -> list[dict[str, Any]]:
            head_snap = head.get(transaction=transaction)
            found = {snap.id: snap.to_dict() for snap in transaction.get_all(refs) if snap.exists}
            drafts = [found[i] for i in ids if i in found]
            if not drafts:
                return []
            state = head_snap.to_dict() if head_snap.exists else new_head_state()
            sealed, nodes, new_head = grow(chain_id, state, drafts)
            for entry in sealed:
                transaction.create(self._entry(chain_id, entry["sequence"]), entry)
            for level, index, value in nodes:
                transaction.create(self._nodes(chain_id).document(node_doc_id(level, index)),
                                   {"level": level, "index": index, "hash": _b64(value)})
            for i in ids:
                if i in found:
                    transaction.delete(self._pending(chain_id).document(i))
            transaction.set(head, {**new_head, "updatedAt": datetime.now(timezone.utc)})
            return sealed

        from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415 - lazy (cold start)

        try:
            return run_in_transaction(body)
        except AlreadyExists:
            # Another sequencer sealed the same sequence number first: the emulator reports the losing
            # commit's entry creation as ALREADY_EXISTS rather than ABORTED. Contention all the same.
            raise Aborted("Another sequencer holds the chain's head.") from None

    def chains_with_pending(self, limit: int = 500) -> list[str]:
        """Chains that have pending records (a collection-group scan), for the sweep."""
        chains: list[str] = []
        for snap in db().collection_group(C.LEDGER_PENDING).limit(limit).stream():
            parent = snap.reference.parent.parent
            if parent is not None and parent.id not in chains:
                chains.append(parent.id)
        return chains

    # --- reading -----------------------------------------------------------------------------------------
    def read_head(self, chain_id: str) -> dict[str, Any] | None:
        snap = self._head(chain_id).get()
        return snap.to_dict() if snap.exists else None

    def read_chain(self, chain_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every stored entry that claims this chain, as (document id, data), in no particular order.

        Read by the ``experimentId`` field (a single-field index, automatic) rather than by id range, so
        an entry copied under another id is still seen, and flagged, by verification.
        """
        from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

        query = db().collection(C.EXPERIMENT_LEDGER).where(filter=FieldFilter("experimentId", "==", chain_id))
        return [(snap.id, snap.to_dict()) for snap in query.stream()]

    def read_entries(self, chain_id: str, after_sequence: int, limit: int) -> list[dict[str, Any]]:
        """Entries ``after_sequence + 1`` … in sequence order, by document id range (ids sort by sequence)."""
        from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415

        ledger = db().collection(C.EXPERIMENT_LEDGER)
        start = ledger.document(entry_doc_id(chain_id, after_sequence + 1))
        end = ledger.document(entry_doc_id(chain_id, 10**12 - 1))
        query = ledger.order_by(FieldPath.document_id()).start_at([start]).end_at([end]).limit(limit)
        return [snap.to_dict() for snap in query.stream()]

    def read_entry(self, chain_id: str, sequence: int) -> dict[str, Any] | None:
        snap = self._entry(chain_id, sequence).get()
        return snap.to_dict() if snap.exists else None

    def read_nodes(self, chain_id: str, nodes: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of these tree nodes (one batched read); a missing or unreadable node is absent."""
        wanted = list(nodes)
        refs = [self._nodes(chain_id).document(node_doc_id(level, index)) for level, index in wanted]
        found: dict[tuple[int, int], bytes] = {}
        for snap in db().get_all(refs) if refs else []:
            data = snap.to_dict() if snap.exists else None
            if not data:
                continue
            try:
                found[(int(data["level"]), int(data["index"]))] = base64.b64decode(data["hash"], validate=True)
            except (KeyError, TypeError, ValueError):
                continue
        return found

    # --- checkpoints -------------------------------------------------------------------------------------
    def record_checkpoint(self, chain_id: str, size: int, record: dict[str, Any]) -> None:
        """Keep a published checkpoint and advance the head's ``checkpointSize`` (never backwards)."""
        head = self._head(chain_id)
        ref = self._checkpoints(chain_id).document(f"{size:012d}")

        def body(transaction: Any) -> None:
            snap = head.get(transaction=transaction)
            state = snap.to_dict() if snap.exists else {}
            current = state.get("checkpointSize") if type(state.get("checkpointSize")) is int else 0
            transaction.set(ref, {**record, "chainId": chain_id, "treeSize": size,
                                  "recordedAt": datetime.now(timezone.utc)})
            if size >= current:
                transaction.update(head, {"checkpointSize": size,
                                          "checkpointDue": state.get("treeSize", size) > size})

        run_in_transaction(body)

    def read_checkpoint(self, chain_id: str, size: int) -> dict[str, Any] | None:
        snap = self._checkpoints(chain_id).document(f"{size:012d}").get()
        return snap.to_dict() if snap.exists else None

    def chains_due_checkpoint(self, limit: int = 100) -> list[str]:
        """Chains whose tree grew since their last checkpoint (the head's ``checkpointDue`` flag)."""
        from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

        query = db().collection(C.LEDGER_HEADS).where(filter=FieldFilter("checkpointDue", "==", True)).limit(limit)
        return [snap.id for snap in query.stream()]

    # --- context for reports -----------------------------------------------------------------------------
    def alerts_of_chain(self, chain_id: str, limit: int = 200) -> list[dict[str, Any]]:
        from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

        query = db().collection(C.EXPERIMENT_ALERTS).where(filter=FieldFilter("chainId", "==", chain_id)).limit(limit)
        return [snap.to_dict() for snap in query.stream()]

    def read_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        snap = db().collection(C.OFFER_EXPERIMENTS).document(experiment_id).get()
        return snap.to_dict() if snap.exists else None

    def read_cohort(self, cohort_id: str) -> dict[str, Any] | None:
        snap = db().collection(C.HOLDOUT_COHORTS).document(cohort_id).get()
        return snap.to_dict() if snap.exists else None

    def ledger_statistics(self, active: Iterable[str], completed: Iterable[str], killed: Iterable[str]) -> dict[str, int]:
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


def _count(query: Any) -> int:
    result = query.count(alias="n").get()
    return int(result[0][0].value) if result and result[0] else 0

"""Ledger use cases (ExperimentLedgerService): record source events, sequence chains, sign and publish
checkpoints, hand out proofs, read and verify. Every use case takes a ``Ledger`` (its repository, the
checkpoint publisher and the log's signer) as a parameter, so the logic runs on in-memory fakes in the
unit tests (tests/unit/test_ledger_service.py) and on Firestore + Cloud Storage in the functions.

Appending is two steps (docs/ledger.md §8):

1. ``record_source_event`` — called by the triggers — turns a source event into drafts and records them
   as pending entries, exactly once per event (the repository's ``record_once``: one transaction with
   the processed-event marker; it re-runs a contended transaction a bounded number of times itself).
2. ``sequence_chain`` seals the chain's pending entries in batches, one transaction on the chain head,
   growing the chain's Merkle tree from the head's frontier. This loop is the ledger's only retry
   policy: at most ``SEQUENCE_ATTEMPTS`` runs with full-jitter back-off, stopping as soon as the
   caller's records are sealed by anyone. What is left pending is sealed by the next trigger of the
   chain, by readers (trail, verification, reports) and by the ``ledger_sweep`` schedule.

Checkpoints (docs/ledger.md §11) are issued whenever a sealed batch holds a change of an experiment's
state, on the schedule for every chain that grew, and on demand (``get_checkpoint``, reports). Before
signing, the new tree is checked against the last *published* checkpoint with a consistency proof
built from the stored nodes: the log never signs a tree inconsistent with one it signed before, even
if someone rewrote the database (then issuing stops and ``verify_ledger`` names the rewrite).
"""
from __future__ import annotations

import base64
import hashlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from offerlab.domain.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from offerlab.domain.types import ExperimentStatus
from offerlab.ledger import merkle, note
from offerlab.ledger.chain import ChainError, decode_entry, verify_chain
from offerlab.ledger.checkpoint import Checkpoint, origin
from offerlab.ledger.drafts import COHORT_CHAIN_PREFIX, SourceEvent, SourceKind, drafts_for
from offerlab.ledger.head import MalformedHead

log = logging.getLogger("offerlab.ledger")

SCOPE = "ledger"              # the processed-event scope of the append triggers
SEQUENCE_ATTEMPTS = 8         # sequencing contends with the other sequencers of the chain
BACKOFF_SECONDS = 0.15        # base of the jittered, linearly growing back-off


class LedgerRepository(Protocol):
    """What the use cases need from storage (store.ledger.FirestoreLedgerRepository; a fake in tests)."""

    def record_once(self, scope: str, event_key: str,
                    records: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]) -> bool: ...
    def pending_exists(self, chain_id: str, pending_id: str) -> bool: ...
    def count_pending(self, chain_id: str) -> int: ...
    def sequence_pending(self, chain_id: str) -> list[dict[str, Any]]: ...
    def chains_with_pending(self) -> list[str]: ...
    def read_head(self, chain_id: str) -> dict[str, Any] | None: ...
    def read_chain(self, chain_id: str) -> list[tuple[str, dict[str, Any]]]: ...
    def read_entries(self, chain_id: str, after_sequence: int, limit: int) -> list[dict[str, Any]]: ...
    def read_entry(self, chain_id: str, sequence: int) -> dict[str, Any] | None: ...
    def read_nodes(self, chain_id: str, nodes: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...
    def record_checkpoint(self, chain_id: str, size: int, record: dict[str, Any]) -> None: ...
    def read_checkpoint(self, chain_id: str, size: int) -> dict[str, Any] | None: ...
    def chains_due_checkpoint(self) -> list[str]: ...
    def alerts_of_chain(self, chain_id: str) -> list[dict[str, Any]]: ...
    def read_experiment(self, experiment_id: str) -> dict[str, Any] | None: ...
    def read_cohort(self, cohort_id: str) -> dict[str, Any] | None: ...
    def ledger_statistics(self, active: Iterable[str], completed: Iterable[str],
                          killed: Iterable[str]) -> dict[str, int]: ...


class CheckpointPublisher(Protocol):
    """Where checkpoints are written so that the functions cannot rewrite them (store.checkpoints)."""

    def publish(self, chain_id: str, size: int, note_text: str) -> str: ...
    def read(self, chain_id: str, size: int) -> str | None: ...
    def sizes(self, chain_id: str, at_least: int = 0) -> list[int]: ...


@dataclass(frozen=True)
class Ledger:
    repo: LedgerRepository
    publisher: CheckpointPublisher
    signer: note.Signer | None                      # None: checkpoints are not configured
    previous_keys: tuple[note.Verifier, ...] = ()   # keys of earlier checkpoints (after a rotation)
    sleep: Callable[[float], None] = time.sleep

    @property
    def log_name(self) -> str:
        return self.signer.name if self.signer else ""

    @property
    def verifiers(self) -> list[note.Verifier]:
        return ([self.signer.verifier] if self.signer else []) + list(self.previous_keys)


class LedgerIntegrityError(Exception):
    """The stored tree does not extend the published checkpoints: nothing may be signed."""


def _backoff(ledger: Ledger, attempt: int) -> None:
    # "Full jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): de-synchronises the
    # sequencers of a burst so that one of them wins the head each round instead of all colliding again.
    ledger.sleep(random.uniform(0, BACKOFF_SECONDS * (attempt + 1)))


def pending_id(event_key: str, chain_id: str) -> str:
    """Deterministic id of the pending record of (source event, chain): a redelivery targets the same id."""
    return hashlib.sha256(f"{event_key}|{chain_id}".encode()).hexdigest()[:40]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


# --- appending --------------------------------------------------------------------------------------------

def record_source_event(ledger: Ledger, source: SourceEvent, event_key: str) -> list[str]:
    """Record the drafts of one source event (exactly once per ``event_key``) and sequence their chains.

    Returns the chains it touched. Never raises for a bad source document: drafts read it defensively.
    """
    drafts = drafts_for(source)
    if not drafts:
        return []
    records = [(d.chain_id, pending_id(event_key, d.chain_id), d.entry, d.alert) for d in drafts]
    if not ledger.repo.record_once(SCOPE, event_key, records):
        log.info("ledger: event %s already recorded", event_key)
    chains: dict[str, list[str]] = {}
    for chain_id, record_id, _, _ in records:
        chains.setdefault(chain_id, []).append(record_id)
    for chain_id, ids in chains.items():
        sequence_chain(ledger, chain_id, wait_for=ids)
    return list(chains)


def is_state_change(entry: dict[str, Any]) -> bool:
    """A sealed lifecycle event that moves the experiment to another state: a checkpoint follows."""
    payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
    return (entry.get("sourceKind") == SourceKind.EXPERIMENT_EVENT.value and payload.get("toStatus") is not None
            and payload.get("toStatus") != payload.get("fromStatus"))


def sequence_chain(ledger: Ledger, chain_id: str, wait_for: list[str] | None = None,
                   attempts: int = SEQUENCE_ATTEMPTS) -> bool:
    """Seal the chain's pending entries. With ``wait_for``: until those records are sealed (by anyone);
    without: until none is pending. False when it gave up (contention): they stay pending, nothing is lost.
    Issues a checkpoint when it sealed a change of state."""
    repo = ledger.repo
    state_changed = False
    try:
        for attempt in range(attempts):
            if wait_for is not None and not any(repo.pending_exists(chain_id, i) for i in wait_for):
                return True
            try:
                sealed = repo.sequence_pending(chain_id)
            except Aborted:
                _backoff(ledger, attempt)
                continue
            except MalformedHead:
                # A head that is not ours (edited or replaced): never overwrite the evidence. The entries
                # stay pending and verify_ledger reports the head (HEAD_INVALID / HEAD_HASH_MISMATCH).
                log.error("ledger: head of chain %s is malformed; not sequencing", chain_id)
                return False
            state_changed = state_changed or any(is_state_change(e) for e in sealed)
            if not sealed:
                if repo.count_pending(chain_id) == 0:
                    return True
                _backoff(ledger, attempt)  # another sequencer took them meanwhile: back off rather than spin
        if wait_for is not None and not any(repo.pending_exists(chain_id, i) for i in wait_for):
            return True
        log.warning("ledger: chain %s still has pending entries after %d attempts", chain_id, attempts)
        return False
    finally:
        if state_changed:
            _checkpoint_quietly(ledger, chain_id)


def _checkpoint_quietly(ledger: Ledger, chain_id: str) -> None:
    """Issue a checkpoint from a trigger or the schedule: a failure is logged, never raised (the next
    state change, the schedule or a reader issues it)."""
    try:
        issue_checkpoint(ledger, chain_id)
    except LedgerIntegrityError:
        log.critical("ledger: chain %s does not extend its published checkpoint; no checkpoint signed", chain_id)
    except Exception:  # noqa: BLE001 - storage outage etc.: retried by the schedule
        log.exception("ledger: could not issue a checkpoint of chain %s", chain_id)


def sweep(ledger: Ledger, limit_chains: int = 100) -> dict[str, int]:
    """The ``ledger_sweep`` schedule: seal every chain that has pending entries, then checkpoint every
    chain that grew since its last checkpoint. Harmless at any time."""
    chains = ledger.repo.chains_with_pending()[:limit_chains]
    done = sum(1 for chain_id in chains if sequence_chain(ledger, chain_id))
    checkpointed = 0
    if ledger.signer is not None:
        for chain_id in ledger.repo.chains_due_checkpoint()[:limit_chains]:
            _checkpoint_quietly(ledger, chain_id)
            checkpointed += 1
    return {"chains": len(chains), "completed": done, "checkpointed": checkpointed}


# --- checkpoints ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Published:
    checkpoint: Checkpoint
    note_text: str
    verified: bool           # signed by the log's key (current or previous)


def latest_published(ledger: Ledger, chain_id: str, hint: int = 0) -> Published | None:
    """The largest checkpoint published for the chain, read from the publisher (not the database)."""
    sizes = ledger.publisher.sizes(chain_id, at_least=hint) if hint else []
    if not sizes:
        sizes = ledger.publisher.sizes(chain_id)  # the hint may be wrong: the database is not trusted
    if not sizes:
        return None
    text = ledger.publisher.read(chain_id, sizes[-1])
    if text is None:
        return None
    try:
        opened = note.open_note(text, ledger.verifiers)
        checkpoint = Checkpoint.parse(opened.text)
        verified = checkpoint.origin == origin(ledger.log_name, chain_id) or any(
            checkpoint.origin == origin(v.name, chain_id) for v in ledger.previous_keys)
    except note.NoteError:
        try:
            checkpoint = Checkpoint.parse(note.parse(text).text)
        except note.NoteError:
            checkpoint = Checkpoint("", sizes[-1], b"")
        verified = False
    return Published(checkpoint, text, verified)


def _response(ledger: Ledger, chain_id: str, checkpoint: Checkpoint, text: str) -> dict[str, Any]:
    return {"experimentId": chain_id, "checkpoint": text, "treeSize": checkpoint.size,
            "rootHash": checkpoint.root_b64, "origin": checkpoint.origin,
            "verifierKey": ledger.signer.verifier.vkey if ledger.signer else None}


def issue_checkpoint(ledger: Ledger, chain_id: str) -> dict[str, Any] | None:
    """Sign and publish a checkpoint of the chain's current tree (or return the current one); None when
    no signing key is configured or the chain has no entries. Raises LedgerIntegrityError when the
    stored tree does not extend the last published checkpoint."""
    signer = ledger.signer
    head = ledger.repo.read_head(chain_id)
    if signer is None or head is None or type(head.get("treeSize")) is not int or head["treeSize"] < 1:
        return None
    size = head["treeSize"]
    try:
        root = base64.b64decode(head.get("rootHash") or "", validate=True)
    except ValueError:
        raise LedgerIntegrityError(chain_id) from None
    previous = latest_published(ledger, chain_id, head.get("checkpointSize") or 0)
    if previous is not None and not previous.verified:
        raise LedgerIntegrityError(chain_id)
    nodes_needed = merkle.root_nodes(size)
    if previous is not None and previous.checkpoint.size < size:
        nodes_needed += merkle.consistency_nodes(previous.checkpoint.size, size)
    nodes = ledger.repo.read_nodes(chain_id, nodes_needed)
    try:
        stored_root = merkle.root_at(size, lambda level, index: nodes[(level, index)])
        if stored_root != root:
            raise LedgerIntegrityError(chain_id)
        if previous is not None:
            old = previous.checkpoint
            if old.size > size or (old.size == size and old.root != root):
                raise LedgerIntegrityError(chain_id)
            if old.size < size:
                proof = merkle.consistency_proof(old.size, size, lambda level, index: nodes[(level, index)])
                if not merkle.verify_consistency(old.size, size, old.root, root, proof):
                    raise LedgerIntegrityError(chain_id)
    except KeyError:
        raise LedgerIntegrityError(chain_id) from None
    checkpoint = Checkpoint(origin(signer.name, chain_id), size, root)
    if previous is not None and previous.checkpoint.size == size:
        text = previous.note_text
    else:
        text = note.sign(checkpoint.text(), [signer])
    name = ledger.publisher.publish(chain_id, size, text)
    if head.get("checkpointSize") != size or head.get("checkpointDue"):
        ledger.repo.record_checkpoint(chain_id, size, {"note": text, "rootHash": checkpoint.root_b64,
                                                       "origin": checkpoint.origin, "objectName": name})
    return _response(ledger, chain_id, checkpoint, text)


def get_checkpoint(ledger: Ledger, chain_id: str) -> dict[str, Any]:
    """API.md §12: the latest signed checkpoint of the chain (issued now if the tree grew)."""
    if ledger.signer is None:
        raise FailedPrecondition("Ledger checkpoints are not configured (no signing key).")
    sequence_chain(ledger, chain_id, attempts=4)
    _require_chain(ledger, chain_id)
    try:
        issued = issue_checkpoint(ledger, chain_id)
    except LedgerIntegrityError:
        log.critical("ledger: chain %s does not extend its published checkpoint", chain_id)
        raise FailedPrecondition("The ledger no longer matches its published checkpoint; run verify_ledger.") from None
    if issued is None:
        raise FailedPrecondition("The chain has no entries yet.")
    return issued


def _tree_size(ledger: Ledger, chain_id: str) -> int:
    _require_chain(ledger, chain_id)
    head = ledger.repo.read_head(chain_id) or {}
    size = head.get("treeSize")
    return size if type(size) is int and size >= 0 else 0


def _node_lookup(ledger: Ledger, chain_id: str, wanted: list[tuple[int, int]]):
    nodes = ledger.repo.read_nodes(chain_id, wanted)
    missing = [n for n in wanted if n not in nodes]
    if missing:
        log.critical("ledger: chain %s is missing tree nodes %s", chain_id, missing[:5])
        raise FailedPrecondition("The ledger's tree is incomplete; run verify_ledger.")
    return lambda level, index: nodes[(level, index)]


def get_inclusion_proof(ledger: Ledger, chain_id: str, sequence: int, tree_size: int | None = None) -> dict[str, Any]:
    """API.md §12: the RFC 9162 §2.1.3 inclusion proof of entry ``sequence`` (leaf ``sequence − 1``) in
    the tree of ``tree_size`` leaves (default: the latest checkpoint's). Bad sizes write nothing."""
    current = _tree_size(ledger, chain_id)
    if tree_size is not None and tree_size > current:
        raise InvalidArgument("The proof is beyond the tree size.",
                              {"fields": [{"path": "treeSize", "message": f"the tree has {current} leaves"}]})
    if sequence > (tree_size if tree_size is not None else current):
        raise InvalidArgument("The entry is beyond the tree size.",
                              {"fields": [{"path": "sequence", "message": "no such entry in that tree"}]})
    checkpoint = None
    if tree_size is None:
        issued = None
        try:
            issued = issue_checkpoint(ledger, chain_id)
        except LedgerIntegrityError:
            raise FailedPrecondition("The ledger no longer matches its published checkpoint; run verify_ledger.") from None
        tree_size = issued["treeSize"] if issued else current
        checkpoint = issued["checkpoint"] if issued else None
    index = sequence - 1
    node = _node_lookup(ledger, chain_id, [(0, index)] + merkle.inclusion_nodes(index, tree_size))
    return {"experimentId": chain_id, "sequence": sequence, "leafIndex": index, "treeSize": tree_size,
            "leafHash": _b64(node(0, index)),
            "proof": [_b64(h) for h in merkle.inclusion_proof(index, tree_size, node)],
            "checkpoint": checkpoint}


def get_consistency_proof(ledger: Ledger, chain_id: str, from_size: int, to_size: int) -> dict[str, Any]:
    """API.md §12: the RFC 9162 §2.1.4 proof that the tree of ``to_size`` leaves extends the one of
    ``from_size``. ``from_size > to_size`` or a size beyond the tree: INVALID_ARGUMENT, nothing written."""
    if from_size > to_size:
        raise InvalidArgument("fromSize must not exceed toSize.",
                              {"fields": [{"path": "fromSize", "message": "greater than toSize"}]})
    current = _tree_size(ledger, chain_id)
    if to_size > current:
        raise InvalidArgument("The proof is beyond the tree size.",
                              {"fields": [{"path": "toSize", "message": f"the tree has {current} leaves"}]})
    node = _node_lookup(ledger, chain_id, merkle.consistency_nodes(from_size, to_size))
    return {"experimentId": chain_id, "fromSize": from_size, "toSize": to_size,
            "proof": [_b64(h) for h in merkle.consistency_proof(from_size, to_size, node)]}


# --- reading ----------------------------------------------------------------------------------------------

def _require_chain(ledger: Ledger, chain_id: str) -> None:
    """NOT_FOUND unless the chain has a head, pending entries, or its experiment/cohort exists."""
    repo = ledger.repo
    if repo.read_head(chain_id) is not None or repo.count_pending(chain_id):
        return
    if chain_id.startswith(COHORT_CHAIN_PREFIX):
        if repo.read_cohort(chain_id[len(COHORT_CHAIN_PREFIX):]) is not None:
            return
    elif repo.read_experiment(chain_id) is not None:
        return
    raise NotFound("No such experiment or ledger chain.")


def get_audit_trail(ledger: Ledger, chain_id: str, after_sequence: int = 0, limit: int = 1000) -> dict[str, Any]:
    """Entries in sequence order (API.md §3), each with its ``leafIndex``; ``nextAfterSequence`` pages on."""
    sequence_chain(ledger, chain_id, attempts=4)
    _require_chain(ledger, chain_id)
    entries = ledger.repo.read_entries(chain_id, after_sequence, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    served = []
    for entry in entries:
        # What is served is what the hashed bytes say (chain.fields_match explains why); entries sealed
        # before the bytes were stored are served as stored.
        decoded = decode_entry(entry) or dict(entry)
        if type(decoded.get("sequence")) is int:
            decoded["leafIndex"] = decoded["sequence"] - 1
        served.append(decoded)
    return {"experimentId": chain_id, "entries": served, "pendingEntries": ledger.repo.count_pending(chain_id),
            "nextAfterSequence": entries[-1]["sequence"] if more and entries else None}


def _merge(result: dict[str, Any], extra: list[ChainError]) -> dict[str, Any]:
    if not extra:
        return result
    errors = result["errors"] + [e.to_json() for e in extra]
    numbered = [e["sequence"] for e in errors if e["sequence"] is not None]
    return {**result, "valid": False, "errors": errors, "firstBadSequence": min(numbered) if numbered else 1}


def verify_ledger(ledger: Ledger, chain_id: str) -> dict[str, Any]:
    """Re-hash the whole chain, compare it with its recorded head and with the latest checkpoint
    published outside the database (API.md §3, §12; docs/ledger.md §5)."""
    sequence_chain(ledger, chain_id, attempts=4)
    _require_chain(ledger, chain_id)
    repo = ledger.repo
    head = repo.read_head(chain_id)
    claimed = head.get("checkpointSize") if head and type(head.get("checkpointSize")) is int else 0
    published = latest_published(ledger, chain_id, claimed)
    extra: list[ChainError] = []
    checkpoints: list[tuple[int, bytes]] = []
    if published is not None and published.verified:
        checkpoints.append((published.checkpoint.size, published.checkpoint.root))
    elif published is not None:
        extra.append(ChainError(None, "CHECKPOINT_SIGNATURE_INVALID",
                                f"the checkpoint published at tree size {published.checkpoint.size} is not signed by "
                                "the log's key"))
    if claimed and (published is None or published.checkpoint.size < claimed):
        extra.append(ChainError(None, "CHECKPOINT_NOT_PUBLISHED",
                                f"the head records a checkpoint at tree size {claimed} that is not published"))
    result = _merge(verify_chain(chain_id, repo.read_chain(chain_id), head, checkpoints).to_json(), extra)
    recorded = None if head is None else {k: head.get(k) for k in ("lastSequence", "headHash", "count", "treeSize",
                                                                    "rootHash", "checkpointSize")}
    return {"experimentId": chain_id, **result, "recordedHead": recorded,
            "pendingEntries": repo.count_pending(chain_id),
            "checkpoint": None if published is None else {
                "treeSize": published.checkpoint.size, "rootHash": published.checkpoint.root_b64,
                "signatureVerified": published.verified, "note": published.note_text}}


def ledger_statistics(ledger: Ledger) -> dict[str, int]:
    return ledger.repo.ledger_statistics(
        active=[ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value],
        # A ship request or a shipped offer is a completed run (API.md §10).
        completed=[ExperimentStatus.COMPLETED.value, ExperimentStatus.SHIP_PENDING_APPROVAL.value,
                   ExperimentStatus.SHIPPED.value], killed=[ExperimentStatus.KILLED.value])

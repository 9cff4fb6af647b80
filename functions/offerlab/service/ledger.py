"""Ledger use cases (ExperimentLedgerService): record source events, sequence chains, read and verify.

Appending is two steps (docs/ledger.md §8):

1. ``record_source_event`` — called by the triggers — turns a source event into drafts and records them
   as pending entries inside ``apply_once`` (one transaction: the processed-event marker, the pending
   records, any alert). A redelivered event finds its marker and records nothing: exactly once in effect.
   Pending records of different events are different documents, so concurrent triggers never contend.
2. ``sequence_chain`` seals the chain's pending entries in batches, one transaction on the chain head.
   Concurrent sequencers contend only on that head; a loser backs off with jitter and retries, and stops
   as soon as its own records have been sealed by someone else. Whatever is left pending is sealed by
   the next trigger of the chain, by any reader (``get_audit_trail``, ``verify_ledger``, reports run the
   sequencer first) and by the ``ledger_sweep`` schedule.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from typing import Any, Callable

from offerlab.domain.errors import Aborted, NotFound
from offerlab.domain.types import ExperimentStatus
from offerlab.ledger.chain import verify_chain
from offerlab.ledger.drafts import COHORT_CHAIN_PREFIX, SourceEvent, drafts_for
from offerlab.store import ledger as repo
from offerlab.store.idempotency import apply_once

log = logging.getLogger("offerlab.ledger")

SCOPE = "ledger"              # apply_once scope of the append triggers
RECORD_ATTEMPTS = 5           # recording contends only with a redelivery of the same event
SEQUENCE_ATTEMPTS = 8         # sequencing contends with the other sequencers of the chain
BACKOFF_SECONDS = 0.15        # base of the jittered, linearly growing back-off


def _backoff(attempt: int, sleep: Callable[[float], None] = time.sleep) -> None:
    # "Full jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): de-synchronises the
    # sequencers of a burst so that one of them wins the head each round instead of all colliding again.
    sleep(random.uniform(0, BACKOFF_SECONDS * (attempt + 1)))


def pending_id(event_key: str, chain_id: str) -> str:
    """Deterministic id of the pending record of (source event, chain): a redelivery targets the same id."""
    return hashlib.sha256(f"{event_key}|{chain_id}".encode()).hexdigest()[:40]


def record_source_event(source: SourceEvent, event_key: str) -> list[str]:
    """Record the drafts of one source event (exactly once per ``event_key``) and sequence their chains.

    Returns the chains it touched. Never raises for a bad source document: drafts read it defensively.
    """
    drafts = drafts_for(source)
    if not drafts:
        return []
    records = [(draft, pending_id(event_key, draft.chain_id)) for draft in drafts]

    def effect(transaction: Any) -> None:
        for draft, record_id in records:
            repo.record_pending(transaction, draft.chain_id, record_id, draft.entry, draft.alert)

    for attempt in range(RECORD_ATTEMPTS):
        try:
            if not apply_once(SCOPE, event_key, effect):
                log.info("ledger: event %s already recorded", event_key)
            break
        except Aborted:
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            _backoff(attempt)
    chains: dict[str, list[str]] = {}
    for draft, record_id in records:
        chains.setdefault(draft.chain_id, []).append(record_id)
    for chain_id, ids in chains.items():
        sequence_chain(chain_id, wait_for=ids)
    return list(chains)


def sequence_chain(chain_id: str, wait_for: list[str] | None = None, attempts: int = SEQUENCE_ATTEMPTS) -> bool:
    """Seal the chain's pending entries. With ``wait_for``: until those records are sealed (by anyone);
    without: until none is pending. False when it gave up (contention): they stay pending, nothing is lost."""
    for attempt in range(attempts):
        if wait_for is not None and not any(repo.pending_exists(chain_id, i) for i in wait_for):
            return True
        try:
            sealed = repo.sequence_pending(chain_id)
        except Aborted:
            _backoff(attempt)
            continue
        if sealed == 0:
            if repo.count_pending(chain_id) == 0:
                return True
            # Records this run could not seal: another sequencer took them meanwhile, or the head is
            # malformed (store.ledger refuses to overwrite it). Back off rather than spin.
            _backoff(attempt)
    if wait_for is not None and not any(repo.pending_exists(chain_id, i) for i in wait_for):
        return True
    log.warning("ledger: chain %s still has pending entries after %d attempts", chain_id, attempts)
    return False


def sweep(limit_chains: int = 100) -> dict[str, int]:
    """Seal every chain that has pending entries (the ``ledger_sweep`` schedule; harmless at any time)."""
    chains = repo.chains_with_pending()[:limit_chains]
    done = sum(1 for chain_id in chains if sequence_chain(chain_id))
    return {"chains": len(chains), "completed": done}


def _require_chain(chain_id: str) -> None:
    """NOT_FOUND unless the chain has a head, pending entries, or its experiment/cohort exists."""
    if repo.read_head(chain_id) is not None or repo.count_pending(chain_id):
        return
    if chain_id.startswith(COHORT_CHAIN_PREFIX):
        if repo.read_cohort(chain_id[len(COHORT_CHAIN_PREFIX):]) is not None:
            return
    elif repo.read_experiment(chain_id) is not None:
        return
    raise NotFound("No such experiment or ledger chain.")


def get_audit_trail(chain_id: str, after_sequence: int = 0, limit: int = 1000) -> dict[str, Any]:
    """Entries in sequence order (API.md §3); ``nextAfterSequence`` pages on when there are more."""
    sequence_chain(chain_id, attempts=4)
    _require_chain(chain_id)
    entries = repo.read_entries(chain_id, after_sequence, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return {"experimentId": chain_id, "entries": entries, "pendingEntries": repo.count_pending(chain_id),
            "nextAfterSequence": entries[-1]["sequence"] if more and entries else None}


def verify_ledger(chain_id: str) -> dict[str, Any]:
    """Re-hash the whole chain and compare it with its recorded head (API.md §3; docs/ledger.md §5)."""
    sequence_chain(chain_id, attempts=4)
    _require_chain(chain_id)
    head = repo.read_head(chain_id)
    result = verify_chain(chain_id, repo.read_chain(chain_id), head).to_json()
    recorded = None if head is None else {k: head.get(k) for k in ("lastSequence", "headHash", "count")}
    return {"experimentId": chain_id, **result, "recordedHead": recorded,
            "pendingEntries": repo.count_pending(chain_id)}


def ledger_statistics() -> dict[str, int]:
    return repo.ledger_statistics(
        active=[ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value],
        # A ship request or a shipped offer is a completed run (API.md §10).
        completed=[ExperimentStatus.COMPLETED.value, ExperimentStatus.SHIP_PENDING_APPROVAL.value,
                   ExperimentStatus.SHIPPED.value], killed=[ExperimentStatus.KILLED.value])


"""Exactly-once effects for at-least-once delivery.

An event-triggered function wraps its effect in ``apply_once``: the processed-event marker is written
in the same transaction as the effect, so a redelivered event finds the marker and has no second
effect, and a crash before commit leaves neither the effect nor the marker. Concurrent duplicates take
turns through a leased claim (``apply_once``), so they never deadlock on each other's locks. Effects
made only of blind writes use ``apply_once_blind`` (no transaction at all).
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from offerlab.domain.errors import Aborted
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.transaction import EVENT_HANDLER, run_in_transaction


def marker_id(scope: str, event_id: str) -> str:
    """A document id for (scope, event id); hashed because event ids may contain '/' or be long."""
    return f"{scope}:{hashlib.sha256(event_id.encode()).hexdigest()[:40]}"


def already_processed(scope: str, event_id: str) -> bool:
    return db().collection(C.PROCESSED_EVENTS).document(marker_id(scope, event_id)).get().exists


def apply_once_blind(scope: str, event_id: str, writes: Callable[[Any], Any]) -> bool:
    """Queue ``writes(batch)`` and commit them with the marker's *creation* in one atomic batch; True when
    they were applied now, False for a duplicate (the create fails with ALREADY_EXISTS: nothing written).

    For effects that need no read (blind writes, server-side transforms). There is no transaction, so no
    read lock: duplicates and concurrent events of one user do not deadlock on the emulator's pessimistic
    locks (../shared/notes/emulators.md). A retried commit that had in fact landed reports a duplicate,
    which is still exactly-once in effect.
    """
    from google.api_core import exceptions as gexc  # noqa: PLC0415 - lazy (cold start)

    batch = db().batch()
    writes(batch)
    batch.create(_marker(scope, event_id), {"scope": scope, "eventId": event_id[:500],
                                           "processedAt": datetime.now(timezone.utc)})
    try:
        batch.commit()
    except gexc.AlreadyExists:
        return False
    return True


def marker_ref(scope: str, event_id: str):
    """``processedEvents/{scope}:{hash}``: the processed marker of (scope, event id)."""
    return db().collection(C.PROCESSED_EVENTS).document(marker_id(scope, event_id))


_marker = marker_ref


def apply_once(scope: str, event_id: str, effect: Callable[[Any], Any]) -> bool:
    """Run ``effect(transaction)`` unless (scope, event_id) was processed; True when it ran now.

    ``effect`` must do its reads before its writes (a Firestore transaction rule); the marker is read
    first and created last, in the same transaction as the effect.

    Concurrent duplicates (a tick fired twice, a message delivered twice at once) take turns through a
    *claim* with a lease, created outside the transaction: without it both transactions read the same
    documents, both try to write them, and on the emulator's pessimistic locks they deadlock until lock
    timeouts abort both (we saw both copies of a guardrail check fail that way, so the experiment was
    never paused). The claim holder runs the transaction; a duplicate waits for the marker (then it is a
    duplicate) or for the claim to be released or to expire (a crashed holder), then takes its turn.
    """
    marker = _marker(scope, event_id)
    claim = db().collection(C.PROCESSED_EVENTS).document(f"{marker.id}:claim")

    def body(transaction: Any) -> bool:
        if marker.get(transaction=transaction).exists:
            return False
        effect(transaction)
        transaction.create(marker, {"scope": scope, "eventId": event_id[:500],
                                    "processedAt": datetime.now(timezone.utc)})
        return True

    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while not _take_claim(claim):
        if marker.get().exists:
            return False
        if time.monotonic() > deadline:
            raise Aborted("Another delivery of this event is still being processed.")
        time.sleep(CLAIM_POLL_SECONDS)
    try:
        return run_in_transaction(body, EVENT_HANDLER)
    finally:
        _release_claim(claim)


CLAIM_LEASE = timedelta(seconds=90)   # > the longest effect transaction; a crashed holder's claim expires
CLAIM_WAIT_SECONDS = 120.0            # how long a duplicate waits before giving up (and raising)
CLAIM_POLL_SECONDS = 0.25


def _take_claim(claim: Any) -> bool:
    """Create the claim, or take over an expired one; False while another holder's lease is live."""
    from google.api_core import exceptions as gexc  # noqa: PLC0415 - lazy (cold start)

    now = datetime.now(timezone.utc)
    try:
        claim.create({"expiresAt": now + CLAIM_LEASE})
        return True
    except gexc.AlreadyExists:
        pass
    snap = claim.get()
    if not snap.exists:
        return False  # released just now: the caller polls and tries again
    if snap.get("expiresAt") > now:
        return False
    try:  # expired: take it over, unless someone else did so first (the update time moved)
        claim.update({"expiresAt": now + CLAIM_LEASE}, option=db().write_option(last_update_time=snap.update_time))
        return True
    except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
        return False


def _release_claim(claim: Any) -> None:
    try:
        claim.delete()
    except Exception:  # noqa: BLE001 - the lease expires anyway; the effect's outcome stands
        pass

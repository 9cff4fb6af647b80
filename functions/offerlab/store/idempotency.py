"""Exactly-once effects for at-least-once delivery.

An event-triggered function wraps its effect in ``apply_once``: the processed-event marker is written
in the same transaction as the effect, so a redelivered event finds the marker and has no second
effect, and a crash before commit leaves neither the effect nor the marker.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Callable

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.transaction import run_in_transaction


def marker_id(scope: str, event_id: str) -> str:
    """A document id for (scope, event id); hashed because event ids may contain '/' or be long."""
    return f"{scope}:{hashlib.sha256(event_id.encode()).hexdigest()[:40]}"


def already_processed(scope: str, event_id: str) -> bool:
    return db().collection(C.PROCESSED_EVENTS).document(marker_id(scope, event_id)).get().exists


def apply_once(scope: str, event_id: str, effect: Callable[[Any], Any]) -> bool:
    """Run ``effect(transaction)`` unless (scope, event_id) was processed; True when it ran now.

    ``effect`` must do its reads before its writes (a Firestore transaction rule); the marker is read
    first and created last.
    """
    marker = db().collection(C.PROCESSED_EVENTS).document(marker_id(scope, event_id))

    def body(transaction: Any) -> bool:
        if marker.get(transaction=transaction).exists:
            return False
        effect(transaction)
        transaction.create(marker, {"scope": scope, "eventId": event_id[:500],
                                    "processedAt": datetime.now(timezone.utc)})
        return True

    return run_in_transaction(body)

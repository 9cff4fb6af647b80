"""How every Pub/Sub handler treats a delivery (API.md §5, docs/reliability.md).

Pub/Sub delivers at least once, and the functions are declared with ``retry=True``, so a handler that
raises gets the message again (with backoff) until it succeeds or the subscription's retention ends.
That is right for a transient failure (Firestore unavailable, contention) and wrong for a message that
can never succeed. So:

* bad data (not JSON, wrong shape: ``PoisonMessage`` or a rejected payload) is logged with its reason
  and acknowledged: it is never redelivered;
* any other failure is re-raised for redelivery while the message is younger than ``MAX_RETRY_AGE``;
  an older one is logged and acknowledged: no message is retried forever, and the scheduled sweeps
  re-issue their own checks at the next tick anyway.

("Retrying event-driven functions", Cloud Functions documentation: "use a retry policy with an end
condition ... discard events older than some threshold".) The effects themselves are idempotent
(``store.idempotency``), so a redelivery after a partial failure applies once.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

log = logging.getLogger("offerlab.pubsub")

MAX_RETRY_AGE = timedelta(minutes=10)


class PoisonMessage(ValueError):
    """The message can never be handled (its shape is wrong): acknowledge it, never retry."""


def message_age(message: Any, now: datetime | None = None) -> timedelta:
    """How long ago the message was published (``MAX_RETRY_AGE`` when the time is unknown: no retry)."""
    published = getattr(message, "publish_time", None)
    if published is None:
        return MAX_RETRY_AGE
    return (now or datetime.now(timezone.utc)) - published


def deliver(label: str, event: Any, work: Callable[[Any, str], None]) -> None:
    """Run ``work(data, message_id)`` for the message of a Pub/Sub CloudEvent under the policy above."""
    message = event.data.message
    try:
        data = message.json
    except ValueError:
        log.warning("%s %s dropped: not JSON", label, message.message_id)
        return
    try:
        work(data, message.message_id)
    except PoisonMessage as err:
        log.warning("%s %s dropped: %s", label, message.message_id, err)
    except Exception:
        age = message_age(message)
        if age >= MAX_RETRY_AGE:
            log.exception("%s %s dropped after %s of failures", label, message.message_id, age)
            return
        log.exception("%s %s failed; left for redelivery", label, message.message_id)
        raise

"""Pub/Sub handlers (API.md §5): offer-metric-events, fraud-signals, experiment-kill-switch.

Each is idempotent (``apply_once`` inside the services). Bad data is logged with its reason and
acknowledged (the handler returns normally), so a poison message is never redelivered forever; a
transient failure (contention, Firestore unavailable) raises so the platform may redeliver, but only while
the message is younger than ``MAX_RETRY_AGE``: after that it is logged and dropped.
"""
from __future__ import annotations

__all__ = ["ingest_offer_metric_event", "ingest_fraud_signal", "on_experiment_kill_switch"]

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from firebase_functions import pubsub_fn

log = logging.getLogger("offerlab.pubsub")

MAX_RETRY_AGE = timedelta(minutes=10)

METRIC_TOPIC = "offer-metric-events"
FRAUD_TOPIC = "fraud-signals"
KILL_SWITCH_TOPIC = "experiment-kill-switch"


def _payload(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> tuple[Any, str] | None:
    message = event.data.message
    try:
        return message.json, message.message_id
    except ValueError:
        log.warning("dropped message %s on %s: not JSON", message.message_id, event.source)
        return None


def _guarded(topic: str, event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData], work: Callable[[Any, str], None]) -> None:
    parsed = _payload(event)
    if parsed is None:
        return
    data, message_id = parsed
    try:
        work(data, message_id)
    except Exception:
        published = event.data.message.publish_time
        age = datetime.now(timezone.utc) - published if published else MAX_RETRY_AGE
        if age >= MAX_RETRY_AGE:
            log.exception("dropped message %s on %s after %s of failures", message_id, topic, age)
            return
        log.exception("message %s on %s failed; leaving it for redelivery", message_id, topic)
        raise


@pubsub_fn.on_message_published(topic=METRIC_TOPIC)
def ingest_offer_metric_event(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from offerlab.service import metrics as svc  # noqa: PLC0415 - keeps main's import light

    def work(data: Any, message_id: str) -> None:
        outcome = svc.ingest_metric_event(data)
        if outcome.status is svc.Status.REJECTED:
            log.warning("rejected metric event (message %s): %s", message_id, outcome.reason)
        else:
            log.info("metric event (message %s): %s %s", message_id, outcome.status.value, ",".join(outcome.experiments))

    _guarded(METRIC_TOPIC, event, work)


@pubsub_fn.on_message_published(topic=FRAUD_TOPIC)
def ingest_fraud_signal(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from offerlab.service import metrics as svc  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        outcome = svc.record_fraud_signal(data, message_id)
        if outcome.status is svc.Status.REJECTED:
            log.warning("rejected fraud signal (message %s): %s", message_id, outcome.reason)

    _guarded(FRAUD_TOPIC, event, work)


@pubsub_fn.on_message_published(topic=KILL_SWITCH_TOPIC)
def on_experiment_kill_switch(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from offerlab.service import killswitch as svc  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        report = svc.handle_kill_switch(data, message_id)
        if report.rejected:
            log.warning("rejected kill-switch message %s: %s", message_id, report.rejected)
        else:
            log.warning("kill-switch message %s killed %s; skipped %s", message_id, report.killed, report.skipped)

    _guarded(KILL_SWITCH_TOPIC, event, work)

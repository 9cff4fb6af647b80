"""Pub/Sub handlers (API.md §5): offer-metric-events, fraud-signals, experiment-kill-switch.

Each is idempotent (``apply_once`` inside the services). Delivery policy (api/delivery.py): bad data is
logged with its reason and acknowledged, so a poison message is never redelivered; a transient failure
(Firestore unavailable) raises and, with ``retry=True``, is redelivered while the message is younger than
``MAX_RETRY_AGE``; after that it is logged and dropped.
"""
from __future__ import annotations

__all__ = ["ingest_offer_metric_event", "ingest_fraud_signal", "on_experiment_kill_switch"]

import logging
from typing import Any

from firebase_functions import pubsub_fn

from offerlab.api.delivery import deliver
from offerlab.store.firestore_store import firestore_store as store

log = logging.getLogger("offerlab.pubsub")

METRIC_TOPIC = "offer-metric-events"
FRAUD_TOPIC = "fraud-signals"
KILL_SWITCH_TOPIC = "experiment-kill-switch"


# One event: a few reads and one batch (the user's totals, its shard, the marker); 60 s covers the
# compare-and-swap's bounded retries (store/aggregates.py).
@pubsub_fn.on_message_published(topic=METRIC_TOPIC, retry=True, memory=256, timeout_sec=60)
def ingest_offer_metric_event(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from offerlab.service import metrics as svc  # noqa: PLC0415 - keeps main's import light

    def work(data: Any, message_id: str) -> None:
        outcome = svc.ingest_metric_event(store(), data)
        if outcome.status is svc.Status.REJECTED:
            log.warning("rejected metric event (message %s): %s", message_id, outcome.reason)
        elif outcome.status is svc.Status.REFUSED:
            log.warning("refused metric event (message %s): %s; counted on %s", message_id, outcome.reason,
                        ",".join(outcome.experiments) or "no experiment")
        else:
            log.info("metric event (message %s): %s %s", message_id, outcome.status.value, ",".join(outcome.experiments))

    deliver("metric event", event, work)


@pubsub_fn.on_message_published(topic=FRAUD_TOPIC, retry=True)
def ingest_fraud_signal(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from offerlab.service import metrics as svc  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        outcome = svc.record_fraud_signal(store(), data, message_id)
        if outcome.status is svc.Status.REJECTED:
            log.warning("rejected fraud signal (message %s): %s", message_id, outcome.reason)

    deliver("fraud signal", event, work)


@pubsub_fn.on_message_published(topic=KILL_SWITCH_TOPIC, retry=True)
def on_experiment_kill_switch(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from offerlab.service import killswitch as svc  # noqa: PLC0415

    def work(data: Any, message_id: str) -> None:
        report = svc.handle_kill_switch(store(), data, message_id)
        if report.rejected:
            log.warning("rejected kill-switch message %s: %s", message_id, report.rejected)
        else:
            log.warning("kill-switch message %s killed %s; skipped %s", message_id, report.killed, report.skipped)

    deliver("kill-switch message", event, work)

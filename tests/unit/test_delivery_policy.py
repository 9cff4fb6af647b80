"""The Pub/Sub delivery policy (api/delivery.py) on every on_message_published handler, with real
CloudEvents parsed by the SDK and the services replaced: each is declared with retry=True; a poison
message is acknowledged (the handler returns) without work; a failure is re-raised for redelivery while
the message is young and acknowledged once it is older than MAX_RETRY_AGE."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from cloudevents.http import CloudEvent

from offerlab.api.delivery import MAX_RETRY_AGE, message_age
from offerlab.entrypoints import analytics, metrics, rollouts
from offerlab.entrypoints.catalog import FUNCTIONS
from offerlab.service import killswitch, reconciliation, snapshots, sweeps
from offerlab.service import metrics as metrics_svc

GOOD = {"experimentId": "e1", "tick": "2026-12-01T10:15:00Z"}

# handler, (module, attribute) of the service function it calls
HANDLERS = {
    "ingest_offer_metric_event": (metrics.ingest_offer_metric_event, metrics_svc, "ingest_metric_event"),
    "ingest_fraud_signal": (metrics.ingest_fraud_signal, metrics_svc, "record_fraud_signal"),
    "on_experiment_kill_switch": (metrics.on_experiment_kill_switch, killswitch, "handle_kill_switch"),
    "on_guardrail_check": (analytics.on_guardrail_check, sweeps, "handle_guardrail_check"),
    "on_kpi_snapshot": (analytics.on_kpi_snapshot, snapshots, "take_snapshot"),
    "on_rollout_check": (rollouts.on_rollout_check, None, None),
    "on_aggregate_reconciliation": (analytics.on_aggregate_reconciliation, reconciliation, "reconcile"),
}


def message(data, published=None):
    published = published or datetime.now(timezone.utc)
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    stamp = published.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/t", "time": stamp},
                      {"message": {"data": base64.b64encode(raw).decode(), "message_id": "m1", "publish_time": stamp,
                                   "attributes": {}}, "subscription": "projects/demo-offerlab/subscriptions/t"})


class Failing:
    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise RuntimeError("firestore unavailable")


@pytest.fixture(params=sorted(HANDLERS))
def failing_handler(request, monkeypatch):
    handler, module, attribute = HANDLERS[request.param]
    failing = Failing()
    if module is None:
        monkeypatch.setattr(rollouts, "_controller", lambda: type("C", (), {"run_step": staticmethod(failing)}))
    else:
        monkeypatch.setattr(module, attribute, failing)
    return handler, failing


def test_every_pubsub_function_is_declared_with_retry_and_is_covered_here():
    declared = {name for area in FUNCTIONS for name in FUNCTIONS[area]
                if "pubsub" in str(getattr(__import__(f"offerlab.entrypoints.{area}", fromlist=[name]), name)
                                   .__firebase_endpoint__.eventTrigger or {}).lower()}
    assert declared == set(HANDLERS)
    for handler, _, _ in HANDLERS.values():
        assert handler.__firebase_endpoint__.eventTrigger["retry"] is True


def test_a_young_failure_is_raised_for_redelivery_and_an_old_one_acknowledged(failing_handler):
    handler, failing = failing_handler
    with pytest.raises(RuntimeError):
        handler(message(GOOD))
    handler(message(GOOD, published=datetime.now(timezone.utc) - MAX_RETRY_AGE - timedelta(seconds=1)))
    assert failing.calls == 2  # the old message was still tried once, then dropped instead of raised


def test_a_message_that_is_not_json_is_acknowledged_without_work(failing_handler):
    handler, failing = failing_handler
    handler(message(b"\xff not json"))
    assert failing.calls == 0


def test_the_age_of_a_message_without_a_publish_time_allows_no_retry():
    class Bare:
        publish_time = None

    assert message_age(Bare()) == MAX_RETRY_AGE
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)

    class Stamped:
        publish_time = now - timedelta(minutes=3)

    assert message_age(Stamped(), now) == timedelta(minutes=3)

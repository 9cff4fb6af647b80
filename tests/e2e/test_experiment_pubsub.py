"""The Pub/Sub topics end to end (API.md §5): messages published with google-cloud-pubsub to the emulator,
delivered by the functions emulator to the deployed handlers. Duplicated deliveries change no total;
malformed events are dropped without blocking the topic; the kill-switch stops a running experiment
within one delivery."""
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from google.api_core.exceptions import AlreadyExists

from offerlab.store import experiments as repo
from offerlab.store import metrics as metrics_repo
from tests.e2e.test_experiment_lifecycle import running_experiment
from tests.e2e.test_get_offer import expected_arm

PROJECT = "demo-offerlab"


@pytest.fixture(scope="module")
def publisher(pubsub_host):
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()

    def publish(topic, data):
        path = client.topic_path(PROJECT, topic)
        try:
            client.create_topic(name=path)
        except AlreadyExists:
            pass
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        return client.publish(path, raw).result(timeout=30)

    return publish


def poll(fn, until, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def test_duplicated_deliveries_change_no_total(clients, publisher):
    exp, cohort = running_experiment(clients, stages=(100,), treatment=50, holdout=10)
    eid = exp["experimentId"]
    user = next(u for u in (f"m-{uuid.uuid4().hex[:8]}" for _ in range(200)) if expected_arm(u, exp, cohort) != "HOLDOUT")
    answer = clients.end_user(user).get_offer(experiment_id=eid)
    never_exposed = f"never-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    purchase = {"eventId": f"evt-{uuid.uuid4()}", "userId": user, "type": "purchase", "value": 12.99,
                "currency": "USD", "occurredAt": iso(now + timedelta(seconds=5)), "experimentId": eid,
                "region": "EU", "platform": "ios"}
    for _ in range(3):
        publisher("offer-metric-events", purchase)
    # Poison and stray messages on the same topic: dropped with a logged reason, never retried forever.
    publisher("offer-metric-events", b"not json at all")
    publisher("offer-metric-events", {**purchase, "eventId": f"evt-{uuid.uuid4()}", "value": -5})
    publisher("offer-metric-events", {**purchase, "eventId": f"evt-{uuid.uuid4()}", "type": "upgrade"})
    publisher("offer-metric-events", {**purchase, "eventId": f"evt-{uuid.uuid4()}", "occurredAt": "soon"})
    publisher("offer-metric-events", {**purchase, "eventId": f"evt-{uuid.uuid4()}", "userId": never_exposed})
    # A marker event published last: once it is counted, the earlier messages have been handled.
    renewal = {**purchase, "eventId": f"evt-{uuid.uuid4()}", "type": "renewal", "value": 3.0}
    publisher("offer-metric-events", renewal)
    totals = poll(lambda: metrics_repo.find_totals(eid, user),
                  lambda t: t is not None and t["counts"]["renewal"] == 1 and t["counts"]["purchase"] >= 1)
    assert totals is not None, "the metric events were not delivered within 30 s"
    time.sleep(3)  # let any straggling duplicate land before the final read
    totals = metrics_repo.find_totals(eid, user)
    assert totals["counts"]["purchase"] == 1 and totals["amounts"]["purchase"] == pytest.approx(12.99)
    assert totals["counts"]["renewal"] == 1 and totals["arm"] == answer["arm"]
    assert totals["lastRegion"] == "EU" and totals["lastPlatform"] == "ios"
    assert metrics_repo.find_totals(eid, never_exposed) is None


def test_the_kill_switch_stops_a_running_experiment_within_one_delivery(clients, publisher):
    exp, cohort = running_experiment(clients, stages=(100,))
    eid = exp["experimentId"]
    publisher("experiment-kill-switch", {"experimentId": eid, "reason": "Refund spike", "actor": "oncall@company.com"})
    doc = poll(lambda: repo.get_experiment(eid), lambda d: d.status.value == "KILLED")
    assert doc.status.value == "KILLED" and doc.status_reason == "Refund spike"
    last = repo.list_events(eid)[-1]
    assert last["eventType"] == "EXPERIMENT_KILLED" and last["actor"].startswith("oncall@company.com")
    assert last["payload"]["source"] == "experiment-kill-switch" and last["payload"]["messageId"]
    # And get_offer stops serving the treatment (within the cache TTL).
    user = next(u for u in (f"k-{i}" for i in range(500)) if expected_arm(u, {**exp, "coverage": 100}, cohort) == "TREATMENT")
    answer = poll(lambda: clients.service().get_offer(user_id=user, experiment_id=eid), lambda a: a["arm"] == "NOT_ENROLLED", 15)
    assert answer["arm"] == "NOT_ENROLLED" and answer["offerConfig"] == exp["controlConfig"]


def test_fraud_signals_are_stored_per_user(clients, publisher):
    user = f"f-{uuid.uuid4().hex[:8]}"
    publisher("fraud-signals", {"userId": user, "score": 0.7, "reasons": ["emulator farm"], "occurredAt": iso(datetime.now(timezone.utc))})
    publisher("fraud-signals", {"userId": user, "score": 7, "reasons": ["bad"], "occurredAt": iso(datetime.now(timezone.utc))})
    score = poll(lambda: metrics_repo.find_fraud_score(user), lambda s: s is not None)
    assert score is not None and score.max_score == 0.7 and score.reasons == ["emulator farm"]

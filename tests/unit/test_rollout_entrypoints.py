"""The rollout entry points with real requests/CloudEvents (the SDK's own parsing), the controller replaced:
the schedule takes *now* from X-CloudScheduler-ScheduleTime; the fan-out handler drops poison messages
(acknowledges them) and retries a failing step only while the message is young."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from cloudevents.http import CloudEvent
from flask import Flask

from offerlab.entrypoints import rollouts as ep
from offerlab.domain.fanout import tick_stamp as tick_id


class FakeController:
    def __init__(self, fail=False):
        self.steps, self.sweeps, self.fail = [], [], fail

    def run_step(self, store, experiment_id, tick):
        self.steps.append((experiment_id, tick))
        if self.fail:
            raise RuntimeError("firestore unavailable")
        return "NOTHING"

    def sweep(self, store, schedule_time):
        self.sweeps.append(schedule_time)
        return {}


@pytest.fixture
def controller(monkeypatch):
    fake = FakeController()
    monkeypatch.setattr(ep, "_controller", lambda: fake)
    return fake


def message(data, published=None):
    published = published or datetime.now(timezone.utc)
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    stamp = published.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/rollout-checks",
                       "time": stamp},
                      {"message": {"data": base64.b64encode(raw).decode(), "message_id": "m1", "publish_time": stamp,
                                   "attributes": {}},
                       "subscription": "projects/demo-offerlab/subscriptions/rollout-checks"})


def test_a_well_formed_check_runs_one_step(controller):
    ep.on_rollout_check(message({"experimentId": "e1", "tick": "2026-12-01T10:15:00Z"}))
    assert controller.steps == [("e1", "2026-12-01T10:15:00Z")]


@pytest.mark.parametrize("poison", [
    b"not json", {"tick": "2026-12-01T10:15:00Z"}, {"experimentId": "e1"}, {"experimentId": "a/b", "tick": "2026-12-01T10:15:00Z"},
    {"experimentId": "e1", "tick": "tomorrow"}, {"experimentId": 7, "tick": "2026-12-01T10:15:00Z"}, ["e1"],
])
def test_poison_messages_are_acknowledged_without_a_step(controller, poison):
    ep.on_rollout_check(message(poison))  # returns normally: Pub/Sub will not redeliver it
    assert controller.steps == []


def test_a_failing_step_is_retried_while_young_then_dropped(monkeypatch):
    fake = FakeController(fail=True)
    monkeypatch.setattr(ep, "_controller", lambda: fake)
    with pytest.raises(RuntimeError):
        ep.on_rollout_check(message({"experimentId": "e1", "tick": "2026-12-01T10:15:00Z"}))
    old = datetime.now(timezone.utc) - timedelta(minutes=11)
    ep.on_rollout_check(message({"experimentId": "e1", "tick": "2026-12-01T10:15:00Z"}, published=old))
    assert len(fake.steps) == 2


def test_the_schedule_reads_the_tick_from_the_header(controller):
    app = Flask(__name__)
    with app.test_request_context("/", method="POST", headers={"X-CloudScheduler-ScheduleTime": "2026-12-01T10:15:00Z"}):
        from flask import request
        response = ep.rollout_sweep(request)
    assert response.status_code == 200
    assert controller.sweeps == [datetime(2026, 12, 1, 10, 15, tzinfo=timezone.utc)]


def test_tick_ids_are_utc_rfc3339():
    assert tick_id(datetime(2026, 12, 1, 10, 15)) == "2026-12-01T10:15:00Z"  # naive: UTC (SDK fallback)
    assert tick_id(datetime(2026, 12, 1, 11, 15, tzinfo=timezone(timedelta(hours=1)))) == "2026-12-01T10:15:00Z"

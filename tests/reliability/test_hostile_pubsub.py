"""Hostile Pub/Sub payloads (issue 9 §2), over the wire: garbage published to the real topics on the Pub/Sub
emulator has no effect, and the topics keep flowing: a good message published after the garbage is still
processed.

The handlers' service functions under hypothesis (never raise, never act: the whole store compared) run
in-process on the in-memory store: tests/unit/test_poison_message_use_cases.py.
Already covered (not repeated): tests/e2e/test_experiment_pubsub.py (duplicates of one metric event,
five poison metric events, a fraud score out of range).
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.store import experiments as experiments_repo
from offerlab.store import metrics as metrics_repo
from tests.e2e.test_experiment_lifecycle import running_experiment
from tests.e2e.test_experiment_pubsub import poll, publisher  # noqa: F401 - fixture
from tests.e2e.test_get_offer import expected_arm
from tests.reliability._strategies import deep


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _metric_event(user: str, **over) -> dict:
    return {"eventId": f"evt-{uuid.uuid4()}", "userId": user, "type": "purchase", "value": 4.99,
            "currency": "USD", "occurredAt": iso(datetime.now(timezone.utc) + timedelta(seconds=5)), **over}


# --- over the wire: garbage on every topic, then a good message still gets through ------------------
RAW_GARBAGE = [b"not json", b"NaN", b"Infinity", b"\xff\xfe\x00", b"{", b"[]", b"null", b" ",
               json.dumps(deep(300, "k")).encode(), b'"' + b"x" * 200_000 + b'"']


def _wave(publisher, topic: str, messages: list) -> None:
    """Waves of at most 10: the functions emulator spawns one worker per concurrent delivery."""
    for i in range(0, len(messages), 10):
        for message in messages[i:i + 10]:
            publisher(topic, message)
        time.sleep(0.5)


def test_garbage_on_every_topic_has_no_effect_and_the_topics_keep_flowing(clients, publisher):
    exp, cohort = running_experiment(clients, stages=(100,))
    eid = exp["experimentId"]
    user = next(u for u in (f"hp-{uuid.uuid4().hex[:8]}" for _ in range(200)) if expected_arm(u, exp, cohort) != "HOLDOUT")
    clients.end_user(user).get_offer(experiment_id=eid)
    fraud_user = f"hpf-{uuid.uuid4().hex[:8]}"
    events_before = len(experiments_repo.list_events(eid))
    now = iso(datetime.now(timezone.utc))

    # Structured garbage aimed at this very experiment and user, plus raw non-JSON bodies, per topic.
    poison_metric = [_metric_event(user, experimentId=eid, value=v) for v in (-1, 1e12, "twelve")] + \
        [_metric_event(user, experimentId=eid, type=t) for t in ("upgrade", "", None)] + \
        [_metric_event(user, experimentId=eid, occurredAt=o) for o in ("soon", "2026-13-45T00:00:00Z", 0)]
    poison_kill = [{"experimentId": eid}, {"experimentId": eid, "reason": "", "actor": "x"},
                   {"experimentId": [eid], "reason": "r", "actor": "a"}, {"experimentId": eid + "/x", "reason": "r", "actor": "a"},
                   {"experimentId": eid, "reason": "r"}]
    poison_fraud = [{"userId": fraud_user, "score": s, "reasons": [], "occurredAt": now} for s in (-0.1, 1.5, "0.5x", None)] + \
        [{"userId": fraud_user, "score": 0.5, "reasons": ["r" * 500], "occurredAt": now},
         {"userId": fraud_user, "score": 0.5, "reasons": [], "occurredAt": "yesterday"}]
    poison_checks = [{"experimentId": eid}, {"experimentId": eid, "tick": "not-a-time"}, {"experimentId": 7, "tick": now},
                     {"experimentId": eid + "/evil", "tick": now}, {"tick": now}]
    _wave(publisher, "offer-metric-events", poison_metric + RAW_GARBAGE)
    _wave(publisher, "fraud-signals", poison_fraud + RAW_GARBAGE)
    _wave(publisher, "experiment-kill-switch", poison_kill + RAW_GARBAGE)
    _wave(publisher, "guardrail-checks", poison_checks + RAW_GARBAGE)
    _wave(publisher, "rollout-checks", poison_checks + RAW_GARBAGE)

    # Good messages after the garbage: each topic still delivers.
    good = _metric_event(user, experimentId=eid, value=2.5)
    publisher("offer-metric-events", good)
    publisher("fraud-signals", {"userId": fraud_user, "score": 0.25, "reasons": ["ok"], "occurredAt": now})
    totals = poll(lambda: metrics_repo.find_totals(eid, user), lambda t: t is not None and t["counts"].get("purchase") == 1)
    assert totals is not None and totals["counts"]["purchase"] == 1, "the good metric event did not get through"
    score = poll(lambda: metrics_repo.find_fraud_score(fraud_user), lambda s: s is not None)
    assert score is not None and score.max_score == 0.25 and score.reasons == ["ok"]
    time.sleep(2)  # stragglers: nothing the garbage could still do may show up after this point
    totals = metrics_repo.find_totals(eid, user)
    assert totals["counts"]["purchase"] == 1 and totals["amounts"]["purchase"] == pytest.approx(2.5)
    assert sum(totals["counts"].values()) == 1
    # The kill-switch and check garbage changed nothing: still RUNNING, no new lifecycle event.
    assert experiments_repo.get_experiment(eid).status.value == "RUNNING"
    assert len(experiments_repo.list_events(eid)) == events_before
    # And the kill switch still works after its garbage.
    publisher("experiment-kill-switch", {"experimentId": eid, "reason": "after garbage", "actor": "oncall@company.com"})
    doc = poll(lambda: experiments_repo.get_experiment(eid), lambda d: d.status.value == "KILLED")
    assert doc.status.value == "KILLED" and doc.status_reason == "after garbage"

"""Metric ingestion and fraud signals (API.md §5, §7) on the in-memory store: totals count each event once,
only from first exposure on (earlier events feed the CUPED covariate), only for exposed users; malformed
events are rejected and write nothing; fraud signals keep the maximum score and every reason, once per
message. The blind increments under concurrent deliveries and the exposure queries run on the emulator:
tests/integration/test_metric_ingestion.py; the Pub/Sub topics: tests/e2e/test_experiment_pubsub.py.
"""
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain import metrics as rules
from offerlab.service import metrics as svc
from offerlab.store.documents import ExperimentExposure
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import unchanged

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def exp_id():
    return f"exp-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def uid():
    return f"u{uuid.uuid4().hex[:10]}"


def expose(store, experiment_id, user_id, arm="TREATMENT", at=T0):
    assert store.exposures.record_first(ExperimentExposure(
        experiment_id=experiment_id, user_id=user_id, arm=arm, first_exposed_at=at, coverage=50.0,
        stage_index=0, experiment_version=5))


def event(user_id, kind="purchase", value=9.99, at=T0 + timedelta(hours=1), **over):
    body = {"eventId": f"ev-{uuid.uuid4().hex}", "userId": user_id, "type": kind, "value": value,
            "occurredAt": at.isoformat().replace("+00:00", "Z")}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def totals(store, experiment_id, user_id):
    return store.docs("userMetricTotals").get(f"{experiment_id}_{user_id}")


def processed(store, event_id):
    return f"metric:{event_id}" in store.docs("processedEvents")


def test_a_redelivered_event_counts_once(store, exp_id, uid):
    expose(store, exp_id, uid)
    e = event(uid, experimentId=exp_id)
    first = svc.ingest_metric_event(store, e)
    assert first.status is svc.Status.APPLIED and first.experiments == (exp_id,)
    for _ in range(2):
        assert unchanged(store, lambda: svc.ingest_metric_event(store, e)).status is svc.Status.DUPLICATE
    t = totals(store, exp_id, uid)
    assert t["counts"]["purchase"] == 1 and t["amounts"]["purchase"] == pytest.approx(9.99)
    assert t["arm"] == "TREATMENT" and t["firstExposedAt"] == T0 and t["experimentId"] == exp_id and t["userId"] == uid


def test_only_events_from_first_exposure_on_count(store, exp_id, uid):
    expose(store, exp_id, uid)
    svc.ingest_metric_event(store, event(uid, at=T0 - timedelta(seconds=1), value=50.0))
    svc.ingest_metric_event(store, event(uid, at=T0, value=10.0))
    svc.ingest_metric_event(store, event(uid, kind="refund", value=4.0, at=T0 + timedelta(days=2)))
    t = totals(store, exp_id, uid)
    assert t["counts"]["purchase"] == 1 and t["amounts"]["purchase"] == 10.0
    assert t["counts"]["refund"] == 1 and t["amounts"]["refund"] == 4.0
    assert t["preExposure"] == {"purchaseCount": 1, "purchaseAmount": 50.0, "events": 1}


def test_without_experiment_id_every_exposure_of_the_user_counts(store, uid):
    a, b, c = (f"exp-{uuid.uuid4().hex[:10]}" for _ in range(3))
    expose(store, a, uid, "CONTROL")
    expose(store, b, uid, "HOLDOUT", at=T0 + timedelta(hours=2))  # exposed after the event: covariate only
    outcome = svc.ingest_metric_event(store, event(uid, kind="renewal", value=5.0))
    assert outcome.status is svc.Status.APPLIED and set(outcome.experiments) == {a, b}
    assert totals(store, a, uid)["counts"]["renewal"] == 1
    assert totals(store, b, uid)["counts"]["renewal"] == 0 and totals(store, b, uid)["arm"] == "HOLDOUT"
    assert totals(store, c, uid) is None
    # With experimentId: only that experiment.
    svc.ingest_metric_event(store, event(uid, kind="cancellation", value=None, experimentId=a, at=T0 + timedelta(days=1)))
    assert totals(store, a, uid)["counts"]["cancellation"] == 1
    assert totals(store, b, uid)["counts"]["cancellation"] == 0


def test_events_of_never_exposed_users_stay_out(store, exp_id, uid):
    e = event(uid, experimentId=exp_id)
    assert svc.ingest_metric_event(store, e).status is svc.Status.NOT_EXPOSED
    assert svc.ingest_metric_event(store, event(uid)).status is svc.Status.NOT_EXPOSED
    assert totals(store, exp_id, uid) is None and store.docs("userMetricTotals") == {}
    assert processed(store, e["eventId"])  # acknowledged: a later exposure does not revive it
    expose(store, exp_id, uid, at=T0 - timedelta(days=1))
    assert svc.ingest_metric_event(store, e).status is svc.Status.DUPLICATE
    assert totals(store, exp_id, uid) is None


def test_an_event_for_another_experiment_of_the_user_is_not_counted(store, exp_id, uid):
    expose(store, exp_id, uid)
    other = f"exp-{uuid.uuid4().hex[:10]}"
    assert svc.ingest_metric_event(store, event(uid, experimentId=other)).status is svc.Status.NOT_EXPOSED
    assert totals(store, exp_id, uid) is None and totals(store, other, uid) is None


@pytest.mark.parametrize("change", [
    {"eventId": None}, {"userId": None}, {"type": "upgrade"}, {"value": -9.99},
    {"occurredAt": "not a time"}, {"occurredAt": "2026-03-01 12:00"}, {"userId": "a/b"}, {"eventId": ""},
])
def test_malformed_events_are_rejected_and_write_nothing(store, exp_id, uid, change):
    expose(store, exp_id, uid)
    body = event(uid, experimentId=exp_id)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    outcome = unchanged(store, lambda: svc.ingest_metric_event(store, body))
    assert outcome.status is svc.Status.REJECTED and outcome.reason
    assert "Traceback" not in outcome.reason
    assert totals(store, exp_id, uid) is None and store.docs("processedEvents") == {}


@pytest.mark.parametrize("garbage", [None, "purchase", 42, [], ["x"], {"eventId": "e"}])
def test_a_message_that_is_not_an_event_is_rejected(store, garbage):
    assert unchanged(store, lambda: svc.ingest_metric_event(store, garbage)).status is svc.Status.REJECTED


def test_repeated_shuffled_deliveries_total_as_one_in_order_delivery(store, exp_id, uid):
    """40 events, each delivered 2–3 times in random order, total exactly as the events applied once in
    order (the contention-free version of this on the emulator: tests/integration/test_metric_ingestion.py)."""
    expose(store, exp_id, uid)
    rng = random.Random(7)
    kinds = [t.value for t in rules.MetricEventType]
    events = [event(uid, kind=(kind := rng.choice(kinds)),
                    value=round(rng.uniform(1, 50), 2) if rules.MetricEventType(kind) in rules.MONEY_TYPES else None,
                    at=T0 + timedelta(minutes=rng.randint(-600, 6000)), experimentId=exp_id,
                    region=rng.choice(["US", None]), sandbox=rng.random() < 0.1 or None)
              for _ in range(40)]
    deliveries = [e for e in events for _ in range(rng.choice((2, 3)))]
    rng.shuffle(deliveries)
    statuses = [svc.ingest_metric_event(store, e).status for e in deliveries]
    assert statuses.count(svc.Status.APPLIED) == len(events)
    assert statuses.count(svc.Status.DUPLICATE) == len(deliveries) - len(events)
    expected = {}
    for e in events:
        expected = rules.apply_event(expected, rules.parse_metric_event(e), T0)
    got = totals(store, exp_id, uid)
    assert {k: v for k, v in got["counts"].items() if v} == {k: v for k, v in expected["counts"].items() if v}
    for kind, amount in expected["amounts"].items():
        assert got["amounts"].get(kind, 0.0) == pytest.approx(amount)
    assert got["preExposure"]["events"] == expected["preExposure"]["events"] > 0
    assert got.get("sandboxEvents", 0) == expected["sandboxEvents"]
    assert rules.last_event_at(got) == rules.last_event_at(expected)


# --- fraud signals -----------------------------------------------------------------------------------------

def test_fraud_signals_keep_the_max_score_and_every_reason_once_per_message(store, uid):
    at = "2026-03-01T12:00:00Z"
    first = {"userId": uid, "score": 0.4, "reasons": ["vpn"], "occurredAt": at}
    assert svc.record_fraud_signal(store, first, f"m1-{uid}").status is svc.Status.APPLIED
    assert unchanged(store, lambda: svc.record_fraud_signal(store, first, f"m1-{uid}")).status is svc.Status.DUPLICATE
    svc.record_fraud_signal(store, {"userId": uid, "score": 0.9, "reasons": ["card testing", "vpn"],
                                    "occurredAt": "2026-03-02T12:00:00Z"}, f"m2-{uid}")
    svc.record_fraud_signal(store, {"userId": uid, "score": 0.1, "reasons": [], "occurredAt": "2026-03-01T13:00:00Z"},
                            f"m3-{uid}")
    score = store.fraud_scores.find(uid)
    assert score.max_score == 0.9 and score.last_score == 0.9 and score.signals == 3  # m3 is older: not the last
    assert score.reasons == ["vpn", "card testing"]
    assert score.last_occurred_at == datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    for bad in ({"userId": uid, "score": 1.5, "occurredAt": at}, {"score": 0.5, "occurredAt": at}, "nope",
                {"userId": uid, "score": 0.5, "occurredAt": "later"}, {"userId": uid, "score": float("nan"), "occurredAt": at},
                {"userId": uid, "score": 0.5, "occurredAt": 1700000000}, None, []):
        assert unchanged(store, lambda: svc.record_fraud_signal(store, bad, f"bad-{uuid.uuid4().hex}")).status \
            is svc.Status.REJECTED
    assert store.fraud_scores.find(uid).signals == 3


def test_a_later_signal_sets_the_last_score_and_reasons_are_capped(store, uid):
    for i in range(3):
        reasons = [f"r{i}-{j}" for j in range(30)]
        svc.record_fraud_signal(store, {"userId": uid, "score": 0.2 + i / 10, "reasons": reasons,
                                        "occurredAt": f"2026-03-0{i + 1}T00:00:00Z"}, f"m{i}-{uid}")
    score = store.fraud_scores.find(uid)
    assert score.last_score == pytest.approx(0.4) and score.max_score == pytest.approx(0.4)
    assert len(score.reasons) == svc.MAX_REASONS and score.reasons[0] == "r0-0"

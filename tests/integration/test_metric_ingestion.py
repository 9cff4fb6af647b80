"""Metric ingestion on the real Firestore emulator (service layer, no Pub/Sub): what only the real store
shows — the first exposure created once, the totals merged as blind server-side increments atomically with
the event's marker (a redelivery writes nothing), the user's exposures found by query, and one user's
events delivered concurrently and repeatedly totalling exactly once.

The ingestion rules (never-exposed users, malformed events writing nothing, the CUPED covariate, fraud
signals) are unit-tested on the in-memory store: tests/unit/test_metric_use_cases.py; the Pub/Sub topics:
tests/e2e/test_experiment_pubsub.py."""
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain import metrics as rules
from offerlab.service import metrics as svc
from offerlab.store import exposures as exposures_repo
from offerlab.store import metrics as metrics_repo
from offerlab.store.documents import ExperimentExposure
from offerlab.store.firestore_store import firestore_store

STORE = firestore_store()  # the store the functions use, on the emulator

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def expose(experiment_id, user_id, arm="TREATMENT", at=T0):
    assert exposures_repo.record_first_exposure(ExperimentExposure(
        experiment_id=experiment_id, user_id=user_id, arm=arm, first_exposed_at=at, coverage=50.0,
        stage_index=0, experiment_version=5))


def event(user_id, kind="purchase", value=9.99, at=T0 + timedelta(hours=1), **over):
    body = {"eventId": f"ev-{uuid.uuid4().hex}", "userId": user_id, "type": kind, "value": value,
            "occurredAt": at.isoformat().replace("+00:00", "Z")}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def exp_id():
    return f"exp-{uuid.uuid4().hex[:10]}"


def test_the_first_exposure_is_recorded_once(firestore_db, exp_id, uid):
    expose(exp_id, uid, "CONTROL")
    again = ExperimentExposure(experiment_id=exp_id, user_id=uid, arm="TREATMENT", first_exposed_at=T0 + timedelta(days=1),
                               coverage=99.0, experiment_version=9)
    assert exposures_repo.record_first_exposure(again) is False
    kept = exposures_repo.find_exposure(exp_id, uid)
    assert kept.arm == "CONTROL" and kept.first_exposed_at == T0


def test_a_redelivered_event_counts_once(firestore_db, exp_id, uid):
    expose(exp_id, uid)
    e = event(uid, experimentId=exp_id)
    outcomes = [svc.ingest_metric_event(STORE, e).status for _ in range(3)]
    assert outcomes == [svc.Status.APPLIED, svc.Status.DUPLICATE, svc.Status.DUPLICATE]
    totals = metrics_repo.find_totals(exp_id, uid)
    assert totals["counts"]["purchase"] == 1 and totals["amounts"]["purchase"] == pytest.approx(9.99)
    assert totals["arm"] == "TREATMENT" and totals["firstExposedAt"] == T0


def test_only_events_from_first_exposure_on_count(firestore_db, exp_id, uid):
    expose(exp_id, uid)
    svc.ingest_metric_event(STORE, event(uid, at=T0 - timedelta(seconds=1), value=50.0))
    svc.ingest_metric_event(STORE, event(uid, at=T0, value=10.0))
    svc.ingest_metric_event(STORE, event(uid, kind="refund", value=4.0, at=T0 + timedelta(days=2)))
    totals = metrics_repo.find_totals(exp_id, uid)
    assert totals["counts"]["purchase"] == 1 and totals["amounts"]["purchase"] == 10.0
    assert totals["counts"]["refund"] == 1 and totals["amounts"]["refund"] == 4.0
    assert totals["preExposure"] == {"purchaseCount": 1, "purchaseAmount": 50.0, "events": 1}


def test_without_experiment_id_every_exposure_of_the_user_counts(firestore_db, uid):
    a, b, c = (f"exp-{uuid.uuid4().hex[:10]}" for _ in range(3))
    expose(a, uid, "CONTROL")
    expose(b, uid, "HOLDOUT", at=T0 + timedelta(hours=2))  # exposed after the event: covariate only
    outcome = svc.ingest_metric_event(STORE, event(uid, kind="renewal", value=5.0))
    assert outcome.status is svc.Status.APPLIED and set(outcome.experiments) == {a, b}
    assert metrics_repo.find_totals(a, uid)["counts"]["renewal"] == 1
    assert metrics_repo.find_totals(b, uid)["counts"]["renewal"] == 0
    assert metrics_repo.find_totals(c, uid) is None
    # With experimentId: only that experiment.
    svc.ingest_metric_event(STORE, event(uid, kind="cancellation", value=None, experimentId=a, at=T0 + timedelta(days=1)))
    assert metrics_repo.find_totals(a, uid)["counts"]["cancellation"] == 1
    assert metrics_repo.find_totals(b, uid)["counts"]["cancellation"] == 0


def test_one_users_events_delivered_concurrently_and_repeatedly_count_exactly_once(firestore_db, exp_id, uid):
    """The CI failure this guards against: deliveries of one user's events racing in read-modify-write
    transactions deadlocked on the emulator's locks and events were lost. Ingestion now writes blind
    increments, so 40 events x 2-3 deliveries over 12 threads must give exactly the sequential totals."""
    expose(exp_id, uid)
    rng = random.Random(7)
    kinds = [t.value for t in rules.MetricEventType]
    events = [event(uid, kind=(kind := rng.choice(kinds)),
                    value=round(rng.uniform(1, 50), 2) if rules.MetricEventType(kind) in rules.MONEY_TYPES else None,
                    at=T0 + timedelta(minutes=rng.randint(-600, 6000)), experimentId=exp_id,
                    region=rng.choice(["US", None]), sandbox=rng.random() < 0.1 or None)
              for _ in range(40)]
    deliveries = [e for e in events for _ in range(rng.choice((2, 3)))]
    rng.shuffle(deliveries)
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda e: svc.ingest_metric_event(STORE, e).status, deliveries))
    assert statuses.count(svc.Status.APPLIED) == len(events)
    assert statuses.count(svc.Status.DUPLICATE) == len(deliveries) - len(events)

    expected = {}
    for e in events:
        expected = rules.apply_event(expected, rules.parse_metric_event(e), T0)
    got = metrics_repo.find_totals(exp_id, uid)
    assert {k: v for k, v in got["counts"].items() if v} == {k: v for k, v in expected["counts"].items() if v}
    assert got["amounts"].keys() <= expected["amounts"].keys()
    for kind, amount in expected["amounts"].items():
        assert got["amounts"].get(kind, 0.0) == pytest.approx(amount)
    assert got["preExposure"]["events"] == expected["preExposure"]["events"] > 0
    assert got.get("sandboxEvents", 0) == expected["sandboxEvents"]
    assert rules.last_event_at(got) == rules.last_event_at(expected) == max(
        rules.parse_metric_event(e).occurred_at for e in events if rules.parse_metric_event(e).occurred_at >= T0)

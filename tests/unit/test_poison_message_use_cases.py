"""Hostile Pub/Sub payloads against every topic's handler, in-process on the in-memory store: a handler
logs and drops garbage, never raises (a raise would mean redelivery: a poison message retried forever)
and has no effect (the whole database compared before and after). The same garbage published to the
real topics, followed by a good message that must still get through: tests/reliability/test_hostile_pubsub.py.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from offerlab.service import killswitch, snapshots, sweeps
from offerlab.service import metrics as svc
from tests.reliability._strategies import always_invalid, json_values
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import frozen_cohort, running

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@st.composite
def broken(draw, valid: dict):
    """``valid`` with one field replaced by a value no field accepts, or any JSON value at all."""
    if draw(st.booleans()):
        return draw(json_values)
    out = dict(valid)
    out[draw(st.sampled_from(sorted(valid)))] = draw(always_invalid)
    return out


def live_store():
    """A store with one RUNNING experiment, the target every valid-looking message names."""
    store = InMemoryStore()
    eid = running(store, frozen_cohort(store).cohort_id, stages=[100]).experiment_id
    return store, eid


def test_metric_ingestion_rejects_garbage_without_raising():
    store, eid = live_store()
    valid = {"eventId": f"evt-{uuid.uuid4()}", "userId": f"ghost-{uuid.uuid4().hex[:8]}", "type": "purchase",
             "value": 4.99, "currency": "USD", "experimentId": eid,
             "occurredAt": iso(datetime.now(timezone.utc) + timedelta(seconds=5))}

    @FUZZ
    @given(data=broken(valid))
    def one(data):
        before = store.db.snapshot()
        outcome = svc.ingest_metric_event(store, data)
        assert outcome.status in (svc.Status.REJECTED, svc.Status.NOT_EXPOSED)
        if outcome.status is svc.Status.REJECTED:
            assert store.db.snapshot() == before
        assert store.docs("userMetricTotals") == {}

    one()


def test_fraud_signals_reject_garbage_without_raising():
    store = InMemoryStore()
    user = f"fz-{uuid.uuid4().hex[:8]}"
    valid = {"userId": user, "score": 0.5, "reasons": ["r"], "occurredAt": iso(datetime.now(timezone.utc))}

    @FUZZ
    @given(data=broken(valid))
    def one(data):
        assert svc.record_fraud_signal(store, data, f"m-{uuid.uuid4()}").status is svc.Status.REJECTED

    one()
    assert store.db.snapshot() == {}


def test_kill_switch_rejects_garbage_without_raising():
    store, eid = live_store()
    before = store.db.snapshot()
    valid = {"experimentId": eid, "reason": "r", "actor": "a@company.com"}

    @FUZZ
    @given(data=broken(valid))
    def one(data):
        report = killswitch.handle_kill_switch(store, data, f"m-{uuid.uuid4()}")
        assert report.rejected and report.killed == []

    one()
    assert store.db.snapshot() == before


def test_guardrail_checks_reject_garbage_without_raising():
    store, eid = live_store()
    before = store.db.snapshot()
    valid = {"experimentId": eid, "tick": iso(datetime.now(timezone.utc))}

    @FUZZ
    @given(data=broken(valid))
    def one(data):
        assert sweeps.handle_guardrail_check(store, data).status in ("REJECTED", "SKIPPED")

    one()
    assert store.db.snapshot() == before


def test_kpi_snapshot_requests_refuse_garbage_as_poison_and_never_write():
    store, eid = live_store()
    before = store.db.snapshot()
    valid = {"experimentId": eid, "tick": iso(datetime.now(timezone.utc))}

    @FUZZ
    @given(data=broken(valid))
    def one(data):
        try:  # ValueError is the poison signal (on_kpi_snapshot acknowledges it); nothing else may escape
            assert snapshots.handle_snapshot_request(store, data) == "SKIPPED"
        except ValueError:
            pass

    one()
    assert store.db.snapshot() == before

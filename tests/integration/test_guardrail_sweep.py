"""Guardrail enforcement on the real emulators (issue 6 "Done when"): an experiment whose refund rate breaches
its guardrail is killed (or paused) automatically by the scheduled sweep, through its Pub/Sub fan-out; a tick
delivered twice acts once; a bad or stale message is dropped without blocking the others; kpi_snapshot
writes per-arm sufficient statistics once per tick."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from offerlab.domain.actors import Caller, Role
from offerlab.domain.fanout import tick_id
from offerlab.service import guardrails, snapshots, sweeps
from offerlab.store import analyses as analyses_repo
from offerlab.store import experiments as experiments_repo
from offerlab.store import snapshots as snapshots_repo
from tests.integration.test_analytics import running_experiment, seed, totals_doc
from offerlab.store.firestore_store import firestore_store

STORE = firestore_store()  # the store the functions use, on the emulator

REFUND_KILL = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}]
REFUND_PAUSE = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "PAUSE"}]
REFUND_ALERT = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "ALERT"}]


def unique_tick() -> datetime:
    """A tick no other test uses: the sweep is idempotent per (experiment, tick)."""
    base = datetime(2030, 1, 1, tzinfo=timezone.utc)
    return base + timedelta(minutes=5 * (uuid.uuid4().int % 10_000_000))


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def seed_refunds(db, experiment_id, n=300, treatment_refund_every=5, control_refund_every=100):
    """n buyers per arm; every k-th refunds: treatment 20 % refunds against a 2 % limit."""
    tag = uuid.uuid4().hex[:6]
    users = []
    for arm, every in (("CONTROL", control_refund_every), ("TREATMENT", treatment_refund_every)):
        for i in range(n):
            user_id = f"{tag}-{arm[0]}{i}"
            users.append((user_id, arm, totals_doc(experiment_id, user_id, arm, purchase=9.99,
                                                   refunds=int(i % every == 0))))
    seed(db, experiment_id, users)


def poll_status(experiment_id, wanted, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        status = experiments_repo.get_experiment(experiment_id).status.value
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(1.0)


def test_the_scheduled_sweep_kills_an_experiment_whose_refund_rate_breaches_its_guardrail(clients, firestore_db,
                                                                                           functions_url):
    breaching = running_experiment(clients, REFUND_KILL)["experimentId"]
    healthy = running_experiment(clients, REFUND_KILL)["experimentId"]
    seed_refunds(firestore_db, breaching)
    seed_refunds(firestore_db, healthy, treatment_refund_every=1000)  # one refund in 300: 0.3 %
    tick = unique_tick()
    resp = requests.post(f"{functions_url}/guardrail_sweep-0", json={},
                         headers={"X-CloudScheduler-ScheduleTime": iso(tick)}, timeout=60)
    assert resp.status_code < 300, resp.text[:300]
    assert poll_status(breaching, {"KILLED"}) == "KILLED"
    killed = [e for e in experiments_repo.list_events(breaching) if e["eventType"] == "EXPERIMENT_KILLED"]
    assert len(killed) == 1 and killed[0]["actor"].startswith(guardrails.MONITOR_ACTOR)
    assert killed[0]["payload"]["source"] == "guardrail"
    assert killed[0]["payload"]["violations"][0]["metric"] == "refund_rate"
    [alert] = analyses_repo.alerts_of(breaching, guardrails.ALERT_TYPE)
    assert alert["actionTaken"] == "KILL" and alert["severity"] == "CRITICAL"
    assert experiments_repo.get_experiment(healthy).status.value == "RUNNING"


def test_a_tick_delivered_twice_acts_once(clients, firestore_db):
    eid = running_experiment(clients, REFUND_ALERT)["experimentId"]  # ALERT: it stays RUNNING, so both look
    seed_refunds(firestore_db, eid)
    message = {"experimentId": eid, "tick": iso(unique_tick())}
    first = sweeps.handle_guardrail_check(STORE, message)
    second = sweeps.handle_guardrail_check(STORE, message)
    assert (first.status, first.action) == ("ACTED", "ALERT")
    assert second.status == "ALREADY_PROCESSED"
    assert len(analyses_repo.alerts_of(eid, guardrails.ALERT_TYPE)) == 1
    assert experiments_repo.get_experiment(eid).status.value == "RUNNING"
    later = sweeps.handle_guardrail_check(STORE, {"experimentId": eid, "tick": iso(unique_tick())})
    assert later.status == "ACTED" and len(analyses_repo.alerts_of(eid, guardrails.ALERT_TYPE)) == 2


def test_pause_goes_through_the_lifecycle_and_a_paused_experiment_is_left_alone(clients, firestore_db):
    eid = running_experiment(clients, REFUND_PAUSE)["experimentId"]
    seed_refunds(firestore_db, eid)
    version = experiments_repo.get_experiment(eid).version
    outcome = sweeps.handle_guardrail_check(STORE, {"experimentId": eid, "tick": iso(unique_tick())})
    after = experiments_repo.get_experiment(eid)
    assert (outcome.action, after.status.value, after.version) == ("PAUSE", "PAUSED", version + 1)
    assert "Refund Rate" in after.status_reason
    assert sweeps.handle_guardrail_check(STORE, {"experimentId": eid, "tick": iso(unique_tick())}).status == "SKIPPED"


def test_bad_messages_are_dropped_and_do_not_block_the_others(clients, firestore_db):
    assert sweeps.handle_guardrail_check(STORE, "not an object").status == "REJECTED"
    assert sweeps.handle_guardrail_check(STORE, {"experimentId": "a/b", "tick": iso(unique_tick())}).status == "REJECTED"
    assert sweeps.handle_guardrail_check(STORE, {"experimentId": "x", "tick": "yesterday"}).status == "REJECTED"
    assert sweeps.handle_guardrail_check(STORE, {"experimentId": f"gone-{uuid.uuid4().hex[:6]}",
                                          "tick": iso(unique_tick())}).status == "SKIPPED"


def test_check_guardrails_is_a_dry_run_for_an_analyst_and_acts_for_the_author(clients, firestore_db):
    eid = running_experiment(clients, REFUND_PAUSE)["experimentId"]
    seed_refunds(firestore_db, eid)
    analyst = Caller("analyst-uid", "analyst@company.com", frozenset({Role.ANALYST}))
    report = guardrails.check_guardrails(STORE, analyst, eid)
    assert report["dryRun"] is True and report["actionTaken"] == "NONE"
    assert report["violations"][0]["kpiName"] == "Refund Rate" and report["violations"][0]["observed"] == 60 / 300
    assert experiments_repo.get_experiment(eid).status.value == "RUNNING"
    author = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
    acted = guardrails.check_guardrails(STORE, author, eid)
    assert acted["dryRun"] is False and acted["actionTaken"] == "PAUSE"
    assert experiments_repo.get_experiment(eid).status.value == "PAUSED"


def test_kpi_snapshot_writes_per_arm_sufficient_statistics_once_per_tick(clients, firestore_db):
    eid = running_experiment(clients, REFUND_ALERT)["experimentId"]
    seed_refunds(firestore_db, eid, n=120)
    tick = unique_tick()
    assert snapshots.take_snapshot(STORE, eid, tick) == "WRITTEN"
    snap = snapshots_repo.get_snapshot(eid, tick_id(tick))
    raw = firestore_db.collection("experimentSnapshots").document(f"{eid}_{tick_id(tick)}").get().to_dict()
    assert (raw["tickId"], raw["status"], raw["coverage"]) == (tick_id(tick), "RUNNING", 100.0)  # camelCase
    refund = snap.metrics["refund_rate"]
    assert refund["TREATMENT"]["n"] == 120 and refund["TREATMENT"]["sumY"] == 24 and refund["TREATMENT"]["sumX"] == 120
    assert abs(snap.metrics["arpu"]["CONTROL"]["sumY"] - 120 * 9.99) < 1e-6
    assert snap.exposures["CONTROL"] == 120 and snap.exposures["TREATMENT"] == 120
    assert snapshots.take_snapshot(STORE, eid, tick) == "EXISTING"  # the tick delivered twice
    assert snapshots.handle_snapshot_request(STORE, {"experimentId": eid, "tick": iso(tick)}) == "EXISTING"
    assert snapshots.take_snapshot(STORE, f"gone-{uuid.uuid4().hex[:8]}", tick) == "SKIPPED"
    for poison in (None, ["x"], {"experimentId": eid}, {"experimentId": "a/b", "tick": iso(tick)},
                   {"experimentId": eid, "tick": "noon"}):
        with pytest.raises(ValueError):
            snapshots.handle_snapshot_request(STORE, poison)

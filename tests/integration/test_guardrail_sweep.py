"""Guardrail enforcement on the real emulators: an experiment whose refund rate breaches its guardrail is
killed automatically by the scheduled sweep fired over HTTP, through its Pub/Sub fan-out, reading the real
per-user totals; kpi_snapshot's sufficient statistics are created once per tick by the real store.

The actions themselves (PAUSE/KILL/ALERT, the strongest of several, a tick delivered twice acting once,
the analyst's dry run, bad or stale messages dropped) are unit-tested on the in-memory store:
tests/unit/test_guardrail_use_cases.py; check_guardrails and monitor_experiment over HTTP:
tests/e2e/test_analytics_e2e.py."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

from offerlab.domain.fanout import tick_id
from offerlab.service import guardrails, snapshots
from offerlab.store import analyses as analyses_repo
from offerlab.store import experiments as experiments_repo
from offerlab.store import snapshots as snapshots_repo
from offerlab.store.firestore_store import firestore_store
from tests.integration.test_analytics import running_experiment, seed, totals_doc

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
    # Written once even when the existence check is passed by (two deliveries racing): the create refuses.
    assert STORE.snapshots.create(tick_id(tick), snap) is False
    assert firestore_db.collection("experimentSnapshots").document(f"{eid}_{tick_id(tick)}").get().to_dict() == raw

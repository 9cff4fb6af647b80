"""Analytics over HTTP, as the back office calls it: the metric path end to end (get_offer exposures →
offer-metric-events and fraud-signals over Pub/Sub → analyze_experiment), roles and refusals,
monitor_experiment's shape, check_guardrails' dry run, and kpi_snapshot fired like Cloud Scheduler does."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from offerlab.store import analyses as analyses_repo
from offerlab.store import metrics as metrics_repo
from offerlab.store import snapshots as snapshots_repo
from offerlab_client import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from tests.e2e.test_experiment_pubsub import iso, poll, publisher  # noqa: F401 - the publisher fixture
from tests.integration.test_analytics import running_experiment, seed
from tests.integration.test_guardrail_sweep import REFUND_PAUSE, seed_refunds, unique_tick

API_FIELDS = {"analysisId", "experimentId", "metric", "rawPercentChange", "correctedPercentChange", "pValue",
              "confidenceInterval", "sampleSizes", "srmPValue", "biasAdjustments", "dataQuality", "recommendation",
              "method"}


def test_metric_events_and_fraud_signals_published_to_pubsub_reach_the_analysis(clients, publisher):
    exp = running_experiment(clients)
    eid = exp["experimentId"]
    service = clients.service()
    tag = uuid.uuid4().hex[:6]
    arms = {}
    for i in range(16):
        answer = service.get_offer(user_id=f"{tag}-{i}", experiment_id=eid)
        arms[answer["userId"]] = answer["arm"]
    enrolled = [u for u, a in arms.items() if a in ("CONTROL", "TREATMENT")]
    fraudster = next(u for u in enrolled if arms[u] == "TREATMENT")
    publisher("fraud-signals", {"userId": fraudster, "score": 0.95, "reasons": ["card testing"],
                                "occurredAt": iso(datetime.now(timezone.utc))})
    assert poll(lambda: metrics_repo.find_fraud_score(fraudster), lambda s: s is not None, 60) is not None
    at = iso(datetime.now(timezone.utc) + timedelta(seconds=5))
    # One message at a time, each waited for: the functions emulator starts a worker per concurrent delivery,
    # and on a loaded shared machine a burst of worker starts fails (a delivery lost to the emulator, not to us).
    for n, user in enumerate(enrolled):
        publisher("offer-metric-events", {"eventId": f"{tag}-e{n}", "userId": user, "type": "purchase",
                                          "value": 9.99 if arms[user] == "CONTROL" else 12.99, "currency": "USD",
                                          "occurredAt": at, "experimentId": eid})
        assert poll(lambda u=user: metrics_repo.find_totals(eid, u), lambda t: t is not None, 60) is not None

    analysis = clients.experimenter().analyze_experiment(eid, "net_ltv")
    assert API_FIELDS <= set(analysis)
    control = sum(a == "CONTROL" for a in arms.values())
    treatment = sum(a == "TREATMENT" for a in arms.values())
    assert analysis["rawSampleSizes"] == {"CONTROL": control, "TREATMENT": treatment}
    assert analysis["sampleSizes"] == {"CONTROL": control, "TREATMENT": treatment - 1}  # the fraudster
    fraud = next(a for a in analysis["biasAdjustments"] if a["type"] == "fraud")
    assert fraud["affectedUserCount"] == 1 and fraud["byArm"] == {"CONTROL": 0, "TREATMENT": 1}
    # every user paid their arm's price: the raw change is exactly 12.99 / 9.99 − 1
    assert analysis["rawPercentChange"] == pytest.approx(100 * (12.99 / 9.99 - 1))
    assert analysis["dataQuality"] == "INSUFFICIENT"  # a few dozen users: the documented rule
    assert analyses_repo.get_analysis(analysis["analysisId"]).inputs_digest == analysis["inputsDigest"]


def test_roles_and_bad_payloads_are_refused_without_writing(clients):
    eid = running_experiment(clients)["experimentId"]
    before = len(analyses_repo.analyses_of(eid))
    with pytest.raises(Unauthenticated):
        clients.anonymous().analyze_experiment(eid, "net_ltv")
    for caller in (clients.end_user("u1"), clients.approver(), clients.service(), clients.experimenter("other")):
        with pytest.raises(PermissionDenied):
            caller.analyze_experiment(eid, "net_ltv")
    with pytest.raises(InvalidArgument) as err:
        clients.analyst().call("analyze_experiment", {"experimentId": eid, "metric": "profit", "extra": 1})
    assert set(err.value.field_paths) == {"metric", "extra"}
    with pytest.raises(NotFound):
        clients.analyst().analyze_experiment(f"nope-{uuid.uuid4().hex[:6]}", "net_ltv")
    with pytest.raises(PermissionDenied):
        clients.end_user("u1").monitor_experiment(eid)
    assert len(analyses_repo.analyses_of(eid)) == before
    analysis = clients.analyst().analyze_experiment(eid, "refund_rate")  # no data yet: a valid, empty analysis
    assert analysis["sampleSizes"] == {"CONTROL": 0, "TREATMENT": 0} and analysis["dataQuality"] == "INSUFFICIENT"


def test_monitor_and_check_guardrails_over_http(clients, firestore_db):
    eid = running_experiment(clients, REFUND_PAUSE)["experimentId"]
    seed_refunds(firestore_db, eid)
    report = clients.analyst().monitor_experiment(eid)
    assert set(report) >= {"experimentId", "status", "health", "issues", "stage", "stageIndex", "exposures",
                           "srmPValue", "guardrails"}
    assert report["status"] == "RUNNING" and report["stage"] == 100 and report["stageIndex"] == 0
    assert report["exposures"] == {"CONTROL": 300, "TREATMENT": 300, "HOLDOUT": 0}
    assert report["health"] == "CRITICAL" and report["guardrails"][0]["breached"] is True
    assert report["srmPValue"] == pytest.approx(1.0)
    dry = clients.analyst().check_guardrails(eid)
    assert dry["dryRun"] is True and dry["actionTaken"] == "NONE" and dry["violations"][0]["action"] == "PAUSE"
    assert clients.analyst().monitor_experiment(eid)["status"] == "RUNNING"
    acted = clients.admin().check_guardrails(eid)
    assert acted["actionTaken"] == "PAUSE" and clients.analyst().monitor_experiment(eid)["status"] == "PAUSED"


def test_kpi_snapshot_fired_like_cloud_scheduler_writes_the_ticks_snapshot(clients, firestore_db, functions_url):
    eid = running_experiment(clients)["experimentId"]
    seed(firestore_db, eid, [(f"s-{uuid.uuid4().hex[:6]}", "CONTROL", None) for _ in range(5)])
    tick = unique_tick()
    resp = requests.post(f"{functions_url}/kpi_snapshot-0", json={},
                         headers={"X-CloudScheduler-ScheduleTime": iso(tick)}, timeout=120)
    assert resp.status_code < 300, resp.text[:300]
    tick_id = tick.strftime("%Y%m%dT%H%M%SZ")
    snap = poll(lambda: snapshots_repo.get_snapshot(eid, tick_id), lambda s: s is not None, 30)
    assert snap is not None and snap.exposures["CONTROL"] == 5
    assert snap.metrics["net_ltv"]["CONTROL"]["n"] == 5 and snap.metrics["net_ltv"]["TREATMENT"]["n"] == 0

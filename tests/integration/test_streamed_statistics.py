"""Streamed statistics and monitoring on the real Firestore emulator (service layer in-process, callables
over HTTP): replayed, duplicated, shuffled and CONCURRENT event streams with late fraud flags give shard
sums equal to a full recompute (compare-and-swap per user, read-time snapshot); a GUARDRAIL KPI breach
pauses and a relative breach kills per their action; an acknowledged alert unblocks the rollout and is
ledgered."""
from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from offerlab.domain.aggregates import StreamedStatistics
from offerlab.domain.fanout import tick_stamp
from offerlab.service import metrics as ingestion
from offerlab.service import reconciliation, sweeps
from offerlab.service.aggregation import spec_for
from offerlab.store import experiments as experiments_repo
from offerlab.store.documents import ExperimentExposure
from offerlab.store.firestore_store import firestore_store
from tests.integration.test_analytics import running_experiment, seed, totals_doc

T0 = datetime.now(timezone.utc) - timedelta(hours=6)


def iso(at):
    return at.isoformat().replace("+00:00", "Z")


def test_duplicated_shuffled_concurrent_streams_with_late_fraud_equal_a_full_recompute(clients, firestore_db):
    store = firestore_store()
    experiment_id = running_experiment(clients)["experimentId"]  # net_ltv KPI baseline 100: shifted sums
    rng = random.Random(99)
    tag = uuid.uuid4().hex[:6]
    users = [(f"{tag}-u{i}", "TREATMENT" if i % 2 else "CONTROL") for i in range(40)]
    for user_id, arm in users:
        store.exposures.record_first(ExperimentExposure(
            experiment_id=experiment_id, user_id=user_id, arm=arm, first_exposed_at=T0, coverage=100.0,
            stage_index=0, experiment_version=1))
    events = []
    for n in range(240):
        user_id, _ = users[rng.randrange(len(users))]
        kind = rng.choice(["purchase", "purchase", "renewal", "refund", "cancellation", "trial_start",
                           "trial_conversion", "paywall_view"])
        body = {"eventId": f"{tag}-e{n}", "userId": user_id, "type": kind, "experimentId": experiment_id,
                "occurredAt": iso(T0 + timedelta(minutes=rng.randrange(-600, 300)))}
        if kind in ("purchase", "renewal", "refund"):
            body["value"] = round(rng.uniform(1, 120), 2)
        events.append(("event", body))
    fraudsters = [u for u, _ in users[:6]]
    signals = [("fraud", {"userId": u, "score": 0.97, "reasons": ["card_testing"], "occurredAt": iso(T0)}, f"{tag}-f{i}")
               for i, u in enumerate(fraudsters)]
    stream = events + [events[rng.randrange(len(events))] for _ in range(120)] + signals + signals[:3]
    rng.shuffle(stream)

    def deliver(item):
        if item[0] == "event":
            return ingestion.ingest_metric_event(store, item[1]).status.value
        return ingestion.record_fraud_signal(store, item[1], item[2]).status.value

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, stream))
    assert outcomes.count("APPLIED") >= len(events) and "REJECTED" not in outcomes

    time.sleep(6)  # the reconciliation reads a snapshot 5 s in the past
    result = reconciliation.reconcile(store, experiment_id, datetime.now(timezone.utc), page_size=9)
    assert result.verdict is reconciliation.Verdict.CONSISTENT, result.as_dict()
    assert result.max_relative_difference <= 1e-9 and result.users == len(users)

    stats = StreamedStatistics.from_shards(store.aggregates.read(experiment_id))
    assert sum(stats.exclusions[a]["fraud"] for a in ("CONTROL", "TREATMENT")) == len(fraudsters)
    counted = sum(sum((t.get("counts") or {}).values()) + t["preExposure"]["events"]
                  for t in (store.metric_totals.find(experiment_id, u) for u, _ in users) if t)
    assert counted == len(events)  # every unique event once: none lost, none double-counted
    spec = spec_for(experiments_repo.get_experiment(experiment_id))
    assert spec.stream("net_ltv").shift_y == 100.0
    assert stats.moments(spec, "net_ltv", "CONTROL", kept=False).n == 20
    assert stats.moments(spec, "net_ltv", "CONTROL").n == 20 - 3  # three of the six fraudsters are CONTROL


def tick():
    return datetime(2031, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=5 * (uuid.uuid4().int % 10_000_000))


def seed_arms(firestore_db, experiment_id, *, churn=(0.0, 0.0), pay=(0.0, 0.0), n=300):
    tag = uuid.uuid4().hex[:6]
    users = []
    for arm, churned, paid in (("CONTROL", churn[0], pay[0]), ("TREATMENT", churn[1], pay[1])):
        for i in range(n):
            doc = totals_doc(experiment_id, f"{tag}-{arm[0]}{i}", arm, purchase=paid * (0.5 + (i % 10) / 10))
            doc["counts"]["cancellation"] = int(i < churned * n)
            users.append((f"{tag}-{arm[0]}{i}", arm, doc))
    seed(firestore_db, experiment_id, users)


def test_a_guardrail_kpi_breach_pauses_and_a_relative_breach_kills(clients, firestore_db):
    store = firestore_store()
    kpi = running_experiment(clients)["experimentId"]  # Churn Rate: GUARDRAIL, 0.05, MAINTAIN; default PAUSE
    seed_arms(firestore_db, kpi, churn=(0.1, 0.9))
    relative = running_experiment(clients, [{"kpiName": "ARPU drop", "metric": "arpu", "maxRelativeDelta": 10,
                                             "violationAction": "KILL"}])["experimentId"]
    seed_arms(firestore_db, relative, pay=(50.0, 20.0))
    for experiment_id, action, status in ((kpi, "PAUSE", "PAUSED"), (relative, "KILL", "KILLED")):
        outcome = sweeps.handle_guardrail_check(store, {"experimentId": experiment_id, "tick": tick_stamp(tick())})
        assert outcome.status is sweeps.CheckStatus.ACTED and outcome.action == action
        assert experiments_repo.get_experiment(experiment_id).status.value == status
    report = clients.analyst().monitor_experiment(relative)
    assert report["documentsRead"] <= 1 + 48 and any(g["type"] == "relative" and g["breached"] for g in report["guardrails"])


def test_an_acknowledged_alert_unblocks_the_rollout_and_is_ledgered(clients, firestore_db):
    store = firestore_store()
    experiment = running_experiment(clients, [{"kpiName": "Refund Rate", "metric": "refund_rate",
                                               "maxThreshold": 0.02, "violationAction": "ALERT"}])
    experiment_id = experiment["experimentId"]
    tag = uuid.uuid4().hex[:6]
    seed(firestore_db, experiment_id, [(f"{tag}-{arm[0]}{i}", arm, totals_doc(
        experiment_id, f"{tag}-{arm[0]}{i}", arm, purchase=9.99, refunds=int(i % 3 == 0)))
        for arm in ("CONTROL", "TREATMENT") for i in range(300)])
    outcome = sweeps.handle_guardrail_check(store, {"experimentId": experiment_id, "tick": tick_stamp(tick())})
    assert outcome.action == "ALERT"
    pm = clients.experimenter()
    blocked = pm.check_stage_progress(experiment_id)
    assert any("alert" in b for b in blocked["blocking"])
    open_alerts = store.alerts.open_for(experiment_id)
    guardrail = [a for a in open_alerts if a["type"] == "GUARDRAIL_VIOLATION"]
    assert len(guardrail) == 1, [(a.get("type"), a.get("reason")) for a in open_alerts]
    for alert in open_alerts:  # every open alert blocks; each acknowledgement is its own ledgered event
        answer = pm.acknowledge_alert(experiment_id, alert["alertId"], "refunds from a known test batch")
        assert answer["acknowledged"] is True
    assert not any("alert" in b for b in pm.check_stage_progress(experiment_id)["blocking"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        trail = clients.analyst().get_audit_trail(experiment_id)["entries"]
        if any(e["eventType"] == "EXPERIMENT_ALERT_ACKNOWLEDGED" for e in trail):
            break
        time.sleep(1)
    assert any(e["eventType"] == "EXPERIMENT_ALERT_ACKNOWLEDGED" for e in trail)
    assert clients.analyst().verify_ledger(experiment_id)["valid"] is True

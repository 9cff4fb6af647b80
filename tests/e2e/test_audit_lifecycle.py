"""The ledger fed by the real services (issue 3 × issue 5): an experiment run through its lifecycle over
HTTP leaves a complete, valid audit trail in which every service write is authorised — and a hand edit
of the price afterwards is the one unauthorised change."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

from offerlab.store import collections as C


def _wait(predicate, timeout: float = 120.0, interval: float = 0.5):
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as err:  # functions still loading
            value = err
        if value and not isinstance(value, Exception):
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting (last value: {value!r})")


def _body(cohort_id: str) -> dict:
    now = datetime.now(timezone.utc)
    return {
        "name": f"Ledger lifecycle {uuid.uuid4().hex[:6]}", "description": "audit trail end to end",
        "hypothesis": {"statement": "Raising the price to 12.99 increases net LTV by 15%",
                       "expectedImpact": "+15% net LTV", "risksIdentified": ["churn"], "successCriteria": ["LTV +10%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"newPrice": 12.99, "productId": "pro_1299"}, "controlConfig": {"newPrice": 9.99, "productId": "pro_999"},
        "plannedStartDate": now.isoformat().replace("+00:00", "Z"),
        "plannedEndDate": (now + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "approvers": ["ceo@company.com", "cfo@company.com"],
        # Its own placement: experiments of one placement are mutually exclusive (API.md §10).
        "placement": f"p-{uuid.uuid4().hex[:12]}",
    }


def test_a_lifecycle_run_through_the_services_is_fully_and_validly_ledgered(clients, firestore_db):
    _wait(lambda: clients.analyst().get_ledger_statistics(), timeout=180)
    pm = clients.experimenter()
    cohort = pm.create_holdout_cohort(name=f"ledger holdout {uuid.uuid4().hex[:6]}", percentage=10)
    pm.freeze_holdout_cohort(cohort["cohortId"])
    experiment_id = pm.call("create_experiment", _body(cohort["cohortId"]))["experimentId"]
    pm.create_rollout_plan(experiment_id, stages=[5, 50])
    pm.submit_for_approval(experiment_id)
    clients.approver("ceo").approve_experiment(experiment_id, comment="go")
    clients.approver("cfo").approve_experiment(experiment_id, comment="agreed")
    pm.start_experiment(experiment_id)
    pm.pause_experiment(experiment_id, reason="checking refunds")

    # Wait until the last lifecycle event (the pause) is in the ledger.
    auditor = clients.analyst()
    _wait(lambda: any(e["eventType"] == "EXPERIMENT_PAUSED" and e["sourceKind"] == "EXPERIMENT_EVENT"
                      for e in auditor.get_audit_trail(experiment_id)["entries"]))
    trail = auditor.get_audit_trail(experiment_id)["entries"]
    assert [e["sequence"] for e in trail] == list(range(1, len(trail) + 1))
    assert not [e for e in trail if e["eventType"] == "UNAUTHORISED_CHANGE"], \
        "a service write did not follow the version/lastChange protocol (docs/ledger.md §7)"
    events = [e["eventType"] for e in trail if e["sourceKind"] == "EXPERIMENT_EVENT"]
    assert {"EXPERIMENT_CREATED", "EXPERIMENT_SUBMITTED", "EXPERIMENT_STARTED", "EXPERIMENT_PAUSED"} <= set(events)
    assert any(e["sourceKind"] == "EXPERIMENT_DOCUMENT" for e in trail)

    report = clients.experimenter().get_audit_report(experiment_id)
    assert [(a["approver"], a["comment"]) for a in report["approvals"]] == [("ceo@company.com", "go"),
                                                                             ("cfo@company.com", "agreed")]
    statuses = [t["toStatus"] for t in report["timeline"]]
    assert statuses[0] == "DRAFT" and statuses[-1] == "PAUSED" and "RUNNING" in statuses
    assert report["hypothesis"]["statement"].startswith("Raising the price")
    assert report["integrity"]["valid"] is True and report["unauthorisedChanges"] == []

    cohort_trail = auditor.get_audit_trail(f"cohort:{cohort['cohortId']}")["entries"]
    assert [e["payload"].get("action") for e in cohort_trail][:2] == ["COHORT_CREATED", "COHORT_FROZEN"]
    assert auditor.verify_ledger(f"cohort:{cohort['cohortId']}")["valid"] is True

    # The console edit while the experiment is live: recorded, alerted, the chain still valid.
    firestore_db.collection(C.OFFER_EXPERIMENTS).document(experiment_id).update({"offerConfig.newPrice": 7.99})
    change = _wait(lambda: [e for e in auditor.get_audit_trail(experiment_id)["entries"]
                            if e["eventType"] == "UNAUTHORISED_CHANGE"])
    assert change[0]["payload"]["changes"] == [{"path": "offerConfig.newPrice", "before": 12.99, "after": 7.99}]
    report = auditor.get_audit_report(experiment_id)
    assert len(report["unauthorisedChanges"]) == 1 and report["integrity"]["valid"] is True
    assert any(a["type"] == "UNAUTHORISED_CHANGE" for a in report["alerts"])

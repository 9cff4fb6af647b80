"""Monitoring use cases on the in-memory store: every guardrail kind acts per its action through the one
write path, an acknowledged alert unblocks the rollout (ledgered), plannedEndDate is enforced, monitoring
reads a bounded number of documents whatever the population, the reconciliation finds drift, and bad
input is refused with nothing written."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from offerlab.api import experiments as m
from offerlab.domain.actors import Caller, Role
from offerlab.domain.aggregates import SHARDS
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from offerlab.domain.fanout import tick_stamp
from offerlab.service import alerts, experiments as svc, guardrails, offers, reconciliation, rollouts, sweeps
from tests.unit.fakes import InMemoryStore
from tests.unit.monitoring_fixtures import event, expose, ingest
from tests.unit.test_lifecycle_use_cases import ADMIN, PM, approved, definition

OTHER = Caller("other-uid", "other@company.com", frozenset({Role.EXPERIMENTER}))
USER = Caller("u-1", None, frozenset())


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def cohort(store):
    from offerlab.service import holdouts as holdouts_svc

    c = holdouts_svc.create_holdout_cohort(store, PM, "holdout", 10, "", None)
    return holdouts_svc.freeze_holdout_cohort(store, PM, c.cohort_id)


def running(store, cohort, **over):
    """A RUNNING experiment made through the use cases (its definition edited before approval)."""
    e = approved(store, cohort.cohort_id)
    if over:
        svc.update_experiment(store, PM, m.UpdateExperiment.model_validate({"experimentId": e.experiment_id, **over}))
        svc.submit_for_approval(store, PM, e.experiment_id)
        from tests.unit.test_lifecycle_use_cases import CEO, CFO

        svc.approve_experiment(store, CEO, e.experiment_id, None)
        svc.approve_experiment(store, CFO, e.experiment_id, None)
    return svc.start_experiment(store, PM, e.experiment_id)


def populate(store, experiment_id, n, arm, *, churn=0.0, pay=None):
    for i in range(n):
        uid = f"{arm[0]}{i:05d}"
        expose(store, experiment_id, uid, arm, at=datetime.now(timezone.utc) - timedelta(hours=2))
        if i < churn * n:
            ingest(store, event(uid, "cancellation", experiment_id=experiment_id, at=datetime.now(timezone.utc)))
        if pay is not None:
            ingest(store, event(uid, "purchase", pay, experiment_id=experiment_id, at=datetime.now(timezone.utc)))


def sweep_check(store, experiment_id, at=None):
    at = at or datetime.now(timezone.utc)
    return sweeps.handle_guardrail_check(store, {"experimentId": experiment_id, "tick": tick_stamp(at)})


def test_a_guardrail_kpi_breach_pauses_by_default(store, cohort):
    e = running(store, cohort)  # Churn: GUARDRAIL, threshold 0.05, MAINTAIN (the seed's KPI)
    populate(store, e.experiment_id, 300, "CONTROL", churn=0.1)
    populate(store, e.experiment_id, 300, "TREATMENT", churn=1.0)
    outcome = sweep_check(store, e.experiment_id)
    assert outcome.status is sweeps.CheckStatus.ACTED and outcome.action == "PAUSE"
    assert store.experiments.get(e.experiment_id).status.value == "PAUSED"
    report = guardrails.check_guardrails(store, PM, e.experiment_id)
    churn = [g for g in report["guardrails"] if g["metric"] == "churn_rate"]
    assert {g["direction"] for g in churn} == {"max", "min"} and all(g["alpha"] == 0.025 for g in churn)
    assert any(g["breached"] and g["kpiName"] == "Churn" for g in churn)
    last = store.events_of(e.experiment_id)[-1]
    assert last["eventType"] == "EXPERIMENT_PAUSED" and last["payload"]["source"] == "guardrail"


def test_a_relative_breach_kills_per_its_action(store, cohort):
    e = running(store, cohort, guardrails=[{"kpiName": "ARPU drop", "metric": "arpu", "maxRelativeDelta": 10,
                                           "violationAction": "KILL"}], metricCaps={"arpu": 100})
    populate(store, e.experiment_id, 300, "CONTROL", pay=50.0)
    populate(store, e.experiment_id, 300, "TREATMENT", pay=10.0)
    report = guardrails.check_guardrails(store, OTHER, e.experiment_id)  # another experimenter: a dry run
    assert report["dryRun"] and report["actionTaken"] == "NONE" and report["violations"]
    [v] = [g for g in report["guardrails"] if g["type"] == "relative"]
    assert v["observed"] == pytest.approx(-80.0) and v["threshold"] == -10.0 and v["unit"] == "percent"
    outcome = sweep_check(store, e.experiment_id)
    assert outcome.action == "KILL" and store.experiments.get(e.experiment_id).status.value == "KILLED"


def test_no_breach_without_a_difference_and_monitoring_reads_a_bounded_number_of_documents(store, cohort):
    e = running(store, cohort)
    reads = []
    for n in (50, 500):
        populate(store, e.experiment_id, n, "CONTROL", churn=0.1)
        populate(store, e.experiment_id, n, "TREATMENT", churn=0.1)
        before = store.aggregates.reads()
        report = guardrails.monitor_experiment(store, PM, e.experiment_id)
        reads.append(store.aggregates.reads() - before)
        assert report["documentsRead"] <= 1 + 3 * SHARDS
    assert reads[0] <= 2 * SHARDS and reads[1] <= 2 * SHARDS  # CONTROL + TREATMENT shards, whatever n
    assert sweep_check(store, e.experiment_id).status is sweeps.CheckStatus.NO_VIOLATION


def open_alert(store, experiment_id):
    from offerlab.service.guardrails import act_on_violations

    check = guardrails.GuardrailCheck("Churn", "churn_rate", 0.05, "max", "ALERT", 1.0, 0.9, 0.001, True,
                                      "breached", 300)
    store.transaction(lambda uow: act_on_violations(uow, experiment_id, [check], via="test", key="k1"))
    return guardrails.alert_id(experiment_id, "k1")


def test_an_acknowledged_alert_stops_blocking_the_rollout_and_is_ledgered(store, cohort):
    e = running(store, cohort)
    alert = open_alert(store, e.experiment_id)
    blocked = rollouts.check_stage_progress(store, PM, e.experiment_id)
    assert any("alert" in b for b in blocked["blocking"])
    result = alerts.acknowledge_alert(store, PM, e.experiment_id, alert, "known: a test cohort")
    assert result["acknowledged"] and result["acknowledgedBy"] == "pm@company.com"
    after = rollouts.check_stage_progress(store, PM, e.experiment_id)
    assert not any("alert" in b for b in after["blocking"])
    last = store.events_of(e.experiment_id)[-1]
    assert last["eventType"] == "EXPERIMENT_ALERT_ACKNOWLEDGED" and last["fromStatus"] == last["toStatus"] == "RUNNING"
    assert last["payload"] == {"alertId": alert, "alertType": "GUARDRAIL_VIOLATION", "comment": "known: a test cohort"}
    stored = store.docs("experimentAlerts")[alert]
    assert stored["acknowledged"] is True and stored["acknowledgedInVersion"] == last["version"]


def test_acknowledging_refusals_write_nothing(store, cohort):
    e = running(store, cohort)
    alert = open_alert(store, e.experiment_id)
    before = store.db.snapshot()
    with pytest.raises(NotFound):
        alerts.acknowledge_alert(store, PM, e.experiment_id, "no-such-alert", "x")
    with pytest.raises(NotFound):
        alerts.acknowledge_alert(store, PM, "another-experiment", alert, "x")
    with pytest.raises(PermissionDenied):
        alerts.acknowledge_alert(store, OTHER, e.experiment_id, alert, "x")
    assert store.db.snapshot() == before
    alerts.acknowledge_alert(store, ADMIN, e.experiment_id, alert, "seen")
    twice = store.db.snapshot()
    with pytest.raises(FailedPrecondition):
        alerts.acknowledge_alert(store, PM, e.experiment_id, alert, "again")
    assert store.db.snapshot() == twice


def test_bad_monitoring_definitions_are_refused(store, cohort):
    for caps in ({"arpu": 0}, {"net_ltv": -5}, {"conversion_rate": 1.0}):
        with pytest.raises(ValidationError):
            definition(cohort.cohort_id, metricCaps=caps)
    with pytest.raises(ValidationError):  # a relative guardrail needs a delta in (0, 100)
        definition(cohort.cohort_id, guardrails=[{"kpiName": "x", "metric": "arpu", "maxRelativeDelta": 0,
                                                  "violationAction": "ALERT"}])
    request = definition(cohort.cohort_id, guardrails=[{"kpiName": "x", "metric": "arpu", "maxRelativeDelta": 5,
                                                        "violationAction": "ALERT"}])
    no_control = request.model_copy(update={"treatment_percentage": 100.0})  # past the api model's own check
    before = store.db.snapshot()
    with pytest.raises(InvalidArgument) as err:
        svc.create_experiment(store, PM, no_control)
    paths = [f["path"] for f in err.value.details["fields"]]
    assert "guardrails.0.maxRelativeDelta" in paths and "kpis.1.threshold" in paths
    assert store.db.snapshot() == before


def test_past_its_planned_end_an_experiment_enrolls_nobody_and_raises_one_alert(store, cohort):
    e = running(store, cohort)
    ended = store.experiments.get(e.experiment_id).model_copy(update={"planned_end_date": datetime.now(timezone.utc) - timedelta(minutes=1)})
    store.db.collection("offerExperiments")[e.experiment_id] = ended.to_firestore()
    answer = offers.get_offer(store, USER, None, e.experiment_id)
    assert answer["reason"] == "ended" and answer["arm"] == "NOT_ENROLLED"
    assert answer["offerConfig"] == ended.control_config and not store.docs("experimentExposures")
    sweep_check(store, e.experiment_id)
    sweep_check(store, e.experiment_id, datetime.now(timezone.utc) + timedelta(minutes=5))
    planned = [a for a in store.docs("experimentAlerts").values() if a["type"] == "PLANNED_END_PASSED"]
    assert len(planned) == 1 and planned[0]["acknowledged"] is False
    report = guardrails.monitor_experiment(store, PM, e.experiment_id)
    assert report["health"] in ("WARNING", "CRITICAL") and any("planned end" in i for i in report["issues"])


def test_the_reconciliation_is_consistent_on_streamed_data_and_alerts_on_drift(store, cohort):
    e = running(store, cohort)
    populate(store, e.experiment_id, 40, "CONTROL", pay=3.5)
    populate(store, e.experiment_id, 40, "TREATMENT", churn=0.5)
    at = datetime.now(timezone.utc)
    assert reconciliation.reconcile(store, e.experiment_id, at, page_size=7).verdict is reconciliation.Verdict.CONSISTENT
    shard = next(k for k, v in store.db.collection("experimentAggregates").items() if v["arm"] == "CONTROL" and v.get("users"))
    store.db.collection("experimentAggregates")[shard]["metrics"]["arpu"]["kept"]["sumY"] += 3.5  # a double count
    result = reconciliation.handle_reconciliation_request(store, {"experimentId": e.experiment_id, "tick": tick_stamp(at)})
    assert result.verdict is reconciliation.Verdict.DRIFT and "arpu" in result.where
    reconciliation.handle_reconciliation_request(store, {"experimentId": e.experiment_id, "tick": tick_stamp(at)})
    drift = [a for a in store.docs("experimentAlerts").values() if a["type"] == "AGGREGATE_DRIFT"]
    assert len(drift) == 1 and drift[0]["severity"] == "CRITICAL"
    published = reconciliation.aggregate_reconciliation(store, at)
    assert published == 1 and store.messages.published[-1][0] == reconciliation.TOPIC


def test_kpi_snapshot_writes_the_streamed_kept_sums(store, cohort):
    from offerlab.service import snapshots

    e = running(store, cohort)
    populate(store, e.experiment_id, 20, "CONTROL", pay=2.0)
    at = datetime.now(timezone.utc)
    assert snapshots.take_snapshot(store, e.experiment_id, at) == snapshots.SnapshotOutcome.WRITTEN
    [snap] = store.docs("experimentSnapshots").values()
    assert snap["metrics"]["arpu"]["CONTROL"]["n"] == 20 and snap["metrics"]["arpu"]["CONTROL"]["sumY"] == 40.0
    assert snap["exposures"]["CONTROL"] == 20

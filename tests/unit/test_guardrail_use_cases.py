"""Guardrail actions, the guardrail sweep's per-experiment check and kpi_snapshot on the in-memory store.

A breach takes its violationAction — the strongest when several are breached (KILL > PAUSE > ALERT) — in
one transaction with a GUARDRAIL_VIOLATION alert; PAUSE and KILL go through the lifecycle's write path (the
experiment's next version and its event); a tick delivered twice acts once; an analyst's check is a dry run
that writes nothing; bad or stale messages are dropped without effect. The scheduled sweep over HTTP and
its Pub/Sub fan-out on the emulators: tests/integration/test_guardrail_sweep.py.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain.fanout import tick_id
from offerlab.domain.types import ExperimentStatus, ViolationAction
from offerlab.service import experiments as svc
from offerlab.service import guardrails, snapshots, sweeps
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import (
    ADMIN, ANALYST, OTHER_PM, PM, REFUND_ALERT, REFUND_KILL, REFUND_PAUSE, buyers, frozen_cohort, running, seed,
    unchanged,
)


def unique_tick() -> datetime:
    """A tick of its own inside the experiments' planned window (30 days from now: scenarios.definition), so
    a check is never also past the planned end (which raises its own alert)."""
    base = datetime.now(timezone.utc) + timedelta(hours=1)
    return base + timedelta(minutes=5 * (uuid.uuid4().int % 8_000))


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def cohort_id(store):
    return frozen_cohort(store).cohort_id


def experiment(store, cohort_id, guardrail_list, *, refund_every=5, n=300):
    """A RUNNING experiment at 100 % with ``n`` buyers per arm: every ``refund_every``-th treatment buyer
    refunds (5: 20 % against a 2 % limit), one control buyer in 100."""
    eid = running(store, cohort_id, stages=[100], guardrails=guardrail_list).experiment_id
    seed(store, eid, buyers("CONTROL", n, 100) + buyers("TREATMENT", n, refund_every))
    return eid


def check(store, eid, at=None):
    return sweeps.handle_guardrail_check(store, {"experimentId": eid, "tick": iso(at or unique_tick())})


def alerts(store, eid):
    """The experiment's guardrail alerts (a tick past the planned end also raises a PLANNED_END_PASSED one)."""
    return [a for a in store.docs("experimentAlerts").values()
            if a["experimentId"] == eid and a["type"] == guardrails.ALERT_TYPE]


# --- the sweep's check of one experiment ---------------------------------------------------------------------

def test_a_breach_kills_through_the_lifecycle_with_a_critical_alert(store, cohort_id):
    breaching = experiment(store, cohort_id, REFUND_KILL)
    healthy = experiment(store, cohort_id, REFUND_KILL, refund_every=1000)  # one refund in 300: 0.3 %
    at = unique_tick()
    outcome = check(store, breaching, at)
    assert (outcome.status, outcome.action) == (sweeps.CheckStatus.ACTED, "KILL")
    doc = store.experiments.get(breaching)
    assert doc.status is ExperimentStatus.KILLED and doc.ended_at is not None and "Refund Rate" in doc.status_reason
    killed = [e for e in store.events_of(breaching) if e["eventType"] == "EXPERIMENT_KILLED"]
    assert len(killed) == 1 and killed[0]["actor"].startswith(guardrails.MONITOR_ACTOR)
    assert killed[0]["payload"]["source"] == "guardrail"
    assert killed[0]["payload"]["violations"][0]["metric"] == "refund_rate"
    assert killed[0]["payload"]["via"] == f"guardrail_sweep {tick_id(at)}"
    [alert] = alerts(store, breaching)
    assert alert["actionTaken"] == "KILL" and alert["severity"] == "CRITICAL" and alert["acknowledged"] is False
    assert alert["alertId"] == guardrails.alert_id(breaching, tick_id(at)) and alert["detectedAt"] == at
    assert store.plans.find(breaching).status.value == "ABORTED"  # ending the experiment closed its plan
    assert unchanged(store, lambda: check(store, healthy)).status is sweeps.CheckStatus.NO_VIOLATION
    assert store.experiments.get(healthy).status is ExperimentStatus.RUNNING


def test_a_tick_delivered_twice_acts_once(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_ALERT)  # ALERT: it stays RUNNING, so both deliveries look
    message = {"experimentId": eid, "tick": iso(unique_tick())}
    first = sweeps.handle_guardrail_check(store, message)
    second = unchanged(store, lambda: sweeps.handle_guardrail_check(store, message))
    assert (first.status, first.action) == ("ACTED", "ALERT")
    assert second.status == "ALREADY_PROCESSED"
    [alert] = alerts(store, eid)
    assert alert["severity"] == "WARNING" and alert["actionTaken"] == "ALERT"
    doc = store.experiments.get(eid)
    assert doc.status.value == "RUNNING" and doc.version == store.events_of(eid)[-1]["version"]  # no transition
    later = check(store, eid)
    assert later.status == "ACTED" and len(alerts(store, eid)) == 2


def test_pause_goes_through_the_lifecycle_and_a_paused_experiment_is_left_alone(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_PAUSE)
    version = store.experiments.get(eid).version
    outcome = check(store, eid)
    after = store.experiments.get(eid)
    assert (outcome.action, after.status.value, after.version) == ("PAUSE", "PAUSED", version + 1)
    assert "Refund Rate" in after.status_reason
    last = store.events_of(eid)[-1]
    assert last["eventType"] == "EXPERIMENT_PAUSED" and last["payload"]["source"] == "guardrail"
    assert store.plans.find(eid).status.value == "ACTIVE"  # a pause is no end: the plan stays open
    skipped = unchanged(store, lambda: check(store, eid))
    assert skipped.status == "SKIPPED" and "PAUSED" in skipped.reason


def test_the_strongest_action_is_taken_once_when_several_guardrails_are_breached(store, cohort_id):
    several = REFUND_ALERT + REFUND_PAUSE + [dict(REFUND_KILL[0], kpiName="Refund Rate (hard)", maxThreshold=0.05)]
    eid = experiment(store, cohort_id, several)
    outcome = check(store, eid)
    assert outcome.action == "KILL"
    [alert] = alerts(store, eid)
    assert alert["actionTaken"] == "KILL" and len(alert["violations"]) == 3
    kinds = [e["eventType"] for e in store.events_of(eid)]
    assert kinds.count("EXPERIMENT_KILLED") == 1 and "EXPERIMENT_PAUSED" not in kinds
    mixed = experiment(store, cohort_id, REFUND_ALERT + REFUND_PAUSE)
    assert check(store, mixed).action == "PAUSE" and store.experiments.get(mixed).status.value == "PAUSED"


def test_a_kill_also_stops_a_paused_experiment_but_an_alert_or_pause_leaves_it_alone(store, cohort_id):
    killing = experiment(store, cohort_id, REFUND_KILL)
    pausing = experiment(store, cohort_id, REFUND_PAUSE)
    for eid in (killing, pausing):
        svc.pause_experiment(store, PM, eid, "investigating")
    for eid, want, status in ((killing, ViolationAction.KILL, "KILLED"), (pausing, None, "PAUSED")):
        violations = [c for c in guardrails.check_experiment(store, store.experiments.get(eid))
                      if c.breached]
        assert violations
        taken = store.transaction(lambda uow: guardrails.act_on_violations(uow, eid, violations, via="test", key="k"))
        assert taken is want and store.experiments.get(eid).status.value == status
    assert alerts(store, pausing) == [] and len(alerts(store, killing)) == 1


def test_bad_or_stale_messages_are_dropped_and_write_nothing(store, cohort_id):
    for bad in ("not an object", {"experimentId": "a/b", "tick": iso(unique_tick())},
                {"experimentId": "x", "tick": "yesterday"}, {"experimentId": "x"}, None, []):
        assert unchanged(store, lambda: sweeps.handle_guardrail_check(store, bad)).status == "REJECTED"
    gone = unchanged(store, lambda: check(store, f"gone-{uuid.uuid4().hex[:6]}"))
    assert gone.status == "SKIPPED" and gone.reason == "no such experiment"
    ended = experiment(store, cohort_id, REFUND_KILL)
    svc.complete_experiment(store, PM, ended)
    assert unchanged(store, lambda: check(store, ended)).status == "SKIPPED"


def test_the_sweep_publishes_one_check_per_running_experiment(store, cohort_id):
    a = experiment(store, cohort_id, REFUND_ALERT)
    b = experiment(store, cohort_id, REFUND_ALERT)
    svc.pause_experiment(store, PM, b, "held")
    c = experiment(store, cohort_id, REFUND_ALERT)
    at = datetime(2026, 12, 1, 10, 5, tzinfo=timezone.utc)
    assert unchanged(store, lambda: sweeps.guardrail_sweep(store, at)) == 2
    assert sorted(m["experimentId"] for t, m in store.messages.published if t == sweeps.GUARDRAIL_TOPIC) == sorted([a, c])
    assert {m["tick"] for _, m in store.messages.published} == {"2026-12-01T10:05:00Z"}


# --- check_guardrails (the callable) -------------------------------------------------------------------------

def test_check_guardrails_is_a_dry_run_for_an_analyst_and_acts_for_the_author(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_PAUSE)
    for reader in (ANALYST, OTHER_PM):
        report = unchanged(store, lambda: guardrails.check_guardrails(store, reader, eid))
        assert report["dryRun"] is True and report["actionTaken"] == "NONE"
        assert report["violations"][0]["kpiName"] == "Refund Rate" and report["violations"][0]["observed"] == 60 / 300
    assert store.experiments.get(eid).status.value == "RUNNING"
    acted = guardrails.check_guardrails(store, PM, eid)
    assert acted["dryRun"] is False and acted["actionTaken"] == "PAUSE"
    assert acted["guardrails"][0]["breached"] is True and acted["guardrails"][0]["nTreatment"] == 300
    assert store.experiments.get(eid).status.value == "PAUSED"
    last = store.events_of(eid)[-1]
    assert last["actor"].startswith(guardrails.MONITOR_ACTOR) and "check_guardrails by" in last["payload"]["via"]
    [alert] = alerts(store, eid)
    assert alert["alertId"].startswith(f"guardrail_{eid}_manual-")


def test_check_guardrails_by_an_admin_acts_and_without_a_breach_nothing_is_written(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_KILL)
    assert guardrails.check_guardrails(store, ADMIN, eid)["actionTaken"] == "KILL"
    assert store.experiments.get(eid).status.value == "KILLED"
    healthy = experiment(store, cohort_id, REFUND_KILL, refund_every=1000)
    report = unchanged(store, lambda: guardrails.check_guardrails(store, PM, healthy))
    assert report["violations"] == [] and report["actionTaken"] == "NONE" and report["dryRun"] is False


def test_too_few_treatment_users_is_insufficient_data_not_a_breach(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_KILL, n=40)  # 20 % refunds, but 40 users
    report = unchanged(store, lambda: guardrails.check_guardrails(store, PM, eid))
    assert report["violations"] == [] and report["guardrails"][0]["status"] == "insufficient_data"
    assert report["guardrails"][0]["nTreatment"] == 40 and report["guardrails"][0]["observed"] is None


def test_monitor_experiment_reports_health_and_writes_nothing(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_ALERT)
    report = unchanged(store, lambda: guardrails.monitor_experiment(store, ANALYST, eid))
    assert report["status"] == "RUNNING" and report["health"] == "CRITICAL" and report["stage"] == 100
    assert report["exposures"] == {"CONTROL": 300, "TREATMENT": 300, "HOLDOUT": 0} and report["srmPValue"] > 0.5
    assert any("Refund Rate" in issue and "breached" in issue for issue in report["issues"])
    healthy = experiment(store, cohort_id, REFUND_ALERT, refund_every=1000)
    assert guardrails.monitor_experiment(store, ANALYST, healthy)["health"] == "HEALTHY"


# --- kpi_snapshot ------------------------------------------------------------------------------------------

def test_kpi_snapshot_writes_per_arm_sufficient_statistics_once_per_tick(store, cohort_id):
    eid = experiment(store, cohort_id, REFUND_ALERT, n=120)
    at = unique_tick()
    assert snapshots.take_snapshot(store, eid, at) == "WRITTEN"
    raw = store.docs("experimentSnapshots")[f"{eid}_{tick_id(at)}"]
    assert (raw["tickId"], raw["status"], raw["coverage"]) == (tick_id(at), "RUNNING", 100.0)  # camelCase
    refund = raw["metrics"]["refund_rate"]
    assert refund["TREATMENT"]["n"] == 120 and refund["TREATMENT"]["sumY"] == 24 and refund["TREATMENT"]["sumX"] == 120
    assert abs(raw["metrics"]["arpu"]["CONTROL"]["sumY"] - 120 * 9.99) < 1e-6
    assert raw["exposures"]["CONTROL"] == 120 and raw["exposures"]["TREATMENT"] == 120
    assert unchanged(store, lambda: snapshots.take_snapshot(store, eid, at)) == "EXISTING"  # the tick delivered twice
    assert unchanged(store, lambda: snapshots.handle_snapshot_request(
        store, {"experimentId": eid, "tick": iso(at)})) == "EXISTING"
    assert unchanged(store, lambda: snapshots.take_snapshot(store, f"gone-{uuid.uuid4().hex[:8]}", at)) == "SKIPPED"
    for poison in (None, ["x"], {"experimentId": eid}, {"experimentId": "a/b", "tick": iso(at)},
                   {"experimentId": eid, "tick": "noon"}):
        with pytest.raises(ValueError):
            unchanged(store, lambda: snapshots.handle_snapshot_request(store, poison))


def test_kpi_snapshot_fans_out_to_running_and_paused_experiments_only(store, cohort_id):
    live = experiment(store, cohort_id, REFUND_ALERT)
    paused = experiment(store, cohort_id, REFUND_ALERT)
    svc.pause_experiment(store, PM, paused, "held")
    ended = experiment(store, cohort_id, REFUND_ALERT)
    svc.complete_experiment(store, PM, ended)
    at = datetime(2026, 12, 1, 11, tzinfo=timezone.utc)
    assert unchanged(store, lambda: snapshots.kpi_snapshot(store, at)) == 2
    assert sorted(m["experimentId"] for _, m in store.messages.published) == sorted([live, paused])
    assert snapshots.take_snapshot(store, paused, at) == "WRITTEN"
    assert unchanged(store, lambda: snapshots.take_snapshot(store, ended, at)) == "SKIPPED"

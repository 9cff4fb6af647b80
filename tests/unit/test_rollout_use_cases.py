"""The rollout controller's use cases on the in-memory store (tests/unit/fakes.py).

Each change writes the plan (version + 1), one rolloutEvents document, and — when the stage moves — the
experiment's coverage with version + 1 and its experimentEvents document, all in one transaction; every
refusal writes nothing (the whole database compared); a sweep step applied twice for one tick has no second
effect; the tick's time is the clock. The sweep over HTTP and Pub/Sub, with get_offer answering from the
moved coverage: tests/e2e/test_rollout_sweep.py; one pass over the real store:
tests/integration/test_rollout_controller.py.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from offerlab.domain.actors import system_actor
from offerlab.domain.lifecycle import Command
from offerlab.service import experiments as svc
from offerlab.service import rollouts as ctl
from offerlab.service.transitions import transition_experiment
from offerlab.store.documents import ExperimentExposure
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import (
    ADMIN, OTHER_PM, PM, approved, definition, frozen_cohort, refused, running, seed, three_in_four_refund, tick,
    unchanged,
)


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def cohort_id(store):
    return frozen_cohort(store).cohort_id


def assert_consistent(store, eid):
    """Plan and experiment agree; events are contiguous per version on both sides (the ledger's premise)."""
    plan, exp = store.plans.find(eid), store.experiments.get(eid)
    revents, eevents = store.rollout_events_of(eid), store.events_of(eid)
    assert [e["version"] for e in revents] == list(range(1, plan.version + 1))
    assert [e["version"] for e in eevents] == list(range(1, exp.version + 1))
    assert plan.last_change.version == plan.version and exp.last_change.version == exp.version
    assert plan.last_change.action == revents[-1]["eventType"] and exp.last_change.action == eevents[-1]["eventType"]
    if plan.status.value != "ABORTED":
        assert exp.coverage == plan.stages[plan.current_stage_index].percentage
        assert exp.stage_index == plan.current_stage_index
    return plan, exp, revents, eevents


def entered(store, eid):
    return store.plans.find(eid).stage_entered_at


# --- the sweep's step, per tick -----------------------------------------------------------------------------

def test_the_sweep_step_walks_the_stages_on_the_ticks_clock_once_per_tick(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    t0 = entered(store, eid)
    # 30 minutes in: too early (1 hour required) — the tick's clock decides, not the wall clock.
    assert ctl.run_step(store, eid, tick(t0 + timedelta(minutes=30))) == "NOTHING"
    assert store.experiments.get(eid).coverage == 1
    t = t0
    for index, (previous, expected) in enumerate(zip((1, 5, 10, 25), (5, 10, 25, 50)), start=1):
        t = t + timedelta(hours=2)
        commits = store.db.commits
        assert ctl.run_step(store, eid, tick(t)) == "PROGRESS"
        assert store.db.commits == commits + 1  # plan, its event, the experiment and its event: one commit
        assert unchanged(store, lambda: ctl.run_step(store, eid, tick(t))) == "DUPLICATE"  # no second effect
        plan, e, revents, eevents = assert_consistent(store, eid)
        assert e.coverage == expected and plan.status.value == "ACTIVE" and plan.stage_entered_at == t
        last = revents[-1]
        assert last["eventType"] == "ROLLOUT_PROGRESSED" and last["toStage"] == expected and last["tick"] == tick(t)
        assert last["actor"] == "rollout_sweep" and last["evidence"]["ready"] is True
        # The coverage moved through the experiment's own write path: version + 1 and its event.
        assert eevents[-1]["eventType"] == "ROLLOUT_PROGRESSED" and eevents[-1]["actor"] == "rollout_sweep"
        assert eevents[-1]["payload"] == {"coverage": expected, "stageIndex": index, "fromCoverage": previous,
                                          "rolloutPlanVersion": plan.version}
        assert eevents[-1]["fromStatus"] == eevents[-1]["toStatus"] == "RUNNING"
    # The final stage: the sweep keeps guarding it but never goes further.
    assert ctl.run_step(store, eid, tick(t + timedelta(days=3))) == "NOTHING"
    assert store.experiments.get(eid).coverage == 50


def test_a_tick_that_did_nothing_is_still_processed_once(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    early = tick(entered(store, eid) + timedelta(minutes=10))
    assert ctl.run_step(store, eid, early) == "NOTHING"
    assert store.already_processed(ctl.STEP_SCOPE, f"{eid}:{early}")
    assert unchanged(store, lambda: ctl.run_step(store, eid, early)) == "DUPLICATE"
    assert store.rollout_events_of(eid)[-1]["eventType"] == "ROLLOUT_STARTED"


def test_without_auto_progress_the_sweep_only_watches(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=False).experiment_id
    assert ctl.run_step(store, eid, tick(entered(store, eid) + timedelta(days=2))) == "NOTHING"
    assert store.experiments.get(eid).coverage == 1
    assert store.rollout_events_of(eid)[-1]["eventType"] == "ROLLOUT_STARTED"


def test_the_sweep_skips_what_is_not_its_to_move_and_writes_nothing(store, cohort_id):
    assert unchanged(store, lambda: ctl.run_step(store, "no-such-experiment", tick(datetime.now(timezone.utc)))) == "SKIPPED"
    planned = svc.create_experiment(store, PM, definition(cohort_id))
    assert unchanged(store, lambda: ctl.run_step(store, planned.experiment_id, tick(datetime.now(timezone.utc)))) == "SKIPPED"
    paused_exp = running(store, cohort_id, autoProgress=True).experiment_id
    svc.pause_experiment(store, PM, paused_exp, "looking into it")  # the experiment paused, its plan still ACTIVE
    assert store.plans.find(paused_exp).status.value == "ACTIVE"
    later = tick(entered(store, paused_exp) + timedelta(days=2))
    assert ctl.run_step(store, paused_exp, later) == "SKIPPED"
    assert store.experiments.get(paused_exp).coverage == 1


def test_a_plan_changed_after_it_was_judged_is_left_for_the_next_tick(store, cohort_id, monkeypatch):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    t = tick(entered(store, eid) + timedelta(hours=2))
    real = ctl.gather_facts

    def racing(store_, plan, experiment, now):  # a person pauses the rollout while the evidence is read
        facts = real(store_, plan, experiment, now)
        ctl.pause_rollout(store, PM, eid, "someone else acted")
        return facts

    monkeypatch.setattr(ctl, "gather_facts", racing)
    assert ctl.run_step(store, eid, t) == "SKIPPED"
    plan = store.plans.find(eid)
    assert plan.status.value == "PAUSED" and store.experiments.get(eid).coverage == 1


# --- manual progress ---------------------------------------------------------------------------------------

def test_manual_progress_is_refused_while_blocked_and_writes_nothing(store, cohort_id):
    eid = running(store, cohort_id, stages=[1, 5, 10]).experiment_id  # the defaults: 24 hours, 100 exposures per arm
    err = refused(store, FailedPrecondition, lambda: ctl.progress_rollout(store, PM, eid))
    blocking = err.value.details["blocking"]
    assert any("must run for at least 24 hours" in b for b in blocking)
    assert any("Not enough users have seen each version" in b and "at least 100 each" in b for b in blocking)
    report = unchanged(store, lambda: ctl.check_stage_progress(store, PM, eid))
    assert report["ready"] is False and report["stage"] == 1 and report["nextStage"] == 5
    assert report["blocking"] == blocking and any("Every guardrail metric is within its limits" in x for x in report["met"])
    refused(store, PermissionDenied, lambda: ctl.progress_rollout(store, OTHER_PM, eid))
    refused(store, NotFound, lambda: ctl.progress_rollout(store, PM, f"nope-{uuid.uuid4().hex}"))


def test_manual_progress_when_ready(store, cohort_id):
    eid = running(store, cohort_id, stages=[{"percentage": 1, "minHoursAtStage": 0, "minExposuresPerArm": 0}, 5]).experiment_id
    view = ctl.progress_rollout(store, PM, eid)
    assert view["stage"] == 5 and view["currentStageIndex"] == 1
    plan, exp, revents, eevents = assert_consistent(store, eid)
    assert revents[-1]["actor"] == "pm@company.com" and revents[-1]["fromStage"] == 1
    assert revents[-1]["evidence"]["ready"] is True and eevents[-1]["payload"]["fromCoverage"] == 1
    # At the final stage there is nowhere to go.
    refused(store, FailedPrecondition, lambda: ctl.progress_rollout(store, PM, eid))


def test_manual_progress_is_refused_when_the_plan_changed_while_it_was_judged(store, cohort_id, monkeypatch):
    eid = running(store, cohort_id, stages=[{"percentage": 1, "minHoursAtStage": 0, "minExposuresPerArm": 0}, 5]).experiment_id
    real = ctl.judge

    def racing(store_, experiment_id, now):
        judgement = real(store_, experiment_id, now)
        ctl.pause_rollout(store, PM, eid, "paused meanwhile")
        return judgement

    monkeypatch.setattr(ctl, "judge", racing)
    with pytest.raises(Aborted):
        ctl.progress_rollout(store, PM, eid)
    assert store.plans.find(eid).status.value == "PAUSED" and store.experiments.get(eid).coverage == 1


# --- pause, resume, rollback, abort ---------------------------------------------------------------------

def test_pause_resume_rollback_and_their_refusals(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    t0 = entered(store, eid)
    refused(store, FailedPrecondition, lambda: ctl.rollback_rollout(store, PM, eid, "nothing below 1%"))
    refused(store, FailedPrecondition, lambda: ctl.start_rollout(store, PM, eid))  # already ACTIVE
    assert ctl.run_step(store, eid, tick(t0 + timedelta(hours=2))) == "PROGRESS"
    paused = ctl.pause_rollout(store, PM, eid, "waiting for the finance review")
    assert paused["status"] == "PAUSED" and paused["statusReason"] == "waiting for the finance review"
    assert store.rollout_events_of(eid)[-1]["eventType"] == "ROLLOUT_PAUSED"
    refused(store, FailedPrecondition, lambda: ctl.pause_rollout(store, PM, eid, "again"))
    refused(store, FailedPrecondition, lambda: ctl.progress_rollout(store, PM, eid))
    # A paused plan is not progressed by the sweep, whatever the evidence.
    assert unchanged(store, lambda: ctl.run_step(store, eid, tick(t0 + timedelta(days=5)))) == "SKIPPED"
    resumed = ctl.start_rollout(store, PM, eid)
    assert resumed["status"] == "ACTIVE" and store.rollout_events_of(eid)[-1]["eventType"] == "ROLLOUT_RESUMED"
    back = ctl.rollback_rollout(store, PM, eid, "support tickets up")
    assert back["stage"] == 1 and back["status"] == "PAUSED"
    plan, exp, revents, eevents = assert_consistent(store, eid)
    assert exp.coverage == 1 and revents[-1]["eventType"] == "ROLLOUT_ROLLED_BACK"
    assert revents[-1]["fromStage"] == 5 and revents[-1]["toStage"] == 1 and revents[-1]["reason"] == "support tickets up"
    assert eevents[-1]["eventType"] == "ROLLOUT_ROLLED_BACK" and eevents[-1]["payload"]["coverage"] == 1
    refused(store, PermissionDenied, lambda: ctl.pause_rollout(store, OTHER_PM, eid, "not mine"))
    refused(store, FailedPrecondition, lambda: ctl.rollback_rollout(store, PM, eid, "already at the first stage"))


def test_resuming_a_rollout_needs_a_running_experiment(store, cohort_id):
    eid = running(store, cohort_id).experiment_id
    ctl.pause_rollout(store, PM, eid, "hold")
    svc.pause_experiment(store, PM, eid, "the experiment too")
    err = refused(store, FailedPrecondition, lambda: ctl.start_rollout(store, PM, eid))
    assert "resume the experiment first" in err.value.message


def test_rollout_commands_on_a_plan_that_has_not_started_are_refused(store, cohort_id):
    eid = approved(store, cohort_id).experiment_id  # plan PLANNED
    for call in (lambda: ctl.progress_rollout(store, PM, eid), lambda: ctl.check_stage_progress(store, PM, eid)):
        refused(store, FailedPrecondition, call)
    refused(store, FailedPrecondition, lambda: ctl.start_rollout(store, PM, eid))   # starts with the experiment
    refused(store, FailedPrecondition, lambda: ctl.pause_rollout(store, PM, eid, "x"))
    refused(store, FailedPrecondition, lambda: ctl.rollback_rollout(store, PM, eid, "x"))
    refused(store, FailedPrecondition, lambda: ctl.abort_rollout(store, ADMIN, eid, "x"))
    no_plan = svc.create_experiment(store, PM, definition(cohort_id)).experiment_id
    for call in (lambda: ctl.pause_rollout(store, PM, no_plan, "x"), lambda: ctl.progress_rollout(store, PM, no_plan)):
        refused(store, NotFound, call)


def test_abort_is_admin_only_kills_the_experiment_and_finishes_the_rollout(store, cohort_id):
    eid = running(store, cohort_id).experiment_id
    refused(store, PermissionDenied, lambda: ctl.abort_rollout(store, PM, eid, "stop"))
    commits = store.db.commits
    view = ctl.abort_rollout(store, ADMIN, eid, "price complaints in the press")
    assert store.db.commits == commits + 1
    assert view["status"] == "ABORTED" and view["stage"] == 0
    plan, exp = store.plans.find(eid), store.experiments.get(eid)
    revents, eevents = store.rollout_events_of(eid), store.events_of(eid)
    assert exp.status.value == "KILLED" and exp.coverage == 0 and exp.status_reason == "price complaints in the press"
    assert eevents[-1]["eventType"] == "EXPERIMENT_KILLED" and eevents[-1]["payload"]["source"] == "abort_rollout"
    assert revents[-1]["eventType"] == "ROLLOUT_ABORTED" and revents[-1]["actor"] == "admin@company.com"
    assert revents[-1]["reason"] == "price complaints in the press" and plan.status_reason == revents[-1]["reason"]
    assert [e["version"] for e in revents] == list(range(1, plan.version + 1))
    assert [e["version"] for e in eevents] == list(range(1, exp.version + 1))
    # A finished rollout refuses everything, writing nothing.
    for call in (lambda: ctl.progress_rollout(store, PM, eid), lambda: ctl.pause_rollout(store, PM, eid, "x"),
                 lambda: ctl.rollback_rollout(store, PM, eid, "x"), lambda: ctl.start_rollout(store, PM, eid),
                 lambda: ctl.abort_rollout(store, ADMIN, eid, "again")):
        refused(store, FailedPrecondition, call)
    assert unchanged(store, lambda: ctl.run_step(store, eid, tick(datetime.now(timezone.utc)))) == "SKIPPED"


# --- the evidence: guardrails, open alerts, sample-ratio mismatch ------------------------------------------

@pytest.mark.parametrize("flags, decision, stage, event", [
    ({"autoProgress": True, "pauseOnViolation": True, "rollbackOnFailure": True}, "ROLLBACK", 5, "ROLLOUT_ROLLED_BACK"),
    ({"autoProgress": True, "pauseOnViolation": True, "rollbackOnFailure": False}, "PAUSE", 10, "ROLLOUT_PAUSED"),
    ({"autoProgress": True, "pauseOnViolation": False, "rollbackOnFailure": False}, "NOTHING", 10, "ROLLOUT_PROGRESSED"),
])
def test_a_guardrail_breach_at_10_percent(store, cohort_id, flags, decision, stage, event):
    eid = running(store, cohort_id, **flags).experiment_id
    t = entered(store, eid)
    for _ in range(2):
        t += timedelta(hours=2)
        assert ctl.run_step(store, eid, tick(t)) == "PROGRESS"
    assert store.experiments.get(eid).coverage == 10
    seed(store, eid, three_in_four_refund())
    report = ctl.check_stage_progress(store, PM, eid)
    assert not report["ready"] and any("Guardrail 'Refund Rate' (refund_rate) is 0.75, above its maximum of 0.02" in b
                                       for b in report["blocking"]), report["blocking"]
    t += timedelta(hours=2)
    assert ctl.run_step(store, eid, tick(t)) == decision
    plan, exp, revents, _ = assert_consistent(store, eid)
    assert exp.coverage == stage and revents[-1]["eventType"] == event
    if decision != "NOTHING":
        assert plan.status.value == "PAUSED" and "Refund Rate" in plan.status_reason
        assert revents[-1]["evidence"]["ready"] is False and revents[-1]["tick"] == tick(t)
    else:
        assert plan.status.value == "ACTIVE" and plan.version == revents[-1]["version"]


def test_a_breach_at_the_first_stage_pauses_instead_of_rolling_back(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True, pauseOnViolation=False, rollbackOnFailure=True).experiment_id
    seed(store, eid, three_in_four_refund())
    assert ctl.run_step(store, eid, tick(entered(store, eid) + timedelta(hours=2))) == "PAUSE"
    plan = store.plans.find(eid)
    assert plan.status.value == "PAUSED" and plan.current_stage_index == 0 and store.experiments.get(eid).coverage == 1


def test_an_open_alert_blocks_and_pauses(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    store.db.collection("experimentAlerts")[f"test-{uuid.uuid4().hex}"] = {
        "experimentId": eid, "type": "UNAUTHORISED_CHANGE", "acknowledged": False, "detectedAt": "2026-01-01T00:00:00Z"}
    report = ctl.check_stage_progress(store, PM, eid)
    assert any("unauthorised change detected at 2026-01-01T00:00:00Z" in b for b in report["blocking"])
    assert ctl.run_step(store, eid, tick(entered(store, eid) + timedelta(hours=2))) == "PAUSE"
    assert store.plans.find(eid).status.value == "PAUSED" and store.experiments.get(eid).coverage == 1


def test_an_acknowledged_alert_blocks_nothing(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    store.db.collection("experimentAlerts")["old"] = {"experimentId": eid, "type": "GUARDRAIL_VIOLATION",
                                                      "acknowledged": True}
    assert ctl.run_step(store, eid, tick(entered(store, eid) + timedelta(hours=2))) == "PROGRESS"


def test_a_sample_ratio_mismatch_blocks_and_pauses(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    at = datetime.now(timezone.utc)
    for i in range(400):  # 300 control, 100 treatment on a 50/50 split
        store.exposures.record_first(ExperimentExposure(
            experiment_id=eid, user_id=f"u{i}", arm="CONTROL" if i < 300 else "TREATMENT", first_exposed_at=at,
            coverage=1.0, stage_index=0, experiment_version=1))
    report = ctl.check_stage_progress(store, PM, eid)
    assert report["exposures"] == {"CONTROL": 300, "TREATMENT": 100, "HOLDOUT": 0} and report["srmPValue"] < 1e-6
    assert any("not split between the versions as configured" in b for b in report["blocking"])
    assert ctl.run_step(store, eid, tick(entered(store, eid) + timedelta(hours=2))) == "PAUSE"
    assert store.plans.find(eid).status.value == "PAUSED"


# --- ending the experiment --------------------------------------------------------------------------------

def test_ending_an_experiment_closes_its_plan_at_once_and_the_sweep_closes_any_left_open(store, cohort_id):
    completed = running(store, cohort_id, autoProgress=True).experiment_id
    svc.complete_experiment(store, PM, completed)
    plan, last = store.plans.find(completed), store.rollout_events_of(completed)[-1]
    assert plan.status.value == "COMPLETED" and (last["eventType"], last["actor"]) == ("ROLLOUT_CLOSED", "pm@company.com")
    now = tick(datetime.now(timezone.utc))
    assert unchanged(store, lambda: ctl.run_step(store, completed, now)) == "SKIPPED"  # nothing left for the sweep

    killed = running(store, cohort_id, autoProgress=True).experiment_id
    svc.kill_experiment(store, ADMIN, killed, "refunds")
    assert store.plans.find(killed).status.value == "ABORTED"
    assert store.rollout_events_of(killed)[-1]["eventType"] == "ROLLOUT_CLOSED"

    # An experiment ended some other way (here by hand, in the console): the sweep still closes its plan.
    by_hand = running(store, cohort_id, autoProgress=True).experiment_id
    store.db.collection("offerExperiments")[by_hand]["status"] = "COMPLETED"
    assert ctl.run_step(store, by_hand, now) == ctl.StepOutcome.CLOSED
    plan, last = store.plans.find(by_hand), store.rollout_events_of(by_hand)[-1]
    assert plan.status.value == "COMPLETED" and (last["eventType"], last["actor"], last["tick"]) == (
        "ROLLOUT_CLOSED", "rollout_sweep", now)
    assert not {completed, killed, by_hand} & set(store.plans.active_ids())


def test_a_guardrail_kill_by_the_monitor_closes_the_plan_as_aborted(store, cohort_id):
    eid = running(store, cohort_id).experiment_id
    monitor = system_actor("guardrail-monitor (via test)")
    store.transaction(lambda uow: transition_experiment(uow, eid, Command.KILL, monitor,
                                                        svc.kill_change("refunds", "guardrail")))
    plan, last = store.plans.find(eid), store.rollout_events_of(eid)[-1]
    assert plan.status.value == "ABORTED" and last["actor"] == "guardrail-monitor (via test)"
    assert plan.status_reason == "the experiment is KILLED"


# --- the sweep's fan-out --------------------------------------------------------------------------------------

def test_the_sweep_publishes_one_check_per_active_plan(store, cohort_id):
    active = [running(store, cohort_id, autoProgress=True).experiment_id for _ in range(3)]
    ctl.pause_rollout(store, PM, active[2], "held")
    at = datetime(2026, 12, 1, 10, 15, tzinfo=timezone.utc)
    result = unchanged(store, lambda: ctl.sweep(store, at))
    assert result == {"tick": "2026-12-01T10:15:00Z", "plans": 2, "published": 2, "inline": 0}
    assert sorted(store.messages.published, key=lambda m: m[1]["experimentId"]) == sorted(
        ((ctl.CHECK_TOPIC, {"experimentId": i, "tick": "2026-12-01T10:15:00Z"}) for i in active[:2]),
        key=lambda m: m[1]["experimentId"])


def test_when_publishing_fails_the_sweep_runs_the_steps_inline_once(store, cohort_id):
    eid = running(store, cohort_id, autoProgress=True).experiment_id
    store.messages.fail = True
    at = entered(store, eid) + timedelta(hours=2)
    assert ctl.sweep(store, at) == {"tick": tick(at), "plans": 1, "published": 0, "inline": 1}
    assert store.experiments.get(eid).coverage == 5
    assert ctl.sweep(store, at)["inline"] == 1  # the same tick again: the step finds it applied
    assert store.experiments.get(eid).coverage == 5
    assert [e["eventType"] for e in store.rollout_events_of(eid)].count("ROLLOUT_PROGRESSED") == 1


def test_the_sweep_with_no_active_plan_publishes_nothing(store):
    assert ctl.sweep(store, datetime(2026, 12, 1, tzinfo=timezone.utc)) == {
        "tick": "2026-12-01T00:00:00Z", "plans": 0, "published": 0, "inline": 0}
    assert store.messages.published == []

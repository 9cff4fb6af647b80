"""The rollout controller's transactions on the real Firestore emulator (service layer, no HTTP).

Each change writes the plan (version + 1), one rolloutEvents document, and — when the stage moves — the
experiment's coverage with version + 1 and its experimentEvents document, all in one transaction; a refusal
writes nothing; a sweep step applied twice for one tick has no second effect; the tick's time is the clock.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import FailedPrecondition, NotFound, PermissionDenied
from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import rollout_plans
from offerlab.service import rollouts as ctl
from offerlab.store import experiments as repo
from offerlab.store import rollouts as rollouts_repo

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
OTHER_PM = Caller("pm2-uid", "pm2@company.com", frozenset({Role.EXPERIMENTER}))
CEO = Caller("ceo-uid", "ceo@company.com", frozenset({Role.APPROVER}))
CFO = Caller("cfo-uid", "cfo@company.com", frozenset({Role.APPROVER}))
ADMIN = Caller("admin-uid", "admin@company.com", frozenset({Role.ADMIN}))


def definition(cohort_id):
    now = datetime.now(timezone.utc)
    return m.CreateExperiment.model_validate({
        "name": f"rollout test {uuid.uuid4().hex[:6]}", "description": "9.99 vs 12.99",
        "hypothesis": {"statement": "A higher price raises net LTV", "expectedImpact": "+15% LTV",
                       "risksIdentified": ["churn"], "successCriteria": ["LTV +10%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        # ALERT: the analytics area's guardrail sweep must not kill these experiments under the test's feet.
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "ALERT"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"price": 12.99, "productId": "pro_1299"}, "controlConfig": {"price": 9.99, "productId": "pro_999"},
        "plannedStartDate": now.isoformat(), "plannedEndDate": (now + timedelta(days=30)).isoformat(),
        "approvers": ["ceo@company.com", "cfo@company.com"],
    })


@pytest.fixture(scope="module")
def cohort_id(firestore_db):
    cohort = holdouts_svc.create_holdout_cohort(PM, f"holdout {uuid.uuid4().hex[:6]}", 10, "", None)
    return holdouts_svc.freeze_holdout_cohort(PM, cohort.cohort_id).cohort_id


_STARTED: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def pause_leftover_rollouts():
    """Every ACTIVE plan is visited by each rollout_sweep tick of later tests (one Pub/Sub delivery each, and the
    functions emulator starts a worker per concurrent delivery): leave none ACTIVE behind."""
    yield
    for eid in _STARTED:
        plan = rollouts_repo.find_plan(eid)
        if plan is not None and plan.status.value == "ACTIVE":
            try:
                ctl.pause_rollout(PM, eid, "test finished")
            except FailedPrecondition:
                pass  # its experiment ended meanwhile: the next sweep closes the plan


def running(cohort_id, stages=None, **flags):
    """A RUNNING experiment at its plan's first stage; stages need 1 hour and no exposures by default."""
    stages = stages or [{"percentage": p, "minHoursAtStage": 1, "minExposuresPerArm": 0} for p in (1, 5, 10, 25, 50)]
    e = svc.create_experiment(PM, definition(cohort_id))
    rollout_plans.create_rollout_plan(PM, rm.CreateRolloutPlan.model_validate(
        {"experimentId": e.experiment_id, "stages": stages, **flags}))
    svc.submit_for_approval(PM, e.experiment_id)
    svc.approve_experiment(CEO, e.experiment_id, None)
    svc.approve_experiment(CFO, e.experiment_id, None)
    _STARTED.append(e.experiment_id)
    return svc.start_experiment(PM, e.experiment_id)


def state(eid):
    """Everything a change may touch: plan, experiment, and the event documents of both."""
    plan = rollouts_repo.find_plan(eid)
    exp = repo.get_experiment(eid)
    return plan, exp, rollouts_repo.list_rollout_events(eid), repo.list_events(eid)


def tick(dt):
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def assert_consistent(eid):
    """Plan and experiment agree; events are contiguous per version on both sides (the ledger's premise)."""
    plan, exp, revents, eevents = state(eid)
    assert [e["version"] for e in revents] == list(range(1, plan.version + 1))
    assert [e["version"] for e in eevents] == list(range(1, exp.version + 1))
    assert plan.last_change.version == plan.version and exp.last_change.version == exp.version
    if plan.status.value != "ABORTED":
        assert exp.coverage == plan.stages[plan.current_stage_index].percentage
        assert exp.stage_index == plan.current_stage_index
    return plan, exp, revents, eevents


def refused(exc, call, eid):
    before = state(eid)
    with pytest.raises(exc):
        call()
    assert state(eid) == before


def test_the_sweep_step_walks_the_stages_on_the_ticks_clock_once_per_tick(cohort_id):
    exp = running(cohort_id, auto_progress=True)
    eid = exp.experiment_id
    t0 = rollouts_repo.find_plan(eid).stage_entered_at
    # 30 minutes in: too early (1 hour required) — the tick's clock decides, not the wall clock.
    assert ctl.run_step(eid, tick(t0 + timedelta(minutes=30))) == "NOTHING"
    t = t0
    for expected in (5, 10, 25, 50):
        t = t + timedelta(hours=2)
        assert ctl.run_step(eid, tick(t)) == "PROGRESS"
        before = state(eid)
        assert ctl.run_step(eid, tick(t)) == "DUPLICATE"      # the same tick again: no second effect
        assert state(eid) == before
        plan, e, revents, eevents = assert_consistent(eid)
        assert e.coverage == expected and plan.status.value == "ACTIVE" and plan.stage_entered_at == t
        last = revents[-1]
        assert last["eventType"] == "ROLLOUT_PROGRESSED" and last["toStage"] == expected and last["tick"] == tick(t)
        assert last["actor"] == "rollout_sweep" and last["evidence"]["ready"] is True
        assert eevents[-1]["eventType"] == "ROLLOUT_PROGRESSED" and eevents[-1]["payload"]["coverage"] == expected
    # The final stage: the sweep keeps guarding it but never goes further.
    assert ctl.run_step(eid, tick(t + timedelta(days=3))) == "NOTHING"
    assert repo.get_experiment(eid).coverage == 50


def test_without_auto_progress_the_sweep_only_watches(cohort_id):
    eid = running(cohort_id, auto_progress=False).experiment_id
    t0 = rollouts_repo.find_plan(eid).stage_entered_at
    assert ctl.run_step(eid, tick(t0 + timedelta(days=2))) == "NOTHING"
    assert repo.get_experiment(eid).coverage == 1


def test_manual_progress_is_refused_while_blocked_and_writes_nothing(cohort_id):
    exp = running(cohort_id, stages=[1, 5, 10])  # the defaults: 24 hours, 100 exposures per arm
    eid = exp.experiment_id
    refused(FailedPrecondition, lambda: ctl.progress_rollout(PM, eid), eid)
    with pytest.raises(FailedPrecondition) as err:
        ctl.progress_rollout(PM, eid)
    blocking = err.value.details["blocking"]
    assert any("must run for at least 24 hours" in b for b in blocking)
    assert any("Not enough users have seen each version" in b and "at least 100 each" in b for b in blocking)
    report = ctl.check_stage_progress(PM, eid)
    assert report["ready"] is False and report["stage"] == 1 and report["nextStage"] == 5
    assert report["blocking"] == blocking and any("Every guardrail metric is within its limits" in x for x in report["met"])
    refused(PermissionDenied, lambda: ctl.progress_rollout(OTHER_PM, eid), eid)
    refused(NotFound, lambda: ctl.progress_rollout(PM, f"nope-{uuid.uuid4().hex}"), eid)


def test_manual_progress_when_ready(cohort_id):
    eid = running(cohort_id, stages=[{"percentage": 1, "minHoursAtStage": 0, "minExposuresPerArm": 0}, 5]).experiment_id
    view = ctl.progress_rollout(PM, eid)
    assert view["stage"] == 5 and view["currentStageIndex"] == 1
    plan, exp, revents, _ = assert_consistent(eid)
    assert revents[-1]["actor"] == "pm@company.com" and revents[-1]["fromStage"] == 1
    # At the final stage there is nowhere to go.
    refused(FailedPrecondition, lambda: ctl.progress_rollout(PM, eid), eid)


def test_pause_resume_rollback_and_their_refusals(cohort_id):
    eid = running(cohort_id, auto_progress=True).experiment_id
    t0 = rollouts_repo.find_plan(eid).stage_entered_at
    refused(FailedPrecondition, lambda: ctl.rollback_rollout(PM, eid, "nothing below 1%"), eid)
    refused(FailedPrecondition, lambda: ctl.start_rollout(PM, eid), eid)  # already ACTIVE
    assert ctl.run_step(eid, tick(t0 + timedelta(hours=2))) == "PROGRESS"
    paused = ctl.pause_rollout(PM, eid, "waiting for the finance review")
    assert paused["status"] == "PAUSED" and paused["statusReason"] == "waiting for the finance review"
    refused(FailedPrecondition, lambda: ctl.pause_rollout(PM, eid, "again"), eid)
    refused(FailedPrecondition, lambda: ctl.progress_rollout(PM, eid), eid)
    # A paused plan is not progressed by the sweep, whatever the evidence.
    assert ctl.run_step(eid, tick(t0 + timedelta(days=5))) == "SKIPPED"
    assert ctl.start_rollout(PM, eid)["status"] == "ACTIVE"
    back = ctl.rollback_rollout(PM, eid, "support tickets up")
    assert back["stage"] == 1 and back["status"] == "PAUSED"
    plan, exp, revents, _ = assert_consistent(eid)
    assert exp.coverage == 1 and revents[-1]["eventType"] == "ROLLOUT_ROLLED_BACK"
    assert revents[-1]["fromStage"] == 5 and revents[-1]["toStage"] == 1 and revents[-1]["reason"] == "support tickets up"
    refused(PermissionDenied, lambda: ctl.pause_rollout(OTHER_PM, eid, "not mine"), eid)


def test_abort_is_admin_only_kills_the_experiment_and_finishes_the_rollout(cohort_id):
    eid = running(cohort_id).experiment_id
    refused(PermissionDenied, lambda: ctl.abort_rollout(PM, eid, "stop"), eid)
    view = ctl.abort_rollout(ADMIN, eid, "price complaints in the press")
    assert view["status"] == "ABORTED" and view["stage"] == 0
    plan, exp, revents, eevents = state(eid)
    assert exp.status.value == "KILLED" and exp.coverage == 0 and exp.status_reason == "price complaints in the press"
    assert eevents[-1]["eventType"] == "EXPERIMENT_KILLED" and eevents[-1]["payload"]["source"] == "abort_rollout"
    assert revents[-1]["eventType"] == "ROLLOUT_ABORTED" and revents[-1]["actor"] == "admin@company.com"
    assert [e["version"] for e in revents] == list(range(1, plan.version + 1))
    # A finished rollout refuses everything, writing nothing.
    for call in (lambda: ctl.progress_rollout(PM, eid), lambda: ctl.pause_rollout(PM, eid, "x"),
                 lambda: ctl.rollback_rollout(PM, eid, "x"), lambda: ctl.start_rollout(PM, eid),
                 lambda: ctl.abort_rollout(ADMIN, eid, "again")):
        refused(FailedPrecondition, call, eid)
    assert ctl.run_step(eid, tick(datetime.now(timezone.utc))) == "SKIPPED"


def _breach(firestore_db, eid, users=120):
    """Per-user totals as the metric ingestion writes them: treatment users who bought, three in four of them
    refunded. The guardrail test (service/guardrails.py) needs >= 100 treatment users before it calls a breach."""
    now = datetime.now(timezone.utc)
    batch = firestore_db.batch()
    for i in range(users):
        uid = f"r{uuid.uuid4().hex[:8]}"
        refunds = 1 if i % 4 else 0
        batch.set(firestore_db.collection("userMetricTotals").document(f"{eid}_{uid}"), {
            "experimentId": eid, "userId": uid, "arm": "TREATMENT", "firstExposedAt": now,
            "counts": {"purchase": 1, "refund": refunds}, "amounts": {"purchase": 12.99, "refund": 12.99 * refunds},
            "updatedAt": now})
    batch.commit()


@pytest.mark.parametrize("flags, decision, stage, event", [
    ({"autoProgress": True, "pauseOnViolation": True, "rollbackOnFailure": True}, "ROLLBACK", 5, "ROLLOUT_ROLLED_BACK"),
    ({"autoProgress": True, "pauseOnViolation": True, "rollbackOnFailure": False}, "PAUSE", 10, "ROLLOUT_PAUSED"),
    ({"autoProgress": True, "pauseOnViolation": False, "rollbackOnFailure": False}, "NOTHING", 10, "ROLLOUT_PROGRESSED"),
])
def test_a_guardrail_breach_at_10_percent(cohort_id, firestore_db, flags, decision, stage, event):
    eid = running(cohort_id, **flags).experiment_id
    t = rollouts_repo.find_plan(eid).stage_entered_at
    for _ in range(2):
        t += timedelta(hours=2)
        assert ctl.run_step(eid, tick(t)) == "PROGRESS"
    assert repo.get_experiment(eid).coverage == 10
    _breach(firestore_db, eid)
    report = ctl.check_stage_progress(PM, eid)
    assert not report["ready"] and any("Guardrail 'Refund Rate' (refund_rate) is 0.75, above its maximum of 0.02" in b
                                       for b in report["blocking"]), report["blocking"]
    t += timedelta(hours=2)
    assert ctl.run_step(eid, tick(t)) == decision
    plan, exp, revents, _ = assert_consistent(eid)
    assert exp.coverage == stage and revents[-1]["eventType"] == event
    if decision != "NOTHING":
        assert plan.status.value == "PAUSED" and "Refund Rate" in plan.status_reason
        assert revents[-1]["evidence"]["ready"] is False


def test_an_open_alert_blocks_and_pauses(cohort_id, firestore_db):
    eid = running(cohort_id, autoProgress=True).experiment_id
    firestore_db.collection("experimentAlerts").document(f"test-{uuid.uuid4().hex}").set(
        {"experimentId": eid, "type": "UNAUTHORISED_CHANGE", "acknowledged": False, "detectedAt": "2026-01-01T00:00:00Z"})
    report = ctl.check_stage_progress(PM, eid)
    assert any("unauthorised change detected at 2026-01-01T00:00:00Z" in b for b in report["blocking"])
    t0 = rollouts_repo.find_plan(eid).stage_entered_at
    assert ctl.run_step(eid, tick(t0 + timedelta(hours=2))) == "PAUSE"
    assert rollouts_repo.find_plan(eid).status.value == "PAUSED" and repo.get_experiment(eid).coverage == 1


def test_ending_an_experiment_closes_its_plan_at_once_and_the_sweep_closes_any_left_open(cohort_id, firestore_db):
    completed = running(cohort_id, autoProgress=True).experiment_id
    svc.complete_experiment(PM, completed)
    plan, last = rollouts_repo.find_plan(completed), rollouts_repo.list_rollout_events(completed)[-1]
    assert plan.status.value == "COMPLETED" and (last["eventType"], last["actor"]) == ("ROLLOUT_CLOSED", "pm@company.com")
    assert ctl.run_step(completed, tick(datetime.now(timezone.utc))) == "SKIPPED"  # nothing left for the sweep

    killed = running(cohort_id, autoProgress=True).experiment_id
    svc.kill_experiment(ADMIN, killed, "refunds")
    assert rollouts_repo.find_plan(killed).status.value == "ABORTED"
    assert rollouts_repo.list_rollout_events(killed)[-1]["eventType"] == "ROLLOUT_CLOSED"

    # An experiment ended some other way (here by hand, in the console): the sweep still closes its plan.
    by_hand = running(cohort_id, autoProgress=True).experiment_id
    firestore_db.collection("offerExperiments").document(by_hand).update({"status": "COMPLETED"})
    assert ctl.run_step(by_hand, tick(datetime.now(timezone.utc))) == "ROLLOUT_CLOSED"
    assert rollouts_repo.find_plan(by_hand).status.value == "COMPLETED"
    assert not {completed, killed, by_hand} & set(rollouts_repo.active_plan_ids())

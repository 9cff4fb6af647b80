"""The rollout controller over the real Firestore emulator (service layer, no HTTP): one pass of the sweep's
step through every stage (plan, experiment and both event documents in one real transaction; the real
``apply_once`` per tick), the open-alerts query blocking a stage, and the sweep closing the plans of
experiments that ended (the active-plans query).

Every decision and refusal (manual progress, pause, resume, rollback, abort, guardrail breaches, SRM,
nothing written on a refusal) is unit-tested on the in-memory store: tests/unit/test_rollout_use_cases.py;
the sweep over HTTP and Pub/Sub with get_offer following the coverage: tests/e2e/test_rollout_sweep.py.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import FailedPrecondition
from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import rollout_plans
from offerlab.service import rollouts as ctl
from offerlab.store import experiments as repo
from offerlab.store import rollouts as rollouts_repo
from offerlab.store.firestore_store import firestore_store
from tests.placements import next_placement, scoped

STORE = firestore_store()  # the store the functions use, on the emulator

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
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
        "approvers": ["ceo@company.com", "cfo@company.com"], "placement": next_placement(cohort_id),
    })


@pytest.fixture(scope="module")
def cohort_id(firestore_db):
    cohort = scoped(holdouts_svc.create_holdout_cohort, STORE, PM, f"holdout {uuid.uuid4().hex[:6]}", 10, "", None)
    return holdouts_svc.freeze_holdout_cohort(STORE, PM, cohort.cohort_id).cohort_id


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
                ctl.pause_rollout(STORE, PM, eid, "test finished")
            except FailedPrecondition:
                pass  # its experiment ended meanwhile: the next sweep closes the plan


def running(cohort_id, stages=None, **flags):
    """A RUNNING experiment at its plan's first stage; stages need 1 hour and no exposures by default."""
    stages = stages or [{"percentage": p, "minHoursAtStage": 1, "minExposuresPerArm": 0} for p in (1, 5, 10, 25, 50)]
    e = svc.create_experiment(STORE, PM, definition(cohort_id))
    rollout_plans.create_rollout_plan(STORE, PM, rm.CreateRolloutPlan.model_validate(
        {"experimentId": e.experiment_id, "stages": stages, **flags}))
    svc.submit_for_approval(STORE, PM, e.experiment_id)
    svc.approve_experiment(STORE, CEO, e.experiment_id, None)
    svc.approve_experiment(STORE, CFO, e.experiment_id, None)
    _STARTED.append(e.experiment_id)
    return svc.start_experiment(STORE, PM, e.experiment_id)


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


def test_the_sweep_step_walks_the_stages_on_the_ticks_clock_once_per_tick(cohort_id):
    exp = running(cohort_id, auto_progress=True)
    eid = exp.experiment_id
    t0 = rollouts_repo.find_plan(eid).stage_entered_at
    # 30 minutes in: too early (1 hour required) — the tick's clock decides, not the wall clock.
    assert ctl.run_step(STORE, eid, tick(t0 + timedelta(minutes=30))) == "NOTHING"
    t = t0
    for expected in (5, 10, 25, 50):
        t = t + timedelta(hours=2)
        assert ctl.run_step(STORE, eid, tick(t)) == "PROGRESS"
        before = state(eid)
        assert ctl.run_step(STORE, eid, tick(t)) == "DUPLICATE"      # the same tick again: no second effect
        assert state(eid) == before
        plan, e, revents, eevents = assert_consistent(eid)
        assert e.coverage == expected and plan.status.value == "ACTIVE" and plan.stage_entered_at == t
        last = revents[-1]
        assert last["eventType"] == "ROLLOUT_PROGRESSED" and last["toStage"] == expected and last["tick"] == tick(t)
        assert last["actor"] == "rollout_sweep" and last["evidence"]["ready"] is True
        assert eevents[-1]["eventType"] == "ROLLOUT_PROGRESSED" and eevents[-1]["payload"]["coverage"] == expected
    # The final stage: the sweep keeps guarding it but never goes further.
    assert ctl.run_step(STORE, eid, tick(t + timedelta(days=3))) == "NOTHING"
    assert repo.get_experiment(eid).coverage == 50


def test_an_open_alert_blocks_and_pauses(cohort_id, firestore_db):
    eid = running(cohort_id, autoProgress=True).experiment_id
    firestore_db.collection("experimentAlerts").document(f"test-{uuid.uuid4().hex}").set(
        {"experimentId": eid, "type": "UNAUTHORISED_CHANGE", "acknowledged": False, "detectedAt": "2026-01-01T00:00:00Z"})
    report = ctl.check_stage_progress(STORE, PM, eid)
    assert any("unauthorised change detected at 2026-01-01T00:00:00Z" in b for b in report["blocking"])
    t0 = rollouts_repo.find_plan(eid).stage_entered_at
    assert ctl.run_step(STORE, eid, tick(t0 + timedelta(hours=2))) == "PAUSE"
    assert rollouts_repo.find_plan(eid).status.value == "PAUSED" and repo.get_experiment(eid).coverage == 1


def test_ending_an_experiment_closes_its_plan_at_once_and_the_sweep_closes_any_left_open(cohort_id, firestore_db):
    completed = running(cohort_id, autoProgress=True).experiment_id
    svc.complete_experiment(STORE, PM, completed)
    plan, last = rollouts_repo.find_plan(completed), rollouts_repo.list_rollout_events(completed)[-1]
    assert plan.status.value == "COMPLETED" and (last["eventType"], last["actor"]) == ("ROLLOUT_CLOSED", "pm@company.com")
    assert ctl.run_step(STORE, completed, tick(datetime.now(timezone.utc))) == "SKIPPED"  # nothing left for the sweep

    killed = running(cohort_id, autoProgress=True).experiment_id
    svc.kill_experiment(STORE, ADMIN, killed, "refunds")
    assert rollouts_repo.find_plan(killed).status.value == "ABORTED"
    assert rollouts_repo.list_rollout_events(killed)[-1]["eventType"] == "ROLLOUT_CLOSED"

    # An experiment ended some other way (here by hand, in the console): the sweep still closes its plan.
    by_hand = running(cohort_id, autoProgress=True).experiment_id
    firestore_db.collection("offerExperiments").document(by_hand).update({"status": "COMPLETED"})
    assert ctl.run_step(STORE, by_hand, tick(datetime.now(timezone.utc))) == ctl.StepOutcome.CLOSED
    assert rollouts_repo.find_plan(by_hand).status.value == "COMPLETED"
    assert not {completed, killed, by_hand} & set(rollouts_repo.active_plan_ids())

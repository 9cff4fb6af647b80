"""The lifecycle's transactions on the real Firestore emulator (service layer, no HTTP): every transition
writes the new state with version + 1, a lastChange stamp and exactly one experimentEvents document;
a refusal writes nothing; concurrent transitions never leave a half-applied state."""
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied
from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import rollout_plans
from offerlab.store import experiments as repo
from offerlab.store import rollouts as rollouts_repo

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
CEO = Caller("ceo-uid", "ceo@company.com", frozenset({Role.APPROVER}))
CFO = Caller("cfo-uid", "cfo@company.com", frozenset({Role.APPROVER}))
ADMIN = Caller("admin-uid", "admin@company.com", frozenset({Role.ADMIN}))


def definition(cohort_id, **over):
    now = datetime.now(timezone.utc)
    body = {
        "name": f"price test {uuid.uuid4().hex[:6]}", "description": "9.99 vs 12.99",
        "hypothesis": {"statement": "A higher price raises net LTV", "expectedImpact": "+15% LTV",
                       "risksIdentified": ["churn"], "successCriteria": ["LTV +10%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"},
                 {"name": "Churn", "type": "GUARDRAIL", "metric": "churn_rate", "threshold": 0.05, "direction": "MAINTAIN"}],
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"price": 12.99, "productId": "pro_1299"}, "controlConfig": {"price": 9.99, "productId": "pro_999"},
        "plannedStartDate": now.isoformat(), "plannedEndDate": (now + timedelta(days=30)).isoformat(),
        "approvers": ["ceo@company.com", "cfo@company.com"],
    }
    body.update(over)
    return m.CreateExperiment.model_validate(body)


@pytest.fixture
def frozen_cohort(firestore_db):
    cohort = holdouts_svc.create_holdout_cohort(PM, f"holdout {uuid.uuid4().hex[:6]}", 10, "", None)
    return holdouts_svc.freeze_holdout_cohort(PM, cohort.cohort_id)


def events_of(experiment_id):
    return repo.list_events(experiment_id)


def approved(cohort_id, with_plan=True):
    e = svc.create_experiment(PM, definition(cohort_id))
    if with_plan:
        rollout_plans.create_rollout_plan(PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[5, 50]))
    svc.submit_for_approval(PM, e.experiment_id)
    svc.approve_experiment(CEO, e.experiment_id, "ok")
    return svc.approve_experiment(CFO, e.experiment_id, None)


def assert_chain(experiment_id):
    """Events 1..version, contiguous, each starting where the previous ended, matching the document."""
    doc = repo.get_experiment(experiment_id)
    events = events_of(experiment_id)
    assert [e["version"] for e in events] == list(range(1, doc.version + 1))
    for prev, nxt in zip(events, events[1:]):
        assert nxt["fromStatus"] == prev["toStatus"]
    assert events[-1]["toStatus"] == doc.status.value
    assert doc.last_change.version == doc.version and doc.last_change.action == events[-1]["eventType"]
    return doc, events


def test_creation_writes_version_1_and_its_event(frozen_cohort):
    e = svc.create_experiment(PM, definition(frozen_cohort.cohort_id))
    doc, events = assert_chain(e.experiment_id)
    assert doc.status.value == "DRAFT" and doc.author == "pm@company.com" and len(doc.salt) == 32
    assert doc.kill_switch.enabled is True
    assert events[0]["eventType"] == "EXPERIMENT_CREATED" and events[0]["actor"] == "pm@company.com"


def test_create_refuses_an_unknown_cohort_and_the_author_as_approver(frozen_cohort):
    with pytest.raises(InvalidArgument) as err:
        svc.create_experiment(PM, definition("no-such-cohort"))
    assert err.value.details["fields"][0]["path"] == "holdoutCohortId"
    with pytest.raises(InvalidArgument) as err:
        svc.create_experiment(PM, definition(frozen_cohort.cohort_id, approvers=["pm@company.com"]))
    assert err.value.details["fields"][0]["path"] == "approvers"


def test_an_illegal_transition_writes_nothing(frozen_cohort):
    e = svc.create_experiment(PM, definition(frozen_cohort.cohort_id))
    for attempt in (lambda: svc.pause_experiment(PM, e.experiment_id, "why"),
                    lambda: svc.resume_experiment(PM, e.experiment_id),
                    lambda: svc.complete_experiment(PM, e.experiment_id),
                    lambda: svc.approve_experiment(CEO, e.experiment_id, None)):
        with pytest.raises(FailedPrecondition):
            attempt()
    doc, events = assert_chain(e.experiment_id)
    assert doc.version == 1 and len(events) == 1


def test_an_edit_after_approval_voids_every_approval(frozen_cohort):
    e = approved(frozen_cohort.cohort_id)
    assert e.status.value == "APPROVED" and set(e.approvals) == {"ceo@company.com", "cfo@company.com"}
    edited = svc.update_experiment(PM, m.UpdateExperiment(experiment_id=e.experiment_id, offer_config={"price": 13.99, "productId": "pro_1399"}))
    assert edited.status.value == "DRAFT" and edited.approvals == {} and edited.offer_config == {"price": 13.99, "productId": "pro_1399"}
    doc, events = assert_chain(e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_UPDATED"
    assert events[-1]["payload"] == {"changedFields": ["offerConfig"], "approvalsVoided": ["ceo@company.com", "cfo@company.com"]}


def test_a_rejection_returns_to_draft_with_the_reason(frozen_cohort):
    e = svc.create_experiment(PM, definition(frozen_cohort.cohort_id))
    svc.submit_for_approval(PM, e.experiment_id)
    svc.approve_experiment(CEO, e.experiment_id, None)
    rejected = svc.reject_experiment(CFO, e.experiment_id, "margin too thin")
    assert rejected.status.value == "DRAFT" and rejected.approvals == {} and rejected.status_reason == "margin too thin"
    _, events = assert_chain(e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_REJECTED" and events[-1]["payload"]["reason"] == "margin too thin"
    assert events[-1]["actor"] == "cfo@company.com"


def test_start_refuses_with_the_checklist_and_writes_nothing(firestore_db):
    draft_cohort = holdouts_svc.create_holdout_cohort(PM, "unfrozen", 10, "", {"gift": "ALLOW"})
    e = svc.create_experiment(PM, definition(draft_cohort.cohort_id))
    svc.submit_for_approval(PM, e.experiment_id)
    svc.approve_experiment(CEO, e.experiment_id, None)
    with pytest.raises(FailedPrecondition) as err:
        svc.start_experiment(PM, e.experiment_id)
    items = {i["item"]: i for i in err.value.details["checklist"]}
    assert {k for k, v in items.items() if not v["ok"]} == {"frozen_holdout", "spillover_isolation", "approvals", "rollout_plan"}
    assert "cfo@company.com" in items["approvals"]["detail"]
    doc, events = assert_chain(e.experiment_id)
    assert doc.status.value == "PENDING_APPROVAL" and doc.coverage is None
    assert rollouts_repo.find_plan(e.experiment_id) is None


def test_start_puts_the_experiment_and_its_plan_at_the_first_stage(frozen_cohort, firestore_db):
    e = approved(frozen_cohort.cohort_id)
    started = svc.start_experiment(PM, e.experiment_id)
    assert (started.status.value, started.coverage, started.stage_index) == ("RUNNING", 5.0, 0)
    plan = rollouts_repo.find_plan(e.experiment_id)
    assert plan.status.value == "ACTIVE" and plan.current_stage_index == 0 and plan.stage_entered_at is not None
    assert plan.version == 2 and plan.last_change.action == "ROLLOUT_STARTED"
    event = firestore_db.collection("rolloutEvents").document(f"{e.experiment_id}_000002").get().to_dict()
    assert event["eventType"] == "ROLLOUT_STARTED" and event["toStage"] == 5.0
    _, events = assert_chain(e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_STARTED" and all(i["ok"] for i in events[-1]["payload"]["checklist"])
    with pytest.raises(FailedPrecondition):  # while RUNNING: no edit, no new plan, no second start
        svc.update_experiment(PM, m.UpdateExperiment(experiment_id=e.experiment_id, name="renamed"))
    with pytest.raises(FailedPrecondition):
        rollout_plans.create_rollout_plan(PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id))
    with pytest.raises(FailedPrecondition):
        svc.start_experiment(PM, e.experiment_id)


def test_only_the_author_or_an_admin_acts_and_only_listed_approvers_approve(frozen_cohort):
    e = svc.create_experiment(PM, definition(frozen_cohort.cohort_id))
    other = Caller("pm2", "pm2@company.com", frozenset({Role.EXPERIMENTER}))
    with pytest.raises(PermissionDenied):
        svc.submit_for_approval(other, e.experiment_id)
    svc.submit_for_approval(ADMIN, e.experiment_id)
    outsider = Caller("cto", "cto@company.com", frozenset({Role.APPROVER}))
    with pytest.raises(PermissionDenied):
        svc.approve_experiment(outsider, e.experiment_id, None)
    _, events = assert_chain(e.experiment_id)
    assert len(events) == 2 and events[-1]["actor"] == "admin@company.com"


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_transitions_leave_a_consistent_chain(frozen_cohort, round_):
    e = approved(frozen_cohort.cohort_id)
    svc.start_experiment(PM, e.experiment_id)
    actions = [lambda: svc.pause_experiment(PM, e.experiment_id, "p"),
               lambda: svc.kill_experiment(ADMIN, e.experiment_id, "k"),
               lambda: svc.complete_experiment(PM, e.experiment_id),
               lambda: svc.pause_experiment(PM, e.experiment_id, "p2"),
               lambda: svc.resume_experiment(PM, e.experiment_id),
               lambda: svc.kill_experiment(ADMIN, e.experiment_id, "k2")]
    outcomes, barrier = [], threading.Barrier(len(actions))

    def run(action):
        barrier.wait()
        try:
            action()
            outcomes.append("ok")
        except (FailedPrecondition, Aborted) as err:
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc, events = assert_chain(e.experiment_id)
    # Before the race: created, submitted, approval recorded, approved, started.
    assert outcomes.count("ok") == len(events) - 5
    assert outcomes.count("ok") >= 1 and set(outcomes) <= {"ok", "FailedPrecondition", "Aborted"}


def test_concurrent_identical_pauses_one_wins(frozen_cohort):
    e = approved(frozen_cohort.cohort_id)
    svc.start_experiment(PM, e.experiment_id)
    outcomes, barrier = [], threading.Barrier(5)

    def run():
        barrier.wait()
        try:
            svc.pause_experiment(PM, e.experiment_id, "same")
            outcomes.append("ok")
        except (FailedPrecondition, Aborted) as err:
            outcomes.append(type(err).__name__)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    doc, events = assert_chain(e.experiment_id)
    assert doc.status.value == "PAUSED" and [ev["eventType"] for ev in events].count("EXPERIMENT_PAUSED") == 1


def test_automation_pauses_kills_and_moves_coverage_through_the_same_write_path(frozen_cohort):
    from offerlab.store.transaction import run_in_transaction

    e = approved(frozen_cohort.cohort_id)
    svc.start_experiment(PM, e.experiment_id)
    moved = run_in_transaction(lambda t: svc.change_coverage_in(t, e.experiment_id, 50.0, 1, "rollout_sweep", "stage met"))
    assert (moved.coverage, moved.stage_index, moved.status.value) == (50.0, 1, "RUNNING")
    paused = svc.system_pause(e.experiment_id, "guardrail_sweep", "refund_rate above 0.02")
    assert paused.status.value == "PAUSED"
    with pytest.raises(PermissionDenied):  # automation never resumes
        run_in_transaction(lambda t: svc.transition_in(t, e.experiment_id, svc.Command.RESUME,
                                                       svc.system_actor("guardrail_sweep")))
    killed = svc.system_kill(e.experiment_id, "guardrail_sweep", "refund_rate above 0.05")
    doc, events = assert_chain(e.experiment_id)
    assert doc.status.value == "KILLED" and killed.version == doc.version
    assert [ev["eventType"] for ev in events[-3:]] == ["EXPERIMENT_COVERAGE_CHANGED", "EXPERIMENT_PAUSED", "EXPERIMENT_KILLED"]
    assert events[-3]["payload"] == {"fromCoverage": 5.0, "toCoverage": 50.0, "stageIndex": 1, "reason": "stage met"}
    assert events[-2]["actor"] == "guardrail_sweep" and events[-2]["payload"]["source"] == "system"
    with pytest.raises(FailedPrecondition):
        run_in_transaction(lambda t: svc.change_coverage_in(t, e.experiment_id, 80.0, 2, "rollout_sweep"))

"""The lifecycle's use cases on the in-memory store (tests/unit/fakes.py): every transition writes the new
state with version + 1, a lastChange stamp and exactly one experimentEvents document; a refusal writes
nothing. Concurrency on the real emulator: tests/integration/test_experiment_transitions.py."""
import uuid

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import rollout_plans
from tests.unit import scenarios
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import ADMIN, CEO, CFO, PM, assert_chain

KPIS = [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"},
        {"name": "Churn", "type": "GUARDRAIL", "metric": "churn_rate", "threshold": 0.05, "direction": "MAINTAIN"}]
KILL_ON_REFUNDS = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}]


def definition(cohort_id, **over):
    """The scenarios' price test with the seed's churn KPI and a refund guardrail that kills, in the default
    placement (these tests run one experiment at a time, under a global cohort)."""
    return scenarios.definition(cohort_id, **{"kpis": KPIS, "guardrails": KILL_ON_REFUNDS, "placement": "default",
                                              **over})


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def frozen_cohort(store):
    cohort = holdouts_svc.create_holdout_cohort(store, PM, f"holdout {uuid.uuid4().hex[:6]}", 10, "", None)
    return holdouts_svc.freeze_holdout_cohort(store, PM, cohort.cohort_id)


def approved(store, cohort_id, with_plan=True):
    e = svc.create_experiment(store, PM, definition(cohort_id))
    if with_plan:
        rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[5, 50]))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, "ok")
    return svc.approve_experiment(store, CFO, e.experiment_id, None)


def test_creation_writes_version_1_and_its_event(store, frozen_cohort):
    e = svc.create_experiment(store, PM, definition(frozen_cohort.cohort_id))
    doc, events = assert_chain(store, e.experiment_id)
    assert doc.status.value == "DRAFT" and doc.author == "pm@company.com" and len(doc.salt) == 32
    assert doc.kill_switch.enabled is True
    assert events[0]["eventType"] == "EXPERIMENT_CREATED" and events[0]["actor"] == "pm@company.com"


def test_create_refuses_an_unknown_cohort_and_the_author_as_approver(store, frozen_cohort):
    with pytest.raises(InvalidArgument) as err:
        svc.create_experiment(store, PM, definition("no-such-cohort"))
    assert err.value.details["fields"][0]["path"] == "holdoutCohortId"
    with pytest.raises(InvalidArgument) as err:
        svc.create_experiment(store, PM, definition(frozen_cohort.cohort_id, approvers=["pm@company.com"]))
    assert err.value.details["fields"][0]["path"] == "approvers"


def test_an_illegal_transition_writes_nothing(store, frozen_cohort):
    e = svc.create_experiment(store, PM, definition(frozen_cohort.cohort_id))
    for attempt in (lambda: svc.pause_experiment(store, PM, e.experiment_id, "why"),
                    lambda: svc.resume_experiment(store, PM, e.experiment_id),
                    lambda: svc.complete_experiment(store, PM, e.experiment_id),
                    lambda: svc.approve_experiment(store, CEO, e.experiment_id, None)):
        with pytest.raises(FailedPrecondition):
            attempt()
    doc, events = assert_chain(store, e.experiment_id)
    assert doc.version == 1 and len(events) == 1


def test_an_edit_after_approval_voids_every_approval(store, frozen_cohort):
    e = approved(store, frozen_cohort.cohort_id)
    assert e.status.value == "APPROVED" and set(e.approvals) == {"ceo@company.com", "cfo@company.com"}
    edited = svc.update_experiment(store, PM, m.UpdateExperiment(experiment_id=e.experiment_id, offer_config={"price": 13.99, "productId": "pro_1399"}))
    assert edited.status.value == "DRAFT" and edited.approvals == {} and edited.offer_config == {"price": 13.99, "productId": "pro_1399"}
    doc, events = assert_chain(store, e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_UPDATED"
    assert events[-1]["payload"] == {"changedFields": ["offerConfig"], "approvalsVoided": ["ceo@company.com", "cfo@company.com"]}


def test_a_rejection_returns_to_draft_with_the_reason(store, frozen_cohort):
    e = svc.create_experiment(store, PM, definition(frozen_cohort.cohort_id))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    rejected = svc.reject_experiment(store, CFO, e.experiment_id, "margin too thin")
    assert rejected.status.value == "DRAFT" and rejected.approvals == {} and rejected.status_reason == "margin too thin"
    _, events = assert_chain(store, e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_REJECTED" and events[-1]["payload"]["reason"] == "margin too thin"
    assert events[-1]["actor"] == "cfo@company.com"


def test_start_refuses_with_the_checklist_and_writes_nothing(store):
    draft_cohort = holdouts_svc.create_holdout_cohort(store, PM, "unfrozen", 10, "", {"gift": "ALLOW"})
    e = svc.create_experiment(store, PM, definition(draft_cohort.cohort_id))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    with pytest.raises(FailedPrecondition) as err:
        svc.start_experiment(store, PM, e.experiment_id)
    items = {i["item"]: i for i in err.value.details["checklist"]}
    assert {k for k, v in items.items() if not v["ok"]} == {"frozen_holdout", "spillover_isolation", "approvals", "rollout_plan"}
    assert "cfo@company.com" in items["approvals"]["detail"]
    doc, events = assert_chain(store, e.experiment_id)
    assert doc.status.value == "PENDING_APPROVAL" and doc.coverage is None
    assert store.plans.find(e.experiment_id) is None


def test_start_puts_the_experiment_and_its_plan_at_the_first_stage(store, frozen_cohort):
    e = approved(store, frozen_cohort.cohort_id)
    started = svc.start_experiment(store, PM, e.experiment_id)
    assert (started.status.value, started.coverage, started.stage_index) == ("RUNNING", 5.0, 0)
    plan = store.plans.find(e.experiment_id)
    assert plan.status.value == "ACTIVE" and plan.current_stage_index == 0 and plan.stage_entered_at is not None
    assert plan.version == 2 and plan.last_change.action == "ROLLOUT_STARTED"
    event = store.docs("rolloutEvents")[f"{e.experiment_id}_000002"]
    assert event["eventType"] == "ROLLOUT_STARTED" and event["toStage"] == 5.0
    _, events = assert_chain(store, e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_STARTED" and all(i["ok"] for i in events[-1]["payload"]["checklist"])
    with pytest.raises(FailedPrecondition):  # while RUNNING: no edit, no new plan, no second start
        svc.update_experiment(store, PM, m.UpdateExperiment(experiment_id=e.experiment_id, name="renamed"))
    with pytest.raises(FailedPrecondition):
        rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id))
    with pytest.raises(FailedPrecondition):
        svc.start_experiment(store, PM, e.experiment_id)


def test_only_the_author_or_an_admin_acts_and_only_listed_approvers_approve(store, frozen_cohort):
    e = svc.create_experiment(store, PM, definition(frozen_cohort.cohort_id))
    other = Caller("pm2", "pm2@company.com", frozenset({Role.EXPERIMENTER}))
    with pytest.raises(PermissionDenied):
        svc.submit_for_approval(store, other, e.experiment_id)
    svc.submit_for_approval(store, ADMIN, e.experiment_id)
    outsider = Caller("cto", "cto@company.com", frozenset({Role.APPROVER}))
    with pytest.raises(PermissionDenied):
        svc.approve_experiment(store, outsider, e.experiment_id, None)
    _, events = assert_chain(store, e.experiment_id)
    assert len(events) == 2 and events[-1]["actor"] == "admin@company.com"


def test_every_refusal_writes_nothing_at_all(store, frozen_cohort):
    e = svc.create_experiment(store, PM, definition(frozen_cohort.cohort_id))
    before = store.db.snapshot()
    outsider = Caller("cto", "cto@company.com", frozenset({Role.APPROVER}))
    refusals = [
        (FailedPrecondition, lambda: svc.start_experiment(store, PM, e.experiment_id)),
        (FailedPrecondition, lambda: svc.resume_experiment(store, PM, e.experiment_id)),
        (PermissionDenied, lambda: svc.kill_experiment(store, PM, e.experiment_id, "not an admin")),
        (PermissionDenied, lambda: svc.approve_experiment(store, outsider, e.experiment_id, None)),
        (InvalidArgument, lambda: svc.update_experiment(store, PM, m.UpdateExperiment(
            experiment_id=e.experiment_id, approvers=["pm@company.com"]))),
        (InvalidArgument, lambda: svc.update_experiment(store, PM, m.UpdateExperiment(
            experiment_id=e.experiment_id, holdout_cohort_id="nope"))),
    ]
    for error, attempt in refusals:
        with pytest.raises(error):
            attempt()
    assert store.db.snapshot() == before


def test_automation_pauses_and_kills_through_the_same_write_path_but_never_resumes(store, frozen_cohort):
    from offerlab.domain.actors import system_actor
    from offerlab.domain.lifecycle import Command
    from offerlab.service.transitions import transition_experiment

    e = approved(store, frozen_cohort.cohort_id)
    svc.start_experiment(store, PM, e.experiment_id)
    monitor = system_actor("guardrail_sweep")
    pause = lambda ex, t, now: ({"status_reason": "refund_rate above 0.02"}, {"reason": "refund_rate above 0.02"})  # noqa: E731
    paused = store.transaction(lambda uow: transition_experiment(uow, e.experiment_id, Command.PAUSE, monitor, pause))
    assert paused.status.value == "PAUSED"
    with pytest.raises(PermissionDenied):  # automation never resumes
        store.transaction(lambda uow: transition_experiment(uow, e.experiment_id, Command.RESUME, monitor))
    killed = store.transaction(lambda uow: transition_experiment(
        uow, e.experiment_id, Command.KILL, monitor, svc.kill_change("refund_rate above 0.05", "guardrail")))
    doc, events = assert_chain(store, e.experiment_id)
    assert doc.status.value == "KILLED" and killed.version == doc.version
    assert [ev["eventType"] for ev in events[-2:]] == ["EXPERIMENT_PAUSED", "EXPERIMENT_KILLED"]
    assert events[-2]["actor"] == "guardrail_sweep" and events[-1]["payload"]["source"] == "guardrail"
    plan = store.plans.find(e.experiment_id)  # ending the experiment closed its plan in the same transaction
    assert plan.status.value == "ABORTED" and plan.last_change.action == "ROLLOUT_CLOSED"


def test_completing_closes_the_plan_as_completed_in_the_same_transaction(store, frozen_cohort):
    e = approved(store, frozen_cohort.cohort_id)
    svc.start_experiment(store, PM, e.experiment_id)
    commits = store.db.commits
    svc.complete_experiment(store, PM, e.experiment_id)
    assert store.db.commits == commits + 1
    plan = store.plans.find(e.experiment_id)
    assert plan.status.value == "COMPLETED" and plan.status_reason == "the experiment is COMPLETED"
    assert store.rollout_events_of(e.experiment_id)[-1]["eventType"] == "ROLLOUT_CLOSED"

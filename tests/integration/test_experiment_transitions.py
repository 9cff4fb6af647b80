"""The lifecycle's transactions on the real Firestore emulator (service layer, no HTTP): concurrent
transitions never leave a half-applied state or a gap in the event chain (what only the emulator's
transactions can show), and one pass from creation to start over the real store.

Each transition's writes and every refusal (nothing written) are unit-tested on the in-memory store:
tests/unit/test_lifecycle_use_cases.py, test_approval_use_cases.py; over HTTP: tests/e2e/test_experiment_lifecycle.py."""
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import Aborted, FailedPrecondition
from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import rollout_plans
from offerlab.store import experiments as repo
from offerlab.store import rollouts as rollouts_repo
from offerlab.store.firestore_store import firestore_store
from tests.placements import next_placement, scoped

STORE = firestore_store()  # the store the functions use, on the emulator

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
        "approvers": ["ceo@company.com", "cfo@company.com"], "placement": next_placement(cohort_id),
    }
    body.update(over)
    return m.CreateExperiment.model_validate(body)


@pytest.fixture
def frozen_cohort(firestore_db):
    cohort = scoped(holdouts_svc.create_holdout_cohort, STORE, PM, f"holdout {uuid.uuid4().hex[:6]}", 10, "", None)
    return holdouts_svc.freeze_holdout_cohort(STORE, PM, cohort.cohort_id)


def events_of(experiment_id):
    return repo.list_events(experiment_id)


def approved(cohort_id, with_plan=True):
    e = svc.create_experiment(STORE, PM, definition(cohort_id))
    if with_plan:
        rollout_plans.create_rollout_plan(STORE, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[5, 50]))
    svc.submit_for_approval(STORE, PM, e.experiment_id)
    svc.approve_experiment(STORE, CEO, e.experiment_id, "ok")
    return svc.approve_experiment(STORE, CFO, e.experiment_id, None)


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


def test_start_puts_the_experiment_and_its_plan_at_the_first_stage(frozen_cohort, firestore_db):
    e = approved(frozen_cohort.cohort_id)
    started = svc.start_experiment(STORE, PM, e.experiment_id)
    assert (started.status.value, started.coverage, started.stage_index) == ("RUNNING", 5.0, 0)
    plan = rollouts_repo.find_plan(e.experiment_id)
    assert plan.status.value == "ACTIVE" and plan.current_stage_index == 0 and plan.stage_entered_at is not None
    assert plan.version == 2 and plan.last_change.action == "ROLLOUT_STARTED"
    event = firestore_db.collection("rolloutEvents").document(f"{e.experiment_id}_000002").get().to_dict()
    assert event["eventType"] == "ROLLOUT_STARTED" and event["toStage"] == 5.0
    _, events = assert_chain(e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_STARTED" and all(i["ok"] for i in events[-1]["payload"]["checklist"])
    with pytest.raises(FailedPrecondition):  # while RUNNING: no edit, no new plan, no second start
        svc.update_experiment(STORE, PM, m.UpdateExperiment(experiment_id=e.experiment_id, name="renamed"))
    with pytest.raises(FailedPrecondition):
        rollout_plans.create_rollout_plan(STORE, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id))
    with pytest.raises(FailedPrecondition):
        svc.start_experiment(STORE, PM, e.experiment_id)


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_transitions_leave_a_consistent_chain(frozen_cohort, round_):
    e = approved(frozen_cohort.cohort_id)
    svc.start_experiment(STORE, PM, e.experiment_id)
    actions = [lambda: svc.pause_experiment(STORE, PM, e.experiment_id, "p"),
               lambda: svc.kill_experiment(STORE, ADMIN, e.experiment_id, "k"),
               lambda: svc.complete_experiment(STORE, PM, e.experiment_id),
               lambda: svc.pause_experiment(STORE, PM, e.experiment_id, "p2"),
               lambda: svc.resume_experiment(STORE, PM, e.experiment_id),
               lambda: svc.kill_experiment(STORE, ADMIN, e.experiment_id, "k2")]
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
    svc.start_experiment(STORE, PM, e.experiment_id)
    outcomes, barrier = [], threading.Barrier(5)

    def run():
        barrier.wait()
        try:
            svc.pause_experiment(STORE, PM, e.experiment_id, "same")
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

"""The PRIMARY KPI's power plan on the in-memory store (service/planning.py): stored at creation and on edits,
a warning beside the launch checklist that never blocks the start, and the live plan in monitor_experiment
from observed traffic. The numbers themselves are stats/planning.py's (checked against statsmodels in
tests/unit/stats/test_stats_planning.py); here: the right inputs reach it."""
from datetime import timedelta

import pytest
from pydantic import ValidationError

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.service import experiments as svc
from offerlab.service import guardrails, rollout_plans
from offerlab.stats.planning import plan_power
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import CEO, CFO, PM, buyers, definition, frozen_cohort, seed

CONVERSION = [{"name": "Conversion", "type": "PRIMARY", "metric": "conversion_rate", "baselineValue": 0.30,
               "targetValue": 0.33, "direction": "INCREASE"}]
NET_LTV = [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "baselineValue": 12.0, "targetValue": 13.8,
            "direction": "INCREASE"}]


@pytest.fixture
def store():
    return InMemoryStore()


def create(store, cohort_id, **over):
    return svc.create_experiment(store, PM, definition(cohort_id, **over))


def start(store, cohort_id, **over):
    """A RUNNING experiment of the given definition at a single 100 % stage."""
    e = create(store, cohort_id, **over)
    rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[100]))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    svc.approve_experiment(store, CFO, e.experiment_id, None)
    return svc.start_experiment(store, PM, e.experiment_id)


def test_the_plan_at_creation_is_the_stats_engines_plan_for_the_definitions_inputs(store):
    cohort = frozen_cohort(store)
    e = create(store, cohort.cohort_id, kpis=CONVERSION, expectedDailyUsers=2000)
    days = (e.planned_end_date - e.planned_start_date).total_seconds() / 86400
    want = plan_power(0.30, 0.33, kind="proportion", users_per_day=2000, treatment_share=0.5, planned_days=days)
    plan = store.experiments.get(e.experiment_id).planning  # stored on the experiment
    assert plan["available"] is True and plan["source"] == "definition" and plan["kind"] == "proportion"
    assert plan["power"] == pytest.approx(want.power, rel=1e-12) and plan["mde"] == pytest.approx(want.mde, rel=1e-12)
    assert plan["daysToPower"] == pytest.approx(want.days_to_power, rel=1e-12) and plan["reachable"] is want.reachable


def test_a_plan_that_cannot_be_computed_says_why_instead_of_guessing(store):
    cohort = frozen_cohort(store)
    no_traffic = create(store, cohort.cohort_id, kpis=CONVERSION)
    assert no_traffic.planning == {"available": False,
                                   "reason": "expectedDailyUsers is not set: the plan needs the expected traffic"}
    no_sd = create(store, cohort.cohort_id, kpis=NET_LTV, expectedDailyUsers=1000)
    assert no_sd.planning["available"] is False and "primaryMetricStdDev" in no_sd.planning["reason"]
    with_sd = create(store, cohort.cohort_id, kpis=NET_LTV, expectedDailyUsers=1000, primaryMetricStdDev=20.0)
    assert with_sd.planning["available"] is True and with_sd.planning["stdDev"] == 20.0


def test_an_edit_recomputes_the_plan(store):
    cohort = frozen_cohort(store)
    e = create(store, cohort.cohort_id, kpis=CONVERSION, expectedDailyUsers=100)
    before = store.experiments.get(e.experiment_id).planning
    svc.update_experiment(store, PM, m.UpdateExperiment(experiment_id=e.experiment_id, expected_daily_users=50_000))
    after = store.experiments.get(e.experiment_id).planning
    assert after["usersPerDay"] == 50_000 and after["power"] > before["power"]
    assert before["reachable"] is False and after["reachable"] is True


def test_an_underpowered_plan_warns_beside_the_checklist_but_never_blocks_the_start(store):
    cohort = frozen_cohort(store)
    started = start(store, cohort.cohort_id, kpis=CONVERSION, expectedDailyUsers=10)
    assert started.status.value == "RUNNING"  # not blocked
    event = store.events_of(started.experiment_id)[-1]
    assert event["eventType"] == "EXPERIMENT_STARTED" and all(i["ok"] for i in event["payload"]["checklist"])
    (warning,) = event["payload"]["warnings"]
    assert warning["item"] == "power" and warning["ok"] is False and "below the 80% target" in warning["detail"]
    assert "power" not in {i["item"] for i in event["payload"]["checklist"]}


def test_monitor_experiment_plans_from_observed_traffic_and_the_streamed_variance(store):
    cohort = frozen_cohort(store)
    eid = start(store, cohort.cohort_id, kpis=NET_LTV).experiment_id
    rows = buyers("CONTROL", 300, None, "c") + buyers("TREATMENT", 300, None, "t")
    for i, row in enumerate(rows[:300]):  # CONTROL spends 5, 10, 15, ... (a spread to estimate)
        rows[i] = type(row)(row.user_id, row.arm, counts={"purchase": 1}, amounts={"purchase": 5.0 * (1 + i % 5)})
    seed(store, eid, rows)
    experiment = store.experiments.get(eid)
    now = experiment.started_at + timedelta(days=2)
    report = guardrails.monitor_experiment(store, PM, eid, now=now)
    plan = report["planning"]
    assert plan["available"] is True and plan["source"] == "observed"
    assert plan["usersPerDay"] == pytest.approx(600 / 2)  # 600 exposed in 2 days
    spends = [5.0 * (1 + i % 5) for i in range(300)]
    mean = sum(spends) / 300
    sd = (sum((x - mean) ** 2 for x in spends) / 299) ** 0.5
    assert plan["stdDev"] == pytest.approx(sd, rel=1e-9)
    left = (experiment.planned_end_date - now).total_seconds() / 86400
    want = plan_power(12.0, 13.8, kind="mean", users_per_day=300, treatment_share=0.5, planned_days=left, sd=sd,
                      enrolled_control=300, enrolled_treatment=300)
    assert plan["power"] == pytest.approx(want.power, rel=1e-9) and plan["plannedDays"] == pytest.approx(left)


def test_before_any_exposure_the_live_plan_says_there_is_no_rate_yet(store):
    cohort = frozen_cohort(store)
    eid = start(store, cohort.cohort_id, kpis=NET_LTV).experiment_id
    plan = guardrails.monitor_experiment(store, PM, eid)["planning"]
    assert plan == {"available": False, "reason": "no exposures yet: the observed rate is unknown"}


def test_plan_inputs_are_validated(store):
    cohort = frozen_cohort(store)
    before = store.db.snapshot()
    for bad in ({"expectedDailyUsers": 0}, {"expectedDailyUsers": -5}, {"primaryMetricStdDev": 0}):
        with pytest.raises(ValidationError) as err:
            definition(cohort.cohort_id, **bad)
        assert "greater than 0" in str(err.value)
    assert store.db.snapshot() == before

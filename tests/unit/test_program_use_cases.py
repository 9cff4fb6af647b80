"""A program of experiments (API.md §10) on the in-memory store: scoped holdouts, placements with mutual
exclusion, shipping through approval, program exposures, contamination, the holdout's read-out; every
refusal writes nothing. What only the emulator shows (racing starts, the wire, triggers, aggregation):
tests/integration/test_program.py and tests/e2e/test_program_e2e.py."""
import uuid
from datetime import timedelta

import pytest

from offerlab.api import rollouts as rm
from offerlab.api.callable import parse
from offerlab.api.experiments import ShipExperiment
from offerlab.api.holdouts import CreateHoldoutCohort
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from offerlab.domain.metrics import Metric
from offerlab.domain.placements import layer_bucket
from offerlab.domain.user_rows import UserRow
from offerlab.service import experiments as svc
from offerlab.service import holdout_analysis
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import offers, program, rollout_plans, spillover
from offerlab.domain.types import SpilloverChannel
from tests.unit.fakes import InMemoryStore
from tests.unit.test_lifecycle_use_cases import ADMIN, CEO, CFO, PM, definition

SERVICE = Caller("backend", None, frozenset({Role.SERVICE}))
ANALYST = Caller("analyst-uid", "analyst@company.com", frozenset({Role.ANALYST}))
USERS = [f"user-{i}" for i in range(4000)]


@pytest.fixture
def store():
    return InMemoryStore()


def cohort(store, pct=10, placements=None, offer_types=None, freeze=True):
    scope = {"placements": placements or [], "offer_types": offer_types or []}
    c = holdouts_svc.create_holdout_cohort(store, PM, f"holdout {uuid.uuid4().hex[:6]}", pct, "", None, scope)
    return holdouts_svc.freeze_holdout_cohort(store, PM, c.cohort_id) if freeze else c


def approved(store, cohort_id, **over):
    e = svc.create_experiment(store, PM, definition(cohort_id, **over))
    rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[100]))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    return svc.approve_experiment(store, CFO, e.experiment_id, None)


def running(store, cohort_id, **over):
    return svc.start_experiment(store, PM, approved(store, cohort_id, **over).experiment_id)


def ask(store, user, **kw):
    return offers.get_offer(store, SERVICE, user, kw.pop("experiment_id", None), **kw)


def refused(store, exc, call):
    before = store.db.snapshot()
    with pytest.raises(exc) as err:
        call()
    assert store.db.snapshot() == before  # a refusal writes nothing
    return err.value


# --- placements -----------------------------------------------------------------------------------


def test_experiments_of_one_placement_take_disjoint_traffic_and_a_start_that_does_not_fit_is_refused(store):
    g = cohort(store)
    a = running(store, g.cohort_id, placement="paywall", trafficPercentage=60)
    b = running(store, g.cohort_id, placement="paywall", trafficPercentage=30)
    assert [(s.start, s.end) for s in a.traffic_segments] == [(0, 6000)]
    assert [(s.start, s.end) for s in b.traffic_segments] == [(6000, 9000)]
    assert a.covering_cohort_ids == [g.cohort_id]
    layer = store.docs("placementLayers")["paywall"]
    assert [h["experimentId"] for h in layer["holders"]] == [a.experiment_id, b.experiment_id]
    c = approved(store, g.cohort_id, placement="paywall", trafficPercentage=20)
    err = refused(store, FailedPrecondition, lambda: svc.start_experiment(store, PM, c.experiment_id))
    failing = {i["item"]: i for i in err.details["checklist"] if not i["ok"]}
    assert set(failing) == {"placement_capacity"} and "10% free" in failing["placement_capacity"]["detail"]
    other = running(store, g.cohort_id, placement="settings", trafficPercentage=100)  # another placement: room
    assert [(s.start, s.end) for s in other.traffic_segments] == [(0, 10000)]


def test_an_ended_experiment_releases_its_traffic_after_the_cooldown(store, monkeypatch):
    g = cohort(store)
    a = running(store, g.cohort_id, placement="paywall")
    svc.complete_experiment(store, PM, a.experiment_id)
    b = approved(store, g.cohort_id, placement="paywall", trafficPercentage=50)
    refused(store, FailedPrecondition, lambda: svc.start_experiment(store, PM, b.experiment_id))
    monkeypatch.setenv("OFFERLAB_PLACEMENT_COOLDOWN_HOURS", "0")
    started = svc.start_experiment(store, PM, b.experiment_id)
    assert [(s.start, s.end) for s in started.traffic_segments] == [(0, 5000)]
    holders = store.docs("placementLayers")["paywall"]["holders"]
    assert [h["experimentId"] for h in holders] == [b.experiment_id]  # A pruned once its cooldown passed


def test_each_user_is_in_at_most_one_experiment_of_a_placement_by_every_path(store):
    g = cohort(store, 10)
    a = running(store, g.cohort_id, placement="paywall", trafficPercentage=50)
    b = running(store, g.cohort_id, placement="paywall", trafficPercentage=40)
    shares = {a.experiment_id: 0, b.experiment_id: 0, None: 0}
    for user in USERS:
        placed = ask(store, user, placement="paywall")
        by_a = ask(store, user, experiment_id=a.experiment_id)
        by_b = ask(store, user, experiment_id=b.experiment_id)
        enrolled = [x["experimentId"] for x in (by_a, by_b) if x.get("reason") != "not_in_traffic"]
        assert len(enrolled) <= 1
        shares[placed["experimentId"]] += 1
        assert placed["experimentId"] == (enrolled[0] if enrolled else None)
        if placed["experimentId"]:
            assert placed["arm"] == (by_a if placed["experimentId"] == a.experiment_id else by_b)["arm"]
        else:
            assert placed == {"userId": user, "arm": "NOT_ENROLLED", "experimentId": None, "offerConfig": None,
                              "placement": "paywall", "reason": "not_in_traffic"}
    assert abs(shares[a.experiment_id] / len(USERS) - 0.5) < 0.03 and abs(shares[b.experiment_id] / len(USERS) - 0.4) < 0.03


def test_get_offer_without_placement_or_experiment_answers_for_the_default_placement(store):
    g = cohort(store)
    e = running(store, g.cohort_id)  # placement "default", traffic 100 %
    answer = ask(store, "zed")
    assert answer["experimentId"] == e.experiment_id and answer["placement"] == "default"
    assert answer["arm"] == ask(store, "zed", experiment_id=e.experiment_id)["arm"]
    refused(store, InvalidArgument, lambda: ask(store, "zed", experiment_id=e.experiment_id, placement="paywall"))


# --- scoped holdouts ------------------------------------------------------------------------------


def test_a_user_in_any_covering_cohort_is_held_out_by_every_path(store):
    own = cohort(store, 5, placements=["paywall"])
    broad = cohort(store, 10)                                  # global
    typed = cohort(store, 10, offer_types=["PRICE_CHANGE"])    # covers PRICE_CHANGE anywhere
    elsewhere = cohort(store, 20, placements=["settings"])     # does not cover the paywall
    e = running(store, own.cohort_id, placement="paywall")
    assert set(e.covering_cohort_ids) == {own.cohort_id, broad.cohort_id, typed.cohort_id}
    views = store.offer_views.view(e.experiment_id)
    covering = views.rule.covering
    for user in USERS[:2000]:
        member = any(c.contains(user) for c in covering)
        for answer in (ask(store, user, placement="paywall"), ask(store, user, experiment_id=e.experiment_id)):
            assert (answer["arm"] == "HOLDOUT") == member
            if member:
                assert answer["offerConfig"] == e.control_config and answer["reason"] == "holdout"
        if member:
            assert holdouts_svc.is_user_in_holdout(store, SERVICE, user)["inHoldout"]
    # Members of the out-of-scope cohort who are in no covering cohort still get the experiment's arms.
    outsiders = [u for u in USERS if elsewhere_contains(store, elsewhere.cohort_id, u)
                 and not any(c.contains(u) for c in covering)]
    assert outsiders and {ask(store, u, placement="paywall")["arm"] for u in outsiders} >= {"TREATMENT", "CONTROL"}


def elsewhere_contains(store, cohort_id, user):
    view = next(c for c in store.holdout_records.active_cohorts() if c.cohort_id == cohort_id)
    return view.contains(user)


def test_spillover_checks_use_the_same_decision(store):
    own = cohort(store, 5, placements=["paywall"])
    broad = cohort(store, 20)
    e = running(store, own.cohort_id, placement="paywall", treatmentPercentage=99.99)
    rule = store.offer_views.view(e.experiment_id).rule
    held = next(u for u in USERS if broad.cohort_id in [c.cohort_id for c in rule.covering if c.contains(u)]
                and not any(c.contains(u) for c in rule.covering if c.cohort_id == own.cohort_id))
    treated = next(u for u in USERS if rule.decide(u)[0].value == "TREATMENT")
    result = spillover.check_spillover(store, SERVICE, treated, held, SpilloverChannel.GIFT, e.experiment_id)
    assert result["toArm"] == "HOLDOUT" and result["violation"] and result["action"] == "BLOCK"
    assert broad.cohort_id in result["cohortIds"] and own.cohort_id not in result["cohortIds"]


def test_the_checklist_requires_the_own_cohort_to_cover_the_experiment(store):
    narrow = cohort(store, 10, placements=["settings"])
    e = approved(store, narrow.cohort_id, placement="paywall", offerType="PROMO")
    err = refused(store, FailedPrecondition, lambda: svc.start_experiment(store, PM, e.experiment_id))
    assert [i["item"] for i in err.details["checklist"] if not i["ok"]] == ["holdout_coverage"]


def test_a_scope_naming_an_unknown_offer_type_is_refused():
    with pytest.raises(InvalidArgument) as err:
        parse(CreateHoldoutCohort, {"name": "h", "percentage": 5, "scope": {"offerTypes": ["LOTTERY"]}})
    assert err.value.details["fields"][0]["path"] == "scope.offerTypes.0"
    with pytest.raises(InvalidArgument):
        parse(CreateHoldoutCohort, {"name": "h", "percentage": 5, "scope": {"placements": ["a/b"]}})


def test_a_cohort_cannot_start_covering_a_running_or_shipped_experiment(store):
    g = cohort(store, 10, placements=["paywall"])
    e = running(store, g.cohort_id, placement="paywall")
    late = cohort(store, 10, offer_types=["PRICE_CHANGE"], freeze=False)
    err = refused(store, FailedPrecondition, lambda: holdouts_svc.freeze_holdout_cohort(store, PM, late.cohort_id))
    assert err.details["experimentIds"] == [e.experiment_id]
    unrelated = cohort(store, 10, placements=["settings"], freeze=False)
    holdouts_svc.freeze_holdout_cohort(store, PM, unrelated.cohort_id)  # its scope has nothing running
    err = refused(store, FailedPrecondition, lambda: holdouts_svc.retire_holdout_cohort(store, ADMIN, g.cohort_id, "done"))
    assert e.experiment_id in err.details["experimentIds"]


# --- shipping -------------------------------------------------------------------------------------


def completed(store, cohort_id, **over):
    e = running(store, cohort_id, **over)
    return svc.complete_experiment(store, PM, e.experiment_id)


def test_a_ship_goes_through_approval_and_changes_exactly_the_non_holdout_users(store):
    g = cohort(store, 10)
    e = completed(store, g.cohort_id, placement="paywall", offerConfig={"price": 12.99, "productId": "pro_1299"}, controlConfig={"price": 9.99, "productId": "pro_999"})
    before = {u: ask(store, u, placement="paywall") for u in USERS[:1500]}
    assert {a["arm"] for a in before.values()} == {"NOT_ENROLLED"}
    pending = program.ship_experiment(store, PM, e.experiment_id, "TREATMENT", "won on net LTV")
    assert pending.status.value == "SHIP_PENDING_APPROVAL" and pending.approvals  # launch approvals kept
    assert {ask(store, u, placement="paywall")["arm"] for u in USERS[:200]} == {"NOT_ENROLLED"}  # not yet
    svc.approve_experiment(store, CEO, e.experiment_id, "yes")
    refused(store, FailedPrecondition, lambda: svc.approve_experiment(store, CEO, e.experiment_id, "again"))
    shipped = svc.approve_experiment(store, CFO, e.experiment_id, None)
    assert shipped.status.value == "SHIPPED" and shipped.ship.covering_cohort_ids == [g.cohort_id]
    member = lambda u: store.offer_views.view(e.experiment_id).shipped.covering[0].contains(u)  # noqa: E731
    changed = 0
    for user, old in before.items():
        new = ask(store, user, placement="paywall")
        if member(user):
            assert new["arm"] == "HOLDOUT" and new["offerConfig"] == {"price": 9.99, "productId": "pro_999"} and new["reason"] == "holdout"
        else:
            changed += 1
            assert new == {"userId": user, "arm": "SHIPPED", "experimentId": e.experiment_id,
                           "offerConfig": {"price": 12.99, "productId": "pro_1299"}, "placement": "paywall", "reason": "shipped"}
    assert 0.85 < changed / len(before) < 0.95
    events = [x["eventType"] for x in store.events_of(e.experiment_id)][-4:]
    assert events == ["EXPERIMENT_COMPLETED", "EXPERIMENT_SHIP_REQUESTED", "EXPERIMENT_SHIP_APPROVAL_RECORDED",
                      "EXPERIMENT_SHIPPED"]
    assert store.docs("placementLayers")["paywall"]["shippedExperimentId"] == e.experiment_id
    # Unship (admin only) reverts everyone to the status quo.
    refused(store, PermissionDenied, lambda: program.unship_experiment(store, PM, e.experiment_id, "oops"))
    program.unship_experiment(store, ADMIN, e.experiment_id, "price regulation")
    assert {ask(store, u, placement="paywall")["arm"] for u in USERS[:300]} == {"NOT_ENROLLED"}
    assert store.events_of(e.experiment_id)[-1]["eventType"] == "EXPERIMENT_UNSHIPPED"


def test_a_rejected_ship_returns_to_completed_and_a_second_ship_replaces_the_first(store):
    g = cohort(store, 10)
    first = completed(store, g.cohort_id, placement="paywall", trafficPercentage=50)
    second = completed(store, g.cohort_id, placement="settings")
    program.ship_experiment(store, PM, first.experiment_id, "CONTROL", "keep the price")
    rejected = svc.reject_experiment(store, CEO, first.experiment_id, "not convinced")
    assert rejected.status.value == "COMPLETED" and rejected.approvals and rejected.ship.rejected_by == "ceo@company.com"
    for e in (first,):
        program.ship_experiment(store, PM, e.experiment_id, "TREATMENT", "ship it")
        svc.approve_experiment(store, CEO, e.experiment_id, None)
        svc.approve_experiment(store, CFO, e.experiment_id, None)
    # A later winner of the same placement replaces the shipped one when its ship is approved.
    third = completed(store, g.cohort_id, placement="paywall", trafficPercentage=50)
    program.ship_experiment(store, PM, third.experiment_id, "TREATMENT", "better")
    svc.approve_experiment(store, CEO, third.experiment_id, None)
    svc.approve_experiment(store, CFO, third.experiment_id, None)
    assert store.experiments.get(first.experiment_id).status.value == "COMPLETED"
    last = store.events_of(first.experiment_id)[-1]
    assert last["eventType"] == "EXPERIMENT_UNSHIPPED" and last["payload"]["supersededBy"] == third.experiment_id
    assert store.docs("placementLayers")["paywall"]["shippedExperimentId"] == third.experiment_id
    assert store.experiments.get(second.experiment_id).status.value == "COMPLETED"


def test_shipping_refusals_write_nothing(store):
    g = cohort(store, 10)
    live = running(store, g.cohort_id, placement="a")
    refused(store, FailedPrecondition, lambda: program.ship_experiment(store, PM, live.experiment_id, "TREATMENT", "x"))
    killed = running(store, g.cohort_id, placement="b")
    svc.kill_experiment(store, ADMIN, killed.experiment_id, "bad")
    refused(store, FailedPrecondition, lambda: program.ship_experiment(store, PM, killed.experiment_id, "TREATMENT", "x"))
    done = svc.complete_experiment(store, PM, running(store, g.cohort_id, placement="c").experiment_id)
    refused(store, FailedPrecondition, lambda: program.unship_experiment(store, ADMIN, done.experiment_id, "x"))
    refused(store, PermissionDenied, lambda: program.ship_experiment(store, CEO, done.experiment_id, "TREATMENT", "x"))
    refused(store, NotFound, lambda: program.ship_experiment(store, PM, "nope", "TREATMENT", "x"))
    with pytest.raises(InvalidArgument) as err:  # an arm that does not exist: refused by the request model
        parse(ShipExperiment, {"experimentId": done.experiment_id, "arm": "HOLDOUT", "reason": "x"})
    assert err.value.details["fields"][0]["path"] == "arm"


# --- program exposures, contamination, health, read-out --------------------------------------------


def test_every_covered_answer_records_program_exposures_and_served_treatment_contaminates(store):
    g = cohort(store, 10, placements=["paywall"])
    e = running(store, g.cohort_id, placement="paywall")
    for user in USERS[:1000]:
        ask(store, user, placement="paywall")
    health = holdouts_svc.get_holdout_health(store, g.cohort_id)
    assert health["exposedUsers"] == 1000 and 60 < health["exposedHoldoutUsers"] < 140
    assert health["assignedUsers"] == health["exposedHoldoutUsers"] and health["contaminatedUsers"] == 0
    assert health["evaluatedUsers"] == 1000 and health["health"] == "HEALTHY"
    svc.complete_experiment(store, PM, e.experiment_id)
    # A cohort frozen after the run covers the ship: its members served TREATMENT during the run are contaminated.
    late = cohort(store, 30, placements=["paywall"])
    program.ship_experiment(store, PM, e.experiment_id, "TREATMENT", "won")
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    svc.approve_experiment(store, CFO, e.experiment_id, None)
    late_view = next(c for c in store.holdout_records.active_cohorts() if c.cohort_id == late.cohort_id)
    treated_members = [u for u in USERS[:1000] if late_view.contains(u) and not g_contains(store, g, u)
                       and store.exposures.find(e.experiment_id, u).arm == "TREATMENT"]
    for user in USERS[:1000]:
        assert ask(store, user, placement="paywall")["arm"] in ("HOLDOUT", "SHIPPED")
    after = holdouts_svc.get_holdout_health(store, late.cohort_id)
    assert treated_members and after["contaminatedUsers"] == len(treated_members)
    record = store.docs("holdoutContaminations")[f"{late.cohort_id}_{treated_members[0]}"]
    assert record["cause"] == "served" and e.experiment_id in record["servedExposureIds"]
    assert holdouts_svc.get_holdout_health(store, g.cohort_id)["contaminatedUsers"] == 0


def g_contains(store, cohort_doc, user):
    return next(c for c in store.holdout_records.active_cohorts() if c.cohort_id == cohort_doc.cohort_id).contains(user)


def test_analyze_holdout_reads_out_the_program_and_shrinks_the_shipped_lifts(store):
    import random

    g = cohort(store, 10)
    rng = random.Random(3)
    rows = []
    for i in range(6000):
        member = i % 10 == 0
        value = rng.gauss(100.0 if member else 112.0, 20.0)
        rows.append(UserRow(f"p{i}", "HOLDOUT" if member else "PROGRAM", counts={"purchase": 1},
                            amounts={"purchase": max(value, 0.0)}))
    store.rows[f"program:{g.cohort_id}"] = rows
    e = completed(store, g.cohort_id, placement="paywall")
    store.rows[e.experiment_id] = [UserRow(f"e{i}", "TREATMENT" if i % 2 else "CONTROL", counts={"purchase": 1},
                                           amounts={"purchase": rng.gauss(108.0 if i % 2 else 100.0, 20.0)})
                                   for i in range(4000)]
    program.ship_experiment(store, PM, e.experiment_id, "TREATMENT", "won")
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    svc.approve_experiment(store, CFO, e.experiment_id, None)
    result = holdout_analysis.analyze_holdout(store, ANALYST, g.cohort_id, Metric.NET_LTV)
    lo, hi = result.confidence_interval
    assert result.holdout_users == 600 and result.comparison_users == 5400 and lo < 12.0 < hi
    shipped = result.shipped_experiments
    assert [s.experiment_id for s in shipped] == [e.experiment_id] and shipped[0].arm == "TREATMENT"
    assert 5 < shipped[0].experiment_lift_percent < 11 and 0 < shipped[0].shrunk_lift_percent <= shipped[0].experiment_lift_percent
    stored = store.docs("experimentAnalyses")[result.analysis_id]
    assert stored["kind"] == "HOLDOUT" and stored["cohortId"] == g.cohort_id and "experimentId" not in stored


def test_analyze_holdout_refuses_a_draft_cohort_and_writes_nothing(store):
    draft = cohort(store, 10, freeze=False)
    refused(store, FailedPrecondition, lambda: holdout_analysis.analyze_holdout(store, ANALYST, draft.cohort_id, Metric.ARPU))
    refused(store, NotFound, lambda: holdout_analysis.analyze_holdout(store, ANALYST, "nope", Metric.ARPU))


def test_layer_bucket_decides_the_holder(store):
    g = cohort(store)
    a = running(store, g.cohort_id, placement="paywall", trafficPercentage=25)
    for user in USERS[:500]:
        held = ask(store, user, placement="paywall")["experimentId"] == a.experiment_id
        assert held == (layer_bucket("paywall", user) < 2500)


def test_the_audit_reports_shipping_section_lists_the_ship_steps_in_order():
    from offerlab.ledger.report import history_sections

    def entry(seq, event, at, **inner):
        return {"sequence": seq, "eventType": event, "actor": "x", "sourceKind": "EXPERIMENT_EVENT",
                "payload": {"occurredAt": at, "payload": inner}}

    entries = [entry(1, "EXPERIMENT_COMPLETED", "2026-01-01"),
               entry(3, "EXPERIMENT_SHIPPED", "2026-01-03", arm="TREATMENT", coveringCohortIds=["c"], replaces="old"),
               entry(2, "EXPERIMENT_SHIP_REQUESTED", "2026-01-02", arm="TREATMENT", reason="won"),
               {"sequence": 4, "eventType": "EXPERIMENT_SHIPPED", "sourceKind": "EXPERIMENT_DOCUMENT", "payload": {}}]
    section = history_sections(entries)["shipping"]
    assert [s["eventType"] for s in section] == ["EXPERIMENT_SHIP_REQUESTED", "EXPERIMENT_SHIPPED"]
    assert section[0]["reason"] == "won" and section[1]["coveringCohortIds"] == ["c"] and section[1]["replaces"] == "old"

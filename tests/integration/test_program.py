"""A program of experiments on the real emulators (API.md §10): racing starts for one placement, 20,000
users decided locally from the published hashes, and a simulated program of two shipped winners recovered by
analyze_holdout. The use cases run in-process on the Firestore store; the ledger's triggers run in the
functions emulator. Use-case rules and refusals: tests/unit/test_program_use_cases.py."""
from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from hashlib import sha256

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import Aborted, FailedPrecondition
from offerlab.domain.metrics import Metric, empty_totals
from offerlab.service import experiments as svc
from offerlab.service import holdout_analysis
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import offers, program, rollout_plans
from offerlab.store import collections as C
from offerlab.store import experiment_cache
from offerlab.store.firestore_store import firestore_store

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
CEO = Caller("ceo-uid", "ceo@company.com", frozenset({Role.APPROVER}))
CFO = Caller("cfo-uid", "cfo@company.com", frozenset({Role.APPROVER}))
SERVICE = Caller("backend", None, frozenset({Role.SERVICE}))
ANALYST = Caller("analyst-uid", "analyst@company.com", frozenset({Role.ANALYST}))
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def bucket(salt, unit):  # API.md §2, written out again: the test must not trust the code under test
    return int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8], "big") % 10000


def definition(cohort_id, placement, **over):
    now = datetime.now(timezone.utc)
    body = {
        "name": f"program test {uuid.uuid4().hex[:6]}",
        "hypothesis": {"statement": "the change helps", "successCriteria": ["LTV up"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.2, "violationAction": "ALERT"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"price": 12.99, "productId": "pro_1299"}, "controlConfig": {"price": 9.99, "productId": "pro_999"},
        "placement": placement,
        "plannedStartDate": now.isoformat(), "plannedEndDate": (now + timedelta(days=30)).isoformat(),
        "approvers": ["ceo@company.com", "cfo@company.com"],
    }
    body.update(over)
    return m.CreateExperiment.model_validate(body)


def frozen(pct, placements=(), offer_types=()):
    store = firestore_store()
    cohort = holdouts_svc.create_holdout_cohort(store, PM, f"holdout {uuid.uuid4().hex[:6]}", pct, "", None,
                                                {"placements": list(placements), "offer_types": list(offer_types)})
    return holdouts_svc.freeze_holdout_cohort(store, PM, cohort.cohort_id)


def approved(cohort_id, placement, **over):
    store = firestore_store()
    e = svc.create_experiment(store, PM, definition(cohort_id, placement, **over))
    rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[100]))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    return svc.approve_experiment(store, CFO, e.experiment_id, None)


def start_retrying(experiment_id):
    """A callable fails fast with ABORTED under contention (the client retries): retry like a client."""
    for attempt in range(10):
        try:
            return svc.start_experiment(firestore_store(), PM, experiment_id)
        except Aborted:
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("still contended after 10 attempts")


def race(experiment_ids):
    results, barrier = {}, threading.Barrier(len(experiment_ids))

    def run(eid):
        barrier.wait()
        try:
            results[eid] = start_retrying(eid)
        except FailedPrecondition as err:
            results[eid] = err

    threads = [threading.Thread(target=run, args=(eid,)) for eid in experiment_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def segments_of(experiment):
    return [(s.start, s.end) for s in experiment.traffic_segments]


@pytest.mark.parametrize("traffic,both_fit", [(60, False), (50, True)])
def test_two_starts_racing_for_one_placement_never_take_the_same_buckets(firestore_db, traffic, both_fit):
    placement = f"race-{uuid.uuid4().hex[:8]}"
    cohort = frozen(10, placements=[placement])
    ids = [approved(cohort.cohort_id, placement, trafficPercentage=traffic).experiment_id for _ in range(2)]
    results = race(ids)
    started = [r for r in results.values() if not isinstance(r, Exception)]
    refusals = [r for r in results.values() if isinstance(r, FailedPrecondition)]
    assert len(started) == (2 if both_fit else 1) and len(refusals) == (0 if both_fit else 1)
    for err in refusals:
        assert [i["item"] for i in err.details["checklist"] if not i["ok"]] == ["placement_capacity"]
    taken = [b for e in started for s, t in segments_of(e) for b in range(s, t)]
    assert len(taken) == len(set(taken)) == traffic * 100 * len(started)
    layer = firestore_db.collection(C.PLACEMENT_LAYERS).document(placement).get().to_dict()
    assert {h["experimentId"] for h in layer["holders"]} == {e.experiment_id for e in started}
    statuses = {eid: firestore_db.collection(C.OFFER_EXPERIMENTS).document(eid).get().get("status") for eid in ids}
    assert sorted(statuses.values()) == sorted(["RUNNING"] * len(started) + ["APPROVED"] * len(refusals))


def local_decision(user, placement, experiments, cohorts):
    """The placement's answer from the published hashes alone (docs/program.md §1–§2)."""
    layer = bucket(f"layer:{placement}", user)
    holder = next((e for e in experiments if e["placement"] == placement and e["status"] == "RUNNING"
                   and any(s["start"] <= layer < s["end"] for s in e["trafficSegments"])), None)
    if holder is None:
        return None, "NOT_ENROLLED"
    if any(bucket(cohorts[c]["salt"], user) < round(cohorts[c]["percentage"] * 100) for c in holder["coveringCohortIds"]):
        return holder["experimentId"], "HOLDOUT"
    if bucket(f"{holder['salt']}:coverage", user) >= round(holder["coverage"] * 100):
        return holder["experimentId"], "NOT_ENROLLED"
    arm = "TREATMENT" if bucket(f"{holder['salt']}:arm", user) < round(holder["treatmentPercentage"] * 100) else "CONTROL"
    return holder["experimentId"], arm


def test_three_experiments_in_two_placements_hold_out_every_covered_user_and_stay_exclusive(firestore_db):
    pw, st = f"paywall-{uuid.uuid4().hex[:6]}", f"settings-{uuid.uuid4().hex[:6]}"
    broad = frozen(5, placements=[pw, st])               # "global" for this module's placements
    narrow = frozen(10, placements=[pw])                  # scoped to the paywall
    typed = frozen(8, offer_types=["TRIAL"])              # covers TRIAL experiments anywhere
    a = svc.start_experiment(firestore_store(), PM, approved(narrow.cohort_id, pw, trafficPercentage=50).experiment_id)
    b = svc.start_experiment(firestore_store(), PM, approved(broad.cohort_id, pw, trafficPercentage=30,
                                                             treatmentPercentage=70).experiment_id)
    c = svc.start_experiment(firestore_store(), PM, approved(typed.cohort_id, st, offerType="TRIAL").experiment_id)
    docs = [firestore_db.collection(C.OFFER_EXPERIMENTS).document(e.experiment_id).get().to_dict() for e in (a, b, c)]
    cohorts = {d.id: d.to_dict() for d in firestore_db.collection(C.HOLDOUT_COHORTS).stream()}
    assert set(docs[0]["coveringCohortIds"]) == {broad.cohort_id, narrow.cohort_id}
    assert set(docs[2]["coveringCohortIds"]) == {broad.cohort_id, typed.cohort_id}

    users = [f"u{i}" for i in range(20_000)] + ["", "Ünïcødé-用户"]
    counts = {d["experimentId"]: 0 for d in docs}
    for user in users:
        members = {cid for cid, co in cohorts.items() if bucket(co["salt"], user) < round(co["percentage"] * 100)}
        held = []
        for placement in (pw, st):
            eid, arm = local_decision(user, placement, docs, cohorts)
            if eid is None:
                continue
            counts[eid] += 1
            held.append((placement, eid))
            covering = next(d for d in docs if d["experimentId"] == eid)["coveringCohortIds"]
            if members & set(covering):
                assert arm == "HOLDOUT"  # never a treatment for a covered holdout member
        assert len({p for p, _ in held}) == len(held)  # at most one experiment per placement
    n = len(users)
    for doc, share in zip(docs, (0.5, 0.3, 1.0)):
        if share < 1:  # within 4 standard errors of the binomial share
            assert abs(counts[doc["experimentId"]] / n - share) < 4 * (share * (1 - share) / n) ** 0.5
        else:
            assert counts[doc["experimentId"]] == n

    # The service answers what the published hashes say (in-process, on the emulator's Firestore).
    experiment_cache.clear()
    for user in users[:300] + users[-2:]:
        for placement in (pw, st):
            answer = offers.get_offer(firestore_store(), SERVICE, user, None, placement)
            eid, arm = local_decision(user, placement, docs, cohorts)
            assert (answer["experimentId"], answer["arm"]) == (eid, arm), (user, placement)


# --- a simulated program: two shipped winners, the holdout's read-out ---------------------------------

def _write(db, writes):
    for start in range(0, len(writes), 500):
        batch = db.batch()
        for ref, data in writes[start:start + 500]:
            batch.set(ref, data)
        batch.commit()


def _totals(scope_id, user, arm, amount):
    doc = empty_totals()
    doc["counts"]["purchase"] = 1 if amount > 0 else 0
    doc["amounts"]["purchase"] = float(amount)
    doc.update({"experimentId": scope_id, "userId": user, "arm": arm, "firstExposedAt": T0,
                "lastEventAt": T0 + timedelta(days=3), "updatedAt": T0})
    return doc


def seed_experiment(db, experiment_id, n, control_mean, lift, rng):
    writes = []
    for i in range(n):
        user, arm = f"{experiment_id}-u{i}", "TREATMENT" if i % 2 else "CONTROL"
        amount = max(0.0, rng.gauss(control_mean * (1 + lift if arm == "TREATMENT" else 1), 8.0))
        writes.append((db.collection(C.EXPERIMENT_EXPOSURES).document(f"{experiment_id}_{user}"), {
            "experimentId": experiment_id, "userId": user, "arm": arm, "firstExposedAt": T0, "coverage": 100.0,
            "experimentVersion": 1, "placement": "x", "offerType": "PRICE_CHANGE", "servedArm": arm}))
        writes.append((db.collection(C.USER_METRIC_TOTALS).document(f"{experiment_id}_{user}"),
                       _totals(experiment_id, user, arm, amount)))
    _write(db, writes)


def test_a_simulated_program_of_two_shipped_winners_is_recovered_by_the_holdout(firestore_db, clients):
    rng = random.Random(20261201)
    pw, st = f"paywall-{uuid.uuid4().hex[:6]}", f"settings-{uuid.uuid4().hex[:6]}"
    holdout = frozen(10, placements=[pw, st])
    lifts = {pw: 0.10, st: 0.05}  # true relative lifts on net LTV of the two winners
    store = firestore_store()
    shipped = []
    for placement in (pw, st):
        e = svc.start_experiment(store, PM, approved(holdout.cohort_id, placement).experiment_id)
        seed_experiment(firestore_db, e.experiment_id, 4000, 20.0, lifts[placement], rng)
        svc.complete_experiment(store, PM, e.experiment_id)
        program.ship_experiment(store, PM, e.experiment_id, "TREATMENT", "won on net LTV")
        svc.approve_experiment(store, CEO, e.experiment_id, None)
        shipped.append(svc.approve_experiment(store, CFO, e.experiment_id, "ship it"))
    assert [e.status.value for e in shipped] == ["SHIPPED", "SHIPPED"]
    assert all(e.ship.covering_cohort_ids == [holdout.cohort_id] for e in shipped)

    # The program: users see both placements; outside the holdout both shipped offers act (multiplicatively).
    true_cumulative = (1 + lifts[pw]) * (1 + lifts[st]) - 1
    scope_id, writes, members = f"program:{holdout.cohort_id}", [], 0
    for i in range(20_000):
        user = f"prog-{i}"
        member = bucket(holdout.salt, user) < round(holdout.percentage * 100)
        members += member
        amount = max(0.0, rng.gauss(20.0 * (1 if member else 1 + true_cumulative), 8.0))
        arm = "HOLDOUT" if member else "PROGRAM"
        writes.append((firestore_db.collection(C.EXPERIMENT_EXPOSURES).document(f"{scope_id}_{user}"), {
            "experimentId": scope_id, "userId": user, "arm": arm, "firstExposedAt": T0, "coverage": 100.0,
            "experimentVersion": 1, "cohortId": holdout.cohort_id, "inHoldout": member, "placement": pw,
            "offerType": "PRICE_CHANGE", "servedArm": "HOLDOUT" if member else "SHIPPED"}))
        writes.append((firestore_db.collection(C.USER_METRIC_TOTALS).document(f"{scope_id}_{user}"),
                       _totals(scope_id, user, arm, amount)))
    _write(firestore_db, writes)

    result = holdout_analysis.analyze_holdout(store, ANALYST, holdout.cohort_id, Metric.NET_LTV)
    lo, hi = result.confidence_interval
    # The cohort's salt is random per run, so the holdout's members (and this estimate) are too: a 95 %
    # interval misses the truth in 1 run of 20 by design. The check a run can fail only when something is
    # wrong: the truth within 3.29 standard errors of the estimate (1 run in 1,000), and a tight interval.
    se = (hi - lo) / (2 * 1.959964)
    assert abs(result.lift_percent - 100 * true_cumulative) < 3.29 * se and hi - lo < 8, (lo, hi)
    assert (result.holdout_users, result.comparison_users) == (members, 20_000 - members)
    by_id = {s.experiment_id: s for s in result.shipped_experiments}
    assert set(by_id) == {e.experiment_id for e in shipped}
    for e in shipped:
        s = by_id[e.experiment_id]
        true = 100 * lifts[e.placement]
        assert abs(s.experiment_lift_percent - true) < 4 * s.experiment_lift_se_percent
        assert 0 <= s.shrunk_lift_percent <= s.experiment_lift_percent
    # Stored once in experimentAnalyses, recorded by the ledger's trigger on the cohort's chain.
    stored = firestore_db.collection(C.EXPERIMENT_ANALYSES).document(result.analysis_id).get().to_dict()
    assert stored["kind"] == "HOLDOUT" and stored["liftPercent"] == result.lift_percent
    chain = f"cohort:{holdout.cohort_id}"
    deadline = time.monotonic() + 90
    while True:
        trail = clients.analyst().get_audit_trail(chain)
        kinds = [e["eventType"] for e in trail["entries"]]
        if "ANALYSIS_RECORDED" in kinds or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "ANALYSIS_RECORDED" in kinds and clients.analyst().verify_ledger(chain)["valid"]

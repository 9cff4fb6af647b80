"""analyze_experiment on the real emulators (issue 6 "Done when"): a seeded price test with a known true
effect, fraud users and a whale; the true effect lies inside the corrected interval, the fraud/whale lift is
gone from it; analyses are immutable (a second call makes a NEW one, the first unchanged; clients cannot
write them). Data is seeded as per-user totals and exposures written directly in batches (the metric
ingestion path is exercised in tests/e2e/test_analytics_e2e.py)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import requests

from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import InvalidArgument, NotFound, PermissionDenied
from offerlab.domain.metrics import Metric, empty_totals
from offerlab.service import analytics as svc
from offerlab.store import analyses as repo
from offerlab.store import collections as C
from offerlab.store import experiments as experiments_repo
from offerlab_client import emulator_token
from tests.e2e.test_experiment_lifecycle import experiment_body, frozen_cohort

PROJECT = "demo-offerlab"
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
ANALYST = Caller("analyst-uid", "analyst@company.com", frozenset({Role.ANALYST}))
OTHER_PM = Caller("x-uid", "someone-else@company.com", frozenset({Role.EXPERIMENTER}))


def running_experiment(clients, guardrails=None, treatment=50):
    """A RUNNING experiment at 100 % coverage, created through the functions like a back office would."""
    cohort = frozen_cohort(clients)
    pm = clients.experimenter()
    over = {"treatmentPercentage": treatment}
    if guardrails is not None:
        over["guardrails"] = guardrails
    exp = pm.call("create_experiment", experiment_body(cohort["cohortId"], **over))
    pm.create_rollout_plan(exp["experimentId"], stages=[100])
    pm.submit_for_approval(exp["experimentId"])
    clients.approver("ceo").approve_experiment(exp["experimentId"])
    clients.approver("cfo").approve_experiment(exp["experimentId"])
    return pm.start_experiment(exp["experimentId"])


def totals_doc(experiment_id, user_id, arm, *, purchase=0.0, purchases=None, refunds=0, region=None, sandbox=False,
               paywall_views=0):
    doc = empty_totals()
    n_purchases = purchases if purchases is not None else (1 if purchase else 0)
    doc["counts"].update({"purchase": n_purchases, "refund": refunds, "paywall_view": paywall_views})
    doc["amounts"]["purchase"] = float(purchase)
    doc.update({"experimentId": experiment_id, "userId": user_id, "arm": arm, "firstExposedAt": T0,
                "lastEventAt": T0 + timedelta(days=3), "updatedAt": T0, "lastRegion": region,
                "sandbox": sandbox, "sandboxEvents": int(sandbox)})
    return doc


def seed(db, experiment_id, users, fraud=None):
    """users: [(userId, arm, totals or None)]; exposures for all, totals where given, and the streamed shard
    sums that describe them (store/bulk_load.py: monitoring reads those); fraud scores as given."""
    from offerlab.service.aggregation import spec_for  # noqa: PLC0415
    from offerlab.store.bulk_load import load_users  # noqa: PLC0415

    spec = spec_for(experiments_repo.get_experiment(experiment_id))
    exposure = {"firstExposedAt": T0, "coverage": 100.0, "stageIndex": 0, "experimentVersion": 1}
    flagged = {u: ["fraud"] for u, score in (fraud or {}).items() if score >= spec.fraud_threshold}
    load_users(spec, ((u, arm, totals, exposure) for u, arm, totals in users), flagged)
    writes = []
    for user_id, score in (fraud or {}).items():
        writes.append((db.collection(C.FRAUD_SCORES).document(user_id), {
            "userId": user_id, "maxScore": score, "lastScore": score, "reasons": ["card_testing"], "signals": 1,
            "lastOccurredAt": T0, "updatedAt": T0}))
    for start in range(0, len(writes), 500):
        batch = db.batch()
        for ref, data in writes[start:start + 500]:
            batch.set(ref, data)
        batch.commit()


def seeded_price_test(db, experiment_id, n=1500, seed_=11):
    """Payers (30 %) spend Exp(mean 30); treatment payers spend 5 more: true net_ltv lift = 0.3·5 / (0.3·30)
    = +16.7 %. Plus 30 treatment fraudsters with $400 purchases and one $50 000 treatment whale."""
    rng = np.random.default_rng(seed_)
    tag = uuid.uuid4().hex[:6]
    users, fraud = [], {}
    for arm, shift in (("CONTROL", 0.0), ("TREATMENT", 5.0)):
        pays = rng.random(n) < 0.3
        values = np.where(pays, rng.exponential(30.0, n) + shift, 0.0)
        for i, value in enumerate(values):
            user_id = f"{tag}-{arm[0]}{i}"
            # non-payers have no totals document at all: an exposed user without events counts as zeros
            users.append((user_id, arm, totals_doc(experiment_id, user_id, arm, purchase=value) if value else None))
    for i in range(30):
        user_id = f"{tag}-fraud{i}"
        users.append((user_id, "TREATMENT", totals_doc(experiment_id, user_id, "TREATMENT", purchase=400.0)))
        fraud[user_id] = 0.97
    whale = f"{tag}-whale"
    users.append((whale, "TREATMENT", totals_doc(experiment_id, whale, "TREATMENT", purchase=50_000.0)))
    seed(db, experiment_id, users, fraud)
    return 100 * 5.0 / 30.0


@pytest.fixture(scope="module")
def price_test(clients, firestore_db):
    experiment = running_experiment(clients)
    true_lift = seeded_price_test(firestore_db, experiment["experimentId"])
    return experiment["experimentId"], true_lift


def test_the_true_effect_is_inside_the_corrected_interval_and_the_fraud_and_whale_lift_is_gone(price_test):
    experiment_id, true_lift = price_test
    analysis = svc.analyze_experiment(PM, experiment_id, Metric.NET_LTV)
    lo, hi = analysis.confidence_interval
    assert lo < true_lift < hi, (lo, true_lift, hi)
    # 30 × $400 + $50 000 on ~$13 500 of treatment revenue: the raw lift is several times the true one
    assert analysis.raw_percent_change > 3 * true_lift and analysis.raw_percent_change > hi
    assert abs(analysis.corrected_percent_change - true_lift) < abs(analysis.raw_percent_change - true_lift) / 5
    by_type = {a.type: a for a in analysis.bias_adjustments}
    assert by_type["fraud"].affected_user_count == 30 and by_type["fraud"].by_arm == {"CONTROL": 0, "TREATMENT": 30}
    assert by_type["winsorization"].by_arm["TREATMENT"] >= 1  # the whale (and the pooled tail) capped
    assert analysis.sample_sizes == {"CONTROL": 1500, "TREATMENT": 1501}  # 1500 + whale; fraudsters excluded
    stored = repo.analysis_ref(analysis.analysis_id).get().to_dict()
    assert stored["inputsDigest"] == analysis.inputs_digest and stored["createdBy"] == "pm@company.com"
    assert stored["uncappedPercentChange"] > stored["correctedPercentChange"]  # the whale is in the uncapped one


def test_a_second_analysis_is_a_new_document_and_the_first_is_unchanged(price_test, firestore_host):
    experiment_id, _ = price_test
    first = svc.analyze_experiment(ANALYST, experiment_id, Metric.NET_LTV)
    before = repo.analysis_ref(first.analysis_id).get().to_dict()
    second = svc.analyze_experiment(ANALYST, experiment_id, Metric.NET_LTV)
    assert second.analysis_id != first.analysis_id
    assert second.inputs_digest == first.inputs_digest  # same inputs, same digest: reproducible
    assert repo.analysis_ref(first.analysis_id).get().to_dict() == before
    # clients cannot change it either (the Admin SDK bypasses rules; this goes through REST with a user token)
    url = (f"http://{firestore_host}/v1/projects/{PROJECT}/databases/(default)/documents/"
           f"{C.EXPERIMENT_ANALYSES}/{first.analysis_id}")
    for role in ("admin", "analyst", "experimenter"):
        token = emulator_token(f"{role}-1", email=f"{role}@company.com", roles=[role], project=PROJECT)
        patch = requests.patch(url, json={"fields": {"pValue": {"doubleValue": 0.0001}}},
                               headers={"Authorization": f"Bearer {token}"}, timeout=30)
        delete = requests.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert patch.status_code == 403 and delete.status_code == 403
    assert repo.analysis_ref(first.analysis_id).get().to_dict() == before


def test_refusals_write_nothing(price_test):
    experiment_id, _ = price_test
    count = len(repo.analyses_of(experiment_id))
    with pytest.raises(PermissionDenied):
        svc.analyze_experiment(OTHER_PM, experiment_id, Metric.NET_LTV)
    with pytest.raises(InvalidArgument):
        svc.analyze_experiment(PM, experiment_id, Metric.NET_LTV, treatment_user_ids=["not-exposed"])
    with pytest.raises(NotFound):
        svc.analyze_experiment(PM, f"missing-{uuid.uuid4().hex[:6]}", Metric.NET_LTV)
    assert len(repo.analyses_of(experiment_id)) == count


def test_spillover_contaminated_and_sandbox_users_are_excluded(clients, firestore_db):
    experiment = running_experiment(clients)
    eid = experiment["experimentId"]
    tag = uuid.uuid4().hex[:6]
    users = [(f"{tag}-c{i}", "CONTROL", totals_doc(eid, f"{tag}-c{i}", "CONTROL", purchase=10.0 + i % 7))
             for i in range(150)]
    users += [(f"{tag}-t{i}", "TREATMENT", totals_doc(eid, f"{tag}-t{i}", "TREATMENT", purchase=11.0 + i % 7,
                                                      sandbox=i < 3)) for i in range(150)]
    seed(firestore_db, eid, users)
    for i in range(4):  # recorded the way service/spillover.py records a contaminated CONTROL user
        firestore_db.collection(C.HOLDOUT_CONTAMINATIONS).document(f"{eid}_{tag}-c{i}").set({
            "userId": f"{tag}-c{i}", "experimentId": eid, "arm": "CONTROL", "channel": "referral",
            "fromUserId": f"{tag}-t0", "spilloverEventId": "e1", "contaminatedAt": T0})
    analysis = svc.analyze_experiment(ANALYST, eid, Metric.ARPU)
    by_type = {a.type: a for a in analysis.bias_adjustments}
    assert by_type["spillover"].by_arm == {"CONTROL": 4, "TREATMENT": 0}
    assert by_type["sandbox"].by_arm == {"CONTROL": 0, "TREATMENT": 3}
    assert analysis.sample_sizes == {"CONTROL": 146, "TREATMENT": 147}

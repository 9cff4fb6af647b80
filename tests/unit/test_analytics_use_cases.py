"""analyze_experiment as a use case on the in-memory store: who may analyse, refusals writing nothing, every
analysis a new immutable document, and the exclusions read from the store (fraud scores, contaminated
users, sandbox users). The statistics themselves: tests/unit/test_analysis_compute.py; the real store's
reads, queries and rules: tests/integration/test_analytics.py; over HTTP: tests/e2e/test_analytics_e2e.py."""
import uuid
from datetime import datetime, timezone

import pytest

from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import InvalidArgument, NotFound, PermissionDenied
from offerlab.domain.metrics import Metric
from offerlab.domain.user_rows import UserRow
from offerlab.service import analytics as svc
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import ADMIN, ANALYST, OTHER_PM, PM, frozen_cohort, refused, running

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
APPROVER = Caller("ceo-uid", "ceo@company.com", frozenset({Role.APPROVER}))


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def eid(store):
    eid = running(store, frozen_cohort(store).cohort_id, stages=[100]).experiment_id
    store.rows[eid] = [UserRow(f"c{i}", "CONTROL", counts={"purchase": 1}, amounts={"purchase": 10.0 + i % 7})
                       for i in range(150)]
    store.rows[eid] += [UserRow(f"t{i}", "TREATMENT", counts={"purchase": 1}, amounts={"purchase": 11.0 + i % 7},
                                sandbox=i < 3) for i in range(150)]
    return eid


def analyses(store):
    return store.docs("experimentAnalyses")


def test_refusals_write_nothing(store, eid):
    svc.analyze_experiment(store, PM, eid, Metric.NET_LTV)
    refused(store, PermissionDenied, lambda: svc.analyze_experiment(store, OTHER_PM, eid, Metric.NET_LTV))
    refused(store, PermissionDenied, lambda: svc.analyze_experiment(store, APPROVER, eid, Metric.NET_LTV))
    err = refused(store, InvalidArgument, lambda: svc.analyze_experiment(
        store, PM, eid, Metric.NET_LTV, treatment_user_ids=["not-exposed", "c1"]))
    assert len(err.value.details["fields"]) == 2  # each bad entry named: unknown, and of the other arm
    refused(store, NotFound, lambda: svc.analyze_experiment(store, PM, f"missing-{uuid.uuid4().hex[:6]}", Metric.NET_LTV))
    assert len(analyses(store)) == 1


def test_the_author_analysts_and_admins_analyse_and_each_analysis_is_a_new_document(store, eid):
    first = svc.analyze_experiment(store, ANALYST, eid, Metric.NET_LTV)
    stored = analyses(store)[first.analysis_id]
    assert stored["inputsDigest"] == first.inputs_digest and stored["createdBy"] == "analyst@company.com"
    second = svc.analyze_experiment(store, PM, eid, Metric.NET_LTV)
    third = svc.analyze_experiment(store, ADMIN, eid, Metric.NET_LTV)
    assert len({first.analysis_id, second.analysis_id, third.analysis_id}) == 3
    assert second.inputs_digest == first.inputs_digest == third.inputs_digest  # same inputs, same digest
    assert analyses(store)[first.analysis_id] == stored  # the first unchanged
    assert analyses(store)[second.analysis_id]["createdBy"] == "pm@company.com"


def test_contaminated_sandbox_and_fraud_users_are_excluded(store, eid):
    for i in range(4):  # recorded the way service/spillover.py records a contaminated CONTROL user
        store.db.collection("holdoutContaminations")[f"{eid}_c{i}"] = {
            "userId": f"c{i}", "experimentId": eid, "arm": "CONTROL", "channel": "referral", "fromUserId": "t0",
            "spilloverEventId": "e1", "contaminatedAt": T0}
    store.db.collection("fraudScores")["t100"] = {"userId": "t100", "maxScore": 0.97, "lastScore": 0.97,
                                                  "reasons": ["card_testing"], "signals": 1}
    store.db.collection("fraudScores")["t101"] = {"userId": "t101", "maxScore": 0.2, "lastScore": 0.2,
                                                  "reasons": [], "signals": 1}  # below the threshold: kept
    analysis = svc.analyze_experiment(store, ANALYST, eid, Metric.ARPU)
    by_type = {a.type: a for a in analysis.bias_adjustments}
    assert by_type["spillover"].by_arm == {"CONTROL": 4, "TREATMENT": 0}
    assert by_type["sandbox"].by_arm == {"CONTROL": 0, "TREATMENT": 3}
    assert by_type["fraud"].by_arm == {"CONTROL": 0, "TREATMENT": 1}
    assert analysis.sample_sizes == {"CONTROL": 146, "TREATMENT": 146}
    assert analyses(store)[analysis.analysis_id]["rawSampleSizes"] == {"CONTROL": 150, "TREATMENT": 150}


def test_an_experiment_without_data_is_a_valid_empty_analysis(store):
    eid = running(store, frozen_cohort(store).cohort_id, stages=[100]).experiment_id
    analysis = svc.analyze_experiment(store, ANALYST, eid, Metric.REFUND_RATE)
    assert analysis.sample_sizes == {"CONTROL": 0, "TREATMENT": 0} and analysis.data_quality == "INSUFFICIENT"
    assert analysis.analysis_id in analyses(store)

"""Request models and pure helpers of the lifecycle area: validation with field paths, rollout stages,
and the get_offer cache (TTL + version check) with a fake repository."""
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.api.callable import parse
from offerlab.api.experiments import CreateExperiment, UpdateExperiment
from offerlab.api.offers import GetOffer
from offerlab.api.rollouts import CreateRolloutPlan
from offerlab.domain.errors import InvalidArgument, NotFound
from offerlab.domain.types import ExperimentStatus, OfferType
from offerlab.store.documents import CohortScope
from offerlab.service.rollout_plans import DEFAULT_STAGES, normalise_stages
from offerlab.store import experiment_cache as cache

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def body(**over):
    b = {"name": "t", "hypothesis": {"statement": "s", "successCriteria": ["c"]},
         "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
         "guardrails": [{"kpiName": "R", "metric": "refund_rate", "maxThreshold": 0.1, "violationAction": "KILL"}],
         "holdoutCohortId": "c1", "treatmentPercentage": 50, "offerType": "PRICE_CHANGE", "offerConfig": {"p": 1},
         "plannedStartDate": "2026-01-01T00:00:00Z", "plannedEndDate": "2026-02-01T00:00:00Z",
         "approvers": ["CEO@Company.com"]}
    b.update(over)
    return b


def paths(model, data):
    with pytest.raises(InvalidArgument) as err:
        parse(model, data)
    return {f["path"] for f in err.value.details["fields"]}


def test_a_valid_create_normalises_emails():
    req = parse(CreateExperiment, body())
    assert req.approvers == ["ceo@company.com"] and req.control_config == {}


@pytest.mark.parametrize("over,path", [
    ({"treatmentPercentage": 0}, "treatmentPercentage"), ({"treatmentPercentage": 100}, "treatmentPercentage"),
    ({"treatmentPercentage": 12.345}, "treatmentPercentage"),
    ({"offerType": "FREE_MONEY"}, "offerType"), ({"approvers": []}, "approvers"),
    ({"approvers": ["a@b.co", "A@b.co"]}, "approvers"), ({"approvers": ["nobody"]}, "approvers.0"),
    ({"kpis": []}, "kpis"), ({"kpis": [{"name": "x", "type": "MAIN", "metric": "net_ltv", "direction": "UP"}]}, "kpis.0.type"),
    ({"guardrails": [{"kpiName": "R", "metric": "refund_rate", "violationAction": "KILL"}]}, "guardrails.0"),
    ({"plannedStartDate": "2026-01-01T00:00:00"}, "plannedStartDate"),
    ({"plannedEndDate": "2025-01-01T00:00:00Z"}, "(payload)"),
    ({"offerConfig": {"a": float("inf")}}, "offerConfig"),
    ({"hypothesis": {"statement": ""}}, "hypothesis.statement"),
])
def test_bad_fields_are_named(over, path):
    assert path in paths(CreateExperiment, body(**over))


def test_an_update_needs_a_field_and_refuses_unknown_ones():
    assert "(payload)" in paths(UpdateExperiment, {"experimentId": "e1"})
    assert "salt" in paths(UpdateExperiment, {"experimentId": "e1", "salt": "mine"})  # salts never change
    assert "status" in paths(UpdateExperiment, {"experimentId": "e1", "status": "RUNNING"})
    assert parse(UpdateExperiment, {"experimentId": "e1", "name": "n"}).model_fields_set == {"experiment_id", "name"}


def test_get_offer_ids_are_bounded():
    assert "userId" in paths(GetOffer, {"userId": "a/b"})
    assert parse(GetOffer, {}).user_id is None


def test_rollout_stages_default_and_override():
    stages = normalise_stages(None)
    assert [s.percentage for s in stages] == list(DEFAULT_STAGES)
    assert all(s.min_hours_at_stage == 24 and s.min_exposures_per_arm == 100 for s in stages)
    req = parse(CreateRolloutPlan, {"experimentId": "e", "stages": [1, {"percentage": 50, "minExposuresPerArm": 10}]})
    custom = normalise_stages(req.stages)
    assert [(s.percentage, s.min_exposures_per_arm) for s in custom] == [(1, 100), (50, 10)]
    assert [s.percentage for s in normalise_stages([50])] == [50]


@pytest.mark.parametrize("stages", [[5, 5], [10, 5], [0, 5], [50, 101]])
def test_rollout_stages_must_increase_within_0_100(stages):
    with pytest.raises(InvalidArgument):
        normalise_stages(stages)
    with pytest.raises(InvalidArgument):  # through the api: the model (range) or the service (order) refuses
        normalise_stages(parse(CreateRolloutPlan, {"experimentId": "e", "stages": stages}).stages)


class FakeExperiment:
    def __init__(self, version, status=ExperimentStatus.RUNNING, coverage=10.0):
        self.experiment_id, self.version, self.status, self.coverage = "e1", version, status, coverage
        self.salt, self.treatment_percentage, self.stage_index = "s", 50.0, 0
        self.offer_config, self.control_config = {"p": 2}, {"p": 1}
        self.holdout_cohort_id, self.started_at, self.created_at = "c1", NOW, NOW
        self.placement, self.offer_type, self.traffic_percentage = "default", OfferType.PROMO, 100.0
        self.traffic_segments, self.covering_cohort_ids, self.ship = [], ["c1"], None
        self.regions, self.audience = None, None
        self.planned_end_date = None


class FakeCohort:
    cohort_id, status, salt, percentage = "c1", "FROZEN", "cs", 10.0
    spillover_policy = {}
    scope = CohortScope()


def test_the_offer_cache_reads_once_per_ttl_and_keeps_an_unchanged_view(monkeypatch):
    reads = {"experiment": 0, "cohort": 0}
    current = {"doc": FakeExperiment(3)}
    clock = {"t": 0.0}

    def get_experiment(eid, transaction=None):
        reads["experiment"] += 1
        if eid != "e1":
            raise NotFound("No such experiment.")
        return current["doc"]

    def get_cohort(cid, transaction=None):
        reads["cohort"] += 1
        return FakeCohort()

    from offerlab.domain.types import CohortStatus
    FakeCohort.status = CohortStatus.FROZEN
    monkeypatch.setattr(cache.experiments_repo, "get_experiment", get_experiment)
    monkeypatch.setattr(cache.holdouts_repo, "get_cohort", get_cohort)
    monkeypatch.setattr(cache, "_views", cache._TtlCache(clock=lambda: clock["t"]))
    monkeypatch.setattr(cache, "_cohort_views", {})
    monkeypatch.setattr(cache.cohort_cache, "retired_ids", lambda: frozenset())
    for _ in range(100):
        view = cache.offer_view("e1")
    assert reads == {"experiment": 1, "cohort": 1} and view.coverage == 10.0 and view.holdout_salt == "cs"
    clock["t"] += cache.TTL_SECONDS + 0.1           # expired, same version: one read, same view object
    assert cache.offer_view("e1") is view and reads["experiment"] == 2
    current["doc"] = FakeExperiment(4, ExperimentStatus.PAUSED)
    assert cache.offer_view("e1").status is ExperimentStatus.RUNNING  # still within the TTL: stale by design
    clock["t"] += cache.TTL_SECONDS + 0.1
    assert cache.offer_view("e1").status is ExperimentStatus.PAUSED and reads["cohort"] == 1
    with pytest.raises(NotFound):
        cache.offer_view("missing")
    with pytest.raises(NotFound):  # the miss is cached too
        cache.offer_view("missing")
    assert reads["experiment"] == 4


def test_the_exposure_memo_is_a_bounded_lru():
    memo = cache.ExposureMemo(capacity=2)
    memo.remember("e", "a")
    memo.remember("e", "b")
    assert memo.seen("e", "a")  # a is now the most recent
    memo.remember("e", "c")
    assert memo.seen("e", "a") and memo.seen("e", "c") and not memo.seen("e", "b")

"""Streamed per-arm statistics (domain/aggregates.py) through the real ingestion and fraud use cases on the
in-memory store: equal to a full recompute from the users' totals under replays, duplicates, shuffles,
races between deliveries of one user, and exclusions arriving in any order; equal to the analysis path's
moments on the same users."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offerlab.domain.aggregates import SHARDS, max_relative_difference, shard_of
from offerlab.domain.metrics import Metric
from offerlab.service.analysis_source import moments_from_rows
from offerlab.service.analytics import AnalysisSettings, exclusion_flags as analysis_flags, AnalysisInputs
from offerlab.service.aggregation import spec_for
from offerlab.store.analysis_source import _row
from tests.unit.fakes import InMemoryStore
from tests.unit.monitoring_fixtures import (
    T0, event, experiment_doc, expose, fraud, ingest, put_experiment, signal, stats_of, streamed_vs_recomputed,
)

TOL = 1e-9


@pytest.fixture
def store():
    return InMemoryStore()


def users(n):
    return [(f"u{i:03d}", "TREATMENT" if i % 2 else "CONTROL") for i in range(n)]


def assert_exact(store, exp):
    streamed, recomputed = streamed_vs_recomputed(store, exp)
    worst, where = max_relative_difference(streamed, recomputed)
    assert worst <= TOL, (worst, where)
    return streamed


def test_zero_users_count_and_every_event_kind_streams_exactly(store):
    exp = put_experiment(store, experiment_doc())
    for uid, arm in users(10):
        expose(store, exp.experiment_id, uid, arm)
    for e in (event("u001", "purchase", 12.5), event("u001", "refund", 12.5), event("u002", "purchase", 3.0),
              event("u003", "trial_start"), event("u003", "trial_conversion"), event("u004", "cancellation"),
              event("u005", "purchase", 40.0, at=T0 - timedelta(days=3)),  # pre-exposure: the CUPED covariate
              event("u005", "renewal", 9.0)):
        assert ingest(store, e).status.value == "APPLIED"
    assert_exact(store, exp)
    stats = stats_of(store, exp)
    assert stats.exposures == {"CONTROL": 5, "TREATMENT": 5, "HOLDOUT": 0}
    assert stats.users == {"CONTROL": 2, "TREATMENT": 3, "HOLDOUT": 0} and stats.zero_users("CONTROL") == 3
    spec = spec_for(exp)
    arpu_t = stats.moments(spec, Metric.ARPU, "TREATMENT")
    assert (arpu_t.n, arpu_t.sum_y, arpu_t.sum_y2) == (5, 21.5, 12.5 ** 2 + 9.0 ** 2)
    assert arpu_t.sum_x == 40.0 and arpu_t.sum_xy == 40.0 * 9.0  # covariate of u005
    ltv_t = stats.moments(spec, Metric.NET_LTV, "TREATMENT")
    assert ltv_t.sum_y == 9.0
    refund = stats.moments(spec, Metric.REFUND_RATE, "TREATMENT")
    assert (refund.sum_y, refund.sum_x) == (1.0, 1.0)
    assert stats.documents <= 3 * SHARDS


def test_a_cap_fixed_before_launch_winsorizes_the_streamed_sums(store):
    exp = put_experiment(store, experiment_doc(metricCaps={"arpu": 50.0}))
    expose(store, exp.experiment_id, "whale", "TREATMENT")
    expose(store, exp.experiment_id, "minnow", "TREATMENT")
    ingest(store, event("whale", "purchase", 30.0))
    ingest(store, event("whale", "purchase", 5000.0))
    ingest(store, event("minnow", "purchase", 20.0))
    stats = stats_of(store, exp)
    spec = spec_for(exp)
    capped = stats.moments(spec, Metric.ARPU, "TREATMENT")
    assert (capped.sum_y, capped.sum_y2) == (70.0, 50.0 ** 2 + 20.0 ** 2)
    uncapped = stats.moments(spec, Metric.NET_LTV, "TREATMENT")  # no cap configured for net_ltv
    assert uncapped.sum_y == 5050.0
    assert_exact(store, exp)


@pytest.mark.parametrize("when", ["before_exposure", "before_events", "between_events", "after_events"])
def test_a_fraud_flag_moves_the_user_out_of_the_kept_sums_in_any_order(store, when):
    exp = put_experiment(store, experiment_doc())
    for uid, arm in users(4):
        if not (when == "before_exposure" and uid == "u001"):
            expose(store, exp.experiment_id, uid, arm)
    steps = [lambda: ingest(store, event("u001", "purchase", 10.0)), lambda: ingest(store, event("u001", "renewal", 5.0))]
    flag = lambda: signal(store, fraud("u001"), f"fraud-{when}")  # noqa: E731
    order = {"before_exposure": [flag], "before_events": [flag, *steps], "between_events": [steps[0], flag, steps[1]],
             "after_events": [*steps, flag]}[when]
    for step in order:
        step()
    if when == "before_exposure":
        expose(store, exp.experiment_id, "u001", "TREATMENT")
        for step in steps:
            step()
    ingest(store, event("u003", "purchase", 7.0))
    stats = stats_of(store, exp)
    spec = spec_for(exp)
    assert stats.exclusions["TREATMENT"]["fraud"] == 1
    kept = stats.moments(spec, Metric.ARPU, "TREATMENT")
    everyone = stats.moments(spec, Metric.ARPU, "TREATMENT", kept=False)
    assert (kept.n, kept.sum_y) == (1, 7.0) and (everyone.n, everyone.sum_y) == (2, 22.0)
    signal(store, fraud("u001"), f"fraud-{when}-again")  # a second signal changes nothing
    assert stats_of(store, exp) == stats
    assert_exact(store, exp)


def test_a_low_fraud_score_excludes_nobody(store):
    exp = put_experiment(store, experiment_doc())
    expose(store, exp.experiment_id, "u1", "CONTROL")
    signal(store, fraud("u1", score=0.3), "m1")
    ingest(store, event("u1", "purchase", 4.0))
    assert stats_of(store, exp).kept_users["CONTROL"] == 1


def test_derived_exclusions_follow_the_totals_and_a_duplicate_writes_nothing(store):
    exp = put_experiment(store, experiment_doc(offerType="PRICE_CHANGE"))
    for uid, arm in users(4):
        expose(store, exp.experiment_id, uid, arm)
    ingest(store, event("u000", "purchase", 3.0, sandbox=True))          # sandbox
    ingest(store, event("u001", "purchase", 3.0, region="KP"))           # embargoed region (default policy)
    sent = event("u002", "purchase", 8.0)
    assert ingest(store, sent).status.value == "APPLIED"
    before = store.db.snapshot()
    assert ingest(store, sent).status.value == "DUPLICATE"
    assert store.db.snapshot() == before
    stats = stats_of(store, exp)
    assert stats.exclusions["CONTROL"]["sandbox"] == 1 and stats.exclusions["TREATMENT"]["regional_policy"] == 1
    assert stats.kept_users == {"CONTROL": 1, "TREATMENT": 0, "HOLDOUT": 0}
    ingest(store, event("u001", "renewal", 1.0, region="DE"))            # the last region decides: back in
    assert stats_of(store, exp).kept_users["TREATMENT"] == 1
    assert_exact(store, exp)


def test_the_kept_streamed_moments_equal_the_analysis_paths_moments(store):
    exp = put_experiment(store, experiment_doc())
    rng = random.Random(3)
    for uid, arm in users(60):
        expose(store, exp.experiment_id, uid, arm)
        for _ in range(rng.randrange(0, 4)):
            kind = rng.choice(["purchase", "renewal", "refund", "trial_start", "trial_conversion", "cancellation"])
            ingest(store, event(uid, kind, round(rng.uniform(1, 90), 2) if kind in ("purchase", "renewal", "refund") else None))
    for uid in ("u004", "u011", "u020"):
        signal(store, fraud(uid), f"m-{uid}")
    spec = spec_for(exp)
    stats = stats_of(store, exp)
    totals = {v["userId"]: v for v in store.db.collection("userMetricTotals").values()}
    rows = [_row(uid, arm, totals.get(uid)) for uid, arm in users(60)]
    settings = AnalysisSettings()
    inputs = AnalysisInputs(exp, Metric.NET_LTV, rows, {u: 0.95 for u in ("u004", "u011", "u020")}, set(), settings)
    kept_rows = [r for r in rows if not any(analysis_flags(r, inputs).values())]
    for metric in Metric:
        expected = moments_from_rows(kept_rows, metric)
        for arm in ("CONTROL", "TREATMENT"):
            got, want = stats.moments(spec, metric, arm), expected[arm]
            assert got.n == want.n
            for field in ("sum_y", "sum_y2"):
                assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12, abs=1e-12)
            if metric in (Metric.REFUND_RATE, Metric.TRIAL_CONVERSION_RATE):
                for field in ("sum_x", "sum_x2", "sum_xy"):
                    assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12, abs=1e-12)


def test_shards_spread_users_and_one_user_always_hits_one_shard():
    counts = [0] * SHARDS
    for i in range(16_000):
        counts[shard_of(f"user-{i}")] += 1
    assert min(counts) > 800 and max(counts) < 1200
    assert len({shard_of("same-user") for _ in range(5)}) == 1


EVENT_KINDS = ["purchase", "renewal", "refund", "chargeback", "trial_start", "trial_conversion", "cancellation",
               "paywall_view"]


@st.composite
def streams(draw):
    n_users = draw(st.integers(2, 8))
    uids = [f"p{i}" for i in range(n_users)]
    events = []
    for _ in range(draw(st.integers(1, 30))):
        uid = draw(st.sampled_from(uids))
        kind = draw(st.sampled_from(EVENT_KINDS))
        value = draw(st.floats(0.01, 500, allow_nan=False)) if kind in ("purchase", "renewal", "refund", "chargeback") else None
        extra = {}
        if draw(st.booleans()) and draw(st.booleans()):
            extra["region"] = draw(st.sampled_from(["DE", "KP", "US"]))
        if draw(st.integers(0, 9)) == 0:
            extra["sandbox"] = True
        hours = draw(st.integers(-48, 200))
        events.append(("event", event(uid, kind, value, at=T0 + timedelta(hours=hours), **extra)))
    flagged = draw(st.lists(st.sampled_from(uids), max_size=3, unique=True))
    items = events + [("fraud", uid) for uid in flagged]
    duplicates = draw(st.lists(st.sampled_from(range(len(items))), max_size=10))
    items += [items[i] for i in duplicates]
    order = draw(st.permutations(range(len(items))))
    races = draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
    cap = draw(st.sampled_from([None, 25.0]))
    return uids, [items[i] for i in order], races, cap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_replayed_duplicated_shuffled_raced_streams_with_late_fraud_equal_a_full_recompute(case):
    uids, items, races, cap = case
    store = InMemoryStore()
    exp = put_experiment(store, experiment_doc(metricCaps={"arpu": cap} if cap else {}))
    for i, uid in enumerate(uids):
        expose(store, exp.experiment_id, uid, "TREATMENT" if i % 2 else "CONTROL")
    pending = [item for item in items if item[0] == "event"]
    for (kind, payload), race in zip(items, races):
        user = payload["userId"] if kind == "event" else payload
        same_user = [p for p in pending if p[1]["userId"] == user]
        if race and same_user:
            # another delivery of an event of the same user lands between this one's read and its commit
            other = same_user[-1]
            store.metric_totals.race = lambda other=other: ingest(store, other[1])
        if kind == "event":
            ingest(store, payload)
        else:
            signal(store, fraud(payload), f"fraud-{payload}")
        store.metric_totals.race = None
    assert_exact(store, exp)
    stats = stats_of(store, exp)
    flagged = {p for k, p in items if k == "fraud"}
    assert sum(stats.exclusions[a]["fraud"] for a in ("CONTROL", "TREATMENT")) == len(flagged)


def test_a_concurrent_event_of_the_same_user_makes_the_commit_retry_and_stays_exact(store):
    exp = put_experiment(store, experiment_doc())
    expose(store, exp.experiment_id, "u1", "TREATMENT")
    first, second = event("u1", "purchase", 10.0), event("u1", "purchase", 30.0)
    store.metric_totals.race = lambda: ingest(store, second)
    ingest(store, first)
    assert store.metric_totals.retries == 1
    arpu = stats_of(store, exp).moments(spec_for(exp), Metric.ARPU, "TREATMENT")
    assert (arpu.sum_y, arpu.sum_y2) == (40.0, 1600.0)  # (10 + 30)², not 10² + 30²
    assert_exact(store, exp)

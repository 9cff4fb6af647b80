"""Metric events (validation) and per-user totals (API.md §5, §7): domain/metrics.py, pure."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.domain.metrics import (
    METRIC_KINDS, MONEY_TYPES, Metric, MetricEventType, MetricKind, apply_event, empty_totals, epoch_micros,
    from_epoch_micros, last_event_at, metric_value, parse_metric_event,
)

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)


def _event(**over):
    base = {"eventId": "e1", "userId": "u1", "type": "purchase", "value": 9.99, "currency": "USD",
            "occurredAt": "2026-01-10T12:00:00Z"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_a_valid_event_parses_with_camel_case_fields():
    event = parse_metric_event(_event(experimentId="x1", region="EU", platform="ios", sandbox=True, extra="ignored"))
    assert (event.event_id, event.user_id, event.type, event.value) == ("e1", "u1", MetricEventType.PURCHASE, 9.99)
    assert event.occurred_at == T0 and event.experiment_id == "x1" and event.sandbox is True


@pytest.mark.parametrize("bad", [
    {"eventId": None}, {"userId": None}, {"eventId": ""}, {"userId": "a/b"},
    {"type": "upgrade"}, {"type": None},
    {"value": -1.0}, {"type": "refund", "value": -5},
    {"occurredAt": "yesterday"}, {"occurredAt": "2026-01-10T12:00:00"},  # no time zone
    {"occurredAt": 1736510400}, {"occurredAt": None},
    {"value": None},                     # a purchase without its amount
    {"value": float("nan")}, {"currency": "dollars"},
])
def test_malformed_events_are_rejected_with_a_reason(bad):
    with pytest.raises(ValueError) as err:
        parse_metric_event(_event(**bad))  # None: the field is left out
    assert str(err.value)


def test_a_non_object_is_rejected():
    for data in (None, [], "purchase", 3):
        with pytest.raises(ValueError):
            parse_metric_event(data)


def test_events_without_amounts_are_fine_for_non_money_types():
    for kind in ("trial_start", "trial_conversion", "cancellation", "paywall_view"):
        assert parse_metric_event(_event(type=kind, value=None)).value is None


def test_events_before_first_exposure_only_feed_the_pre_exposure_covariate():
    before = parse_metric_event(_event(occurredAt="2026-01-10T11:59:59Z"))
    totals = apply_event({}, before, T0)
    assert totals["counts"]["purchase"] == 0 and totals["amounts"]["purchase"] == 0.0
    assert totals["preExposure"] == {"purchaseCount": 1, "purchaseAmount": 9.99, "events": 1}
    at = parse_metric_event(_event(eventId="e2"))  # exactly at first exposure: counts (inclusive)
    totals = apply_event(totals, at, T0)
    assert totals["counts"]["purchase"] == 1 and totals["amounts"]["purchase"] == 9.99


def test_apply_event_does_not_mutate_its_input():
    start = empty_totals()
    apply_event(start, parse_metric_event(_event()), T0)
    assert start == empty_totals()


def test_labels_and_sandbox_are_tracked():
    t = apply_event({}, parse_metric_event(_event(region="EU", platform="ios", sandbox=True)), T0)
    t = apply_event(t, parse_metric_event(_event(eventId="e2", region="US", occurredAt="2026-01-11T00:00:00Z")), T0)
    assert (t["lastRegion"], t["lastPlatform"], t["sandbox"], t["sandboxEvents"]) == ("US", "ios", True, 1)
    assert last_event_at(t) == T0 + timedelta(hours=12)
    earlier = apply_event(t, parse_metric_event(_event(eventId="e3", occurredAt="2026-01-10T13:00:00Z")), T0)
    assert last_event_at(earlier) == T0 + timedelta(hours=12)  # a late delivery of an older event: the max stays


def _totals(**counts_and_amounts):
    t = empty_totals()
    for key, value in counts_and_amounts.items():
        kind, name = key.split("_", 1)
        t["counts" if kind == "n" else "amounts"][name] = value
    return t


def test_metric_definitions_of_api_md_section_7():
    t = _totals(n_purchase=2, a_purchase=20.0, a_renewal=10.0, n_refund=1, a_refund=5.0, a_chargeback=2.0,
                n_chargeback=1, n_trial_start=4, n_trial_conversion=1, n_cancellation=1)
    assert metric_value(t, Metric.NET_LTV) == (23.0, 1.0)
    assert metric_value(t, Metric.ARPU) == (30.0, 1.0)
    assert metric_value(t, Metric.CONVERSION_RATE) == (1.0, 1.0)
    assert metric_value(t, Metric.TRIAL_CONVERSION_RATE) == (1.0, 4.0)
    assert metric_value(t, Metric.CHURN_RATE) == (1.0, 1.0)
    assert metric_value(t, Metric.REFUND_RATE) == (2.0, 2.0)
    empty = empty_totals()
    assert metric_value(empty, Metric.CONVERSION_RATE) == (0.0, 1.0)
    assert metric_value(empty, Metric.REFUND_RATE) == (0.0, 0.0)
    assert set(METRIC_KINDS) == set(Metric) and METRIC_KINDS[Metric.REFUND_RATE] is MetricKind.RATIO


events = st.lists(st.tuples(st.sampled_from(list(MetricEventType)), st.integers(0, 100_000),
                            st.integers(-72, 72)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_totals_are_the_sums_of_post_exposure_events_in_any_order(items, rnd):
    parsed = [parse_metric_event(_event(eventId=f"e{i}", type=kind.value, value=cents / 100,
                                        occurredAt=(T0 + timedelta(hours=h)).isoformat()))
              for i, (kind, cents, h) in enumerate(items)]
    shuffled = parsed[:]
    rnd.shuffle(shuffled)
    a, b = empty_totals(), empty_totals()
    for e in parsed:
        a = apply_event(a, e, T0)
    for e in shuffled:
        b = apply_event(b, e, T0)
    after = [e for e in parsed if e.occurred_at >= T0]
    for kind in MetricEventType:
        expected = sum(1 for e in after if e.type is kind)
        assert a["counts"][kind.value] == b["counts"][kind.value] == expected
        if kind in MONEY_TYPES:
            total = sum(e.value for e in after if e.type is kind)
            assert a["amounts"][kind.value] == pytest.approx(total) == b["amounts"][kind.value]
    assert a["preExposure"]["events"] == len(parsed) - len(after)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(timezone.utc)))
def test_epoch_micros_round_trips_exactly(at):
    assert from_epoch_micros(epoch_micros(at)) == at
    assert epoch_micros(at) == (at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)  # exact


def test_a_seeded_last_event_timestamp_is_read_when_no_micros_were_written():
    assert last_event_at({"lastEventAt": T0}) == T0
    assert last_event_at({}) is None

"""The documented rules of domain/analysis_rules.py: bots, data quality, recommendation, health."""
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.domain import analysis_rules as r

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_a_user_with_300_paywall_views_is_a_bot_and_299_is_not():
    assert r.bot_reason({"paywall_view": 300}, T0, T0 + timedelta(days=30)) == "paywall_views"
    assert r.bot_reason({"paywall_view": 299}, T0, T0 + timedelta(days=30)) is None


def test_more_than_five_events_a_minute_over_thirty_events_is_abnormal():
    assert r.bot_reason({"paywall_view": 31}, T0, T0 + timedelta(minutes=6)) == "event_rate"  # 5.2/min
    assert r.bot_reason({"paywall_view": 30}, T0, T0 + timedelta(minutes=6)) is None        # 5.0/min
    assert r.bot_reason({"paywall_view": 29}, T0, T0 + timedelta(seconds=1)) is None        # too few events
    assert r.bot_reason({"purchase": 40}, None, None) is None                                # no times: no rate


@pytest.mark.parametrize("sizes, srm, diff, excluded, expected", [
    ({"CONTROL": 99, "TREATMENT": 5000}, 0.5, False, 0, "INSUFFICIENT"),
    ({"CONTROL": 5000, "TREATMENT": 5000}, 0.0001, False, 0, "LOW"),
    ({"CONTROL": 5000, "TREATMENT": 5000}, 0.5, True, 0, "LOW"),
    ({"CONTROL": 5000, "TREATMENT": 5000}, 0.5, False, 2000, "LOW"),
    ({"CONTROL": 500, "TREATMENT": 5000}, 0.5, False, 0, "MEDIUM"),
    ({"CONTROL": 5000, "TREATMENT": 5000}, 0.5, False, 500, "MEDIUM"),
    ({"CONTROL": 5000, "TREATMENT": 5000}, 0.5, False, 10, "HIGH"),
])
def test_data_quality_follows_the_documented_order(sizes, srm, diff, excluded, expected):
    quality = r.data_quality(sizes, srm, [], diff, excluded, 10_000)
    assert quality.level == expected
    assert (quality.reasons == ()) == (expected == "HIGH")


def test_a_high_severity_adjustment_makes_quality_medium_and_an_undefined_estimate_insufficient():
    sizes = {"CONTROL": 5000, "TREATMENT": 5000}
    assert r.data_quality(sizes, 0.5, [{"severity": "HIGH"}], False, 0, 10_000).level == "MEDIUM"
    assert r.data_quality(sizes, 0.5, [], False, 0, 10_000, estimate_defined=False).level == "INSUFFICIENT"


def test_recommendation_depends_on_quality_significance_and_direction():
    assert r.recommendation("INSUFFICIENT", 0.001, [1, 2], "INCREASE")[0] == "INSUFFICIENT_DATA"
    assert r.recommendation("LOW", 0.001, [1, 2], "INCREASE")[0] == "INVESTIGATE_DATA_QUALITY"
    assert r.recommendation("HIGH", 0.001, [1, 2], "INCREASE")[0] == "SHIP_TREATMENT"
    assert r.recommendation("HIGH", 0.001, [-2, -1], "INCREASE")[0] == "KEEP_CONTROL"
    assert r.recommendation("HIGH", 0.001, [-2, -1], "DECREASE")[0] == "SHIP_TREATMENT"
    assert r.recommendation("MEDIUM", 0.2, [-1, 2], "INCREASE")[0] == "NO_SIGNIFICANT_DIFFERENCE"
    assert r.recommendation("HIGH", None, [None, None], "INCREASE")[0] == "NO_SIGNIFICANT_DIFFERENCE"


def test_the_kpi_direction_overrides_the_metric_default():
    assert r.desired_direction("churn_rate", []) == "DECREASE"
    assert r.desired_direction("net_ltv", [{"metric": "net_ltv", "type": "PRIMARY", "direction": "DECREASE"}]) == "DECREASE"
    assert r.desired_direction("net_ltv", [{"metric": "net_ltv", "type": "PRIMARY", "direction": "MAINTAIN"}]) == "INCREASE"


def test_health_is_critical_on_a_breach_or_srm_and_warns_on_trends_and_small_arms():
    big = {"CONTROL": 500, "TREATMENT": 500}
    assert r.monitor_health(0.5, [], big, "RUNNING") == ("HEALTHY", [])
    assert r.monitor_health(0.5, [{"breached": True, "kpiName": "Refunds", "metric": "refund_rate"}], big, "RUNNING")[0] == "CRITICAL"
    assert r.monitor_health(0.0001, [], big, "RUNNING")[0] == "CRITICAL"
    assert r.monitor_health(0.5, [{"pointBeyondThreshold": True}], big, "RUNNING")[0] == "WARNING"
    assert r.monitor_health(0.5, [], {"CONTROL": 5, "TREATMENT": 500}, "RUNNING")[0] == "WARNING"
    assert r.monitor_health(0.5, [], {"CONTROL": 5, "TREATMENT": 500}, "COMPLETED") == ("HEALTHY", [])


def test_the_strongest_action_wins():
    assert r.strongest_action(["ALERT", "KILL", "PAUSE"]) == "KILL"
    assert r.strongest_action(["ALERT", "PAUSE"]) == "PAUSE"
    assert r.strongest_action([]) is None

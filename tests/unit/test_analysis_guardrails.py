"""evaluate_guardrails on per-arm sufficient statistics (no Firestore): which limit, which test, which action."""
from dataclasses import replace

import pytest

from offerlab.domain.metrics import Metric
from offerlab.domain.user_rows import UserRow, moments_from_rows
from offerlab.service.guardrails import evaluate_guardrails, guardrail_metrics
from tests.unit.test_analysis_compute import experiment


def refund_rows(n, refund_every, arm="TREATMENT"):
    """n buyers of one purchase each; every ``refund_every``-th refunds it."""
    return [UserRow(f"{arm}{i}", arm, counts={"purchase": 1, "refund": int(i % refund_every == 0)},
                    amounts={"purchase": 10.0}) for i in range(n)]


def check(rows, **guardrail):
    exp = experiment()
    exp = exp.model_copy(update={"guardrails": [exp.guardrails[0].model_copy(update=guardrail)]})
    moments = {m.value: moments_from_rows(rows, m) for m in guardrail_metrics(exp)}
    return evaluate_guardrails(exp, moments)


def test_a_refund_rate_far_above_its_max_threshold_is_breached_with_its_action():
    [result] = check(refund_rows(400, 5) + refund_rows(400, 50, "CONTROL"), max_threshold=0.05, violation_action="KILL")
    assert result.breached and result.action == "KILL" and result.direction == "max"
    assert abs(result.observed - 80 / 400) < 1e-12 and result.bound > 0.05
    assert result.violation() == {"kpiName": "Refunds", "metric": "refund_rate", "observed": result.observed,
                                  "threshold": 0.05, "action": "KILL"}


def test_a_rate_slightly_above_the_threshold_is_not_yet_credible_but_trends():
    [result] = check(refund_rows(400, 18), max_threshold=0.05)  # 23/400 = 5.75 %
    assert not result.breached and result.point_beyond_threshold and result.reason == "within"


def test_too_few_users_never_alarm_and_a_min_threshold_tests_the_lower_side():
    [small] = check(refund_rows(50, 2), max_threshold=0.05)
    assert not small.breached and small.reason == "insufficient_data"
    [low] = check(refund_rows(400, 100), max_threshold=None, min_threshold=0.2)  # 1 % refunds < 20 % minimum
    assert low.breached and low.direction == "min"


def test_a_guardrail_with_both_limits_is_two_one_sided_tests():
    results = check(refund_rows(400, 5), max_threshold=0.5, min_threshold=0.01)
    assert [r.direction for r in results] == ["max", "min"] and not any(r.breached for r in results)


def test_mean_metric_guardrails_use_the_treatment_mean():
    rows = [replace(r, amounts={"purchase": 1.0}) for r in refund_rows(400, 5)]
    exp = experiment()
    exp = exp.model_copy(update={"guardrails": [exp.guardrails[0].model_copy(update={
        "metric": "arpu", "max_threshold": None, "min_threshold": 5.0})]})
    [result] = evaluate_guardrails(exp, {"arpu": moments_from_rows(rows, Metric.ARPU)})
    assert result.observed == 1.0 and result.reason == "insufficient_data"  # zero variance: no information yet


def test_the_guardrail_monitor_may_pause_or_kill_and_nothing_else():
    from offerlab.domain.errors import PermissionDenied
    from offerlab.domain.lifecycle import Command, check_actor
    from offerlab.service.guardrails import monitor_actor

    actor = monitor_actor("guardrail_sweep 20261125T100000Z")
    assert actor.is_system and not actor.is_admin and actor.email is None
    for allowed in (Command.PAUSE, Command.KILL):
        check_actor(allowed, actor, author="pm@company.com", approvers=["ceo@company.com"])
    for refused in (Command.RESUME, Command.UPDATE, Command.APPROVE, Command.START, Command.COMPLETE):
        with pytest.raises(PermissionDenied):
            check_actor(refused, actor, author="pm@company.com", approvers=["ceo@company.com"])

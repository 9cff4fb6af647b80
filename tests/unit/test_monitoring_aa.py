"""A/A simulation of continuous monitoring THROUGH THE AGGREGATION PATH: every event goes through
domain/aggregates.plan_change (what ingestion commits), the shard increments are summed as Firestore's
``Increment`` would, and every 5 simulated minutes the guardrail decision of service/guardrails.py reads
``StreamedStatistics`` from the shards — the same code the sweep runs. Both arms draw from one distribution,
and every limit sits exactly at the truth (the hardest null): a relative guardrail at 0.01 %, a MAINTAIN
GUARDRAIL KPI at threshold 0, an absolute limit at the true rate. The share of experiments that EVER alarm
must stay at or below alpha (docs/monitoring.md quotes the figure)."""
from __future__ import annotations

import math
import random
from datetime import timedelta

from offerlab.domain import metrics as rules
from offerlab.domain.aggregates import StreamedStatistics, UserChange, plan_change
from offerlab.service.aggregation import spec_for
from offerlab.service.guardrails import GUARDRAIL_ALPHA, evaluate_guardrails, guardrail_metrics
from tests.unit.monitoring_fixtures import T0, event, experiment_doc

EXPERIMENTS = 100
USERS = 300                    # per experiment, arriving over the window
HOURS = 12
LOOK_MINUTES = 5               # the guardrail sweep's period
PAY, CHURN = 0.4, 0.3


def aa_experiment():
    return experiment_doc(
        kpis=[{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"},
              {"name": "Churn", "type": "GUARDRAIL", "metric": "churn_rate", "threshold": 0.0, "direction": "MAINTAIN"}],
        guardrails=[{"kpiName": "ARPU", "metric": "arpu", "maxRelativeDelta": 0.01, "violationAction": "KILL"},
                    {"kpiName": "Conversion", "metric": "conversion_rate", "maxThreshold": PAY, "violationAction": "PAUSE"}],
        metricCaps={"arpu": 200.0})


def _increment(doc, flat):
    for path, amount in flat.items():
        *parents, leaf = path.split(".")
        node = doc
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = node.get(leaf, 0) + amount


def simulate(rng: random.Random, exp, spec) -> tuple[bool, int]:
    """(ever alarmed, looks taken) for one A/A experiment."""
    arrivals = sorted(rng.uniform(0, HOURS * 60) for _ in range(USERS))
    timeline = []
    for i, minute in enumerate(arrivals):
        uid, arm = f"u{i}", "TREATMENT" if rng.random() < 0.5 else "CONTROL"
        timeline.append((minute, "expose", uid, arm, None))
        if rng.random() < PAY:
            amount = round(math.exp(rng.gauss(math.log(30), 1.0)), 2)
            timeline.append((minute + rng.uniform(0, 60), "purchase", uid, arm, amount))
        if rng.random() < CHURN:
            timeline.append((minute + rng.uniform(0, 120), "cancellation", uid, arm, None))
    timeline.sort(key=lambda t: t[0])
    shards: dict[str, dict] = {}
    totals: dict[str, dict] = {}
    looks, step = 0, 0
    metrics = guardrail_metrics(exp)
    for look_minute in range(LOOK_MINUTES, HOURS * 60 + 121, LOOK_MINUTES):
        while step < len(timeline) and timeline[step][0] <= look_minute:
            minute, kind, uid, arm, amount = timeline[step]
            step += 1
            if kind == "expose":
                _increment(shards.setdefault(f"{arm}", {"arm": arm}), {"exposures": 1})
                continue
            at = T0 + timedelta(minutes=minute)
            parsed = rules.parse_metric_event(event(uid, kind, amount, at=at))
            change = UserChange(exp.experiment_id, uid, arm, {"arm": arm, "firstExposedAt": T0, "userId": uid},
                                rules.event_delta(parsed, T0), spec=spec)
            planned = plan_change(change, totals.get(uid))
            totals[uid] = planned.doc
            _increment(shards.setdefault(arm, {"arm": arm}), planned.increments)
        looks += 1
        stats = StreamedStatistics.from_shards(shards.values())
        checks = evaluate_guardrails(exp, stats.arm_moments(spec, metrics), spec, bounds=False)
        if any(c.breached for c in checks):
            return True, looks
    return False, looks


def test_continuous_monitoring_holds_alpha_in_an_aa_simulation():
    rng = random.Random(20261201)
    exp = aa_experiment()
    spec = spec_for(exp)
    alarms, looks = 0, 0
    for _ in range(EXPERIMENTS):
        alarmed, taken = simulate(rng, exp, spec)
        alarms += alarmed
        looks = max(looks, taken)
    rate = alarms / EXPERIMENTS
    print(f"A/A: {alarms}/{EXPERIMENTS} experiments ever alarmed over {looks} looks (every {LOOK_MINUTES} min)")
    assert looks >= HOURS * 60 // LOOK_MINUTES
    assert rate <= GUARDRAIL_ALPHA, rate


def test_the_same_path_does_alarm_when_the_treatment_is_worse():
    """Power check of the same path: treatment churns 3x as often; the MAINTAIN KPI must alarm."""
    rng = random.Random(7)
    exp = aa_experiment()
    spec = spec_for(exp)
    hits = 0
    for _ in range(10):
        shards: dict[str, dict] = {}
        totals: dict[str, dict] = {}
        for i in range(600):
            uid, arm = f"u{i}", "TREATMENT" if i % 2 else "CONTROL"
            _increment(shards.setdefault(arm, {"arm": arm}), {"exposures": 1})
            if rng.random() < (0.6 if arm == "TREATMENT" else 0.2):
                parsed = rules.parse_metric_event(event(uid, "cancellation"))
                planned = plan_change(UserChange(exp.experiment_id, uid, arm, {"arm": arm, "firstExposedAt": T0},
                                                 rules.event_delta(parsed, T0), spec=spec), totals.get(uid))
                totals[uid] = planned.doc
                _increment(shards[arm], planned.increments)
        stats = StreamedStatistics.from_shards(shards.values())
        checks = evaluate_guardrails(exp, stats.arm_moments(spec, guardrail_metrics(exp)), spec)
        hits += any(c.breached and c.kpi_name == "Churn" for c in checks)
    assert hits == 10

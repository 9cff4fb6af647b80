"""How long must this test run? The primary KPI's power plan (stats/planning.py), at creation and live.

* At creation (and on every edit before the start) from the definition: the PRIMARY KPI's
  ``baselineValue`` → ``targetValue``, the expected traffic ``expectedDailyUsers`` and, for a mean or ratio
  metric, ``primaryMetricStdDev`` (the per-user σ, e.g. from last month's users); the plan is stored on the
  experiment (``planning``) and the launch checklist shows it as a WARNING item that never blocks.
* Live, in ``monitor_experiment``: the same plan from what was observed — CONTROL + TREATMENT exposures per
  day since the start, the CONTROL arm's streamed σ of the primary metric (kept users), the users already
  enrolled, and the days left to ``plannedEndDate``.

Both give power at the planned end (fixed horizon and always-valid), the minimum detectable effect there,
and the days of traffic still needed to reach 80 % power. A plan that cannot be computed says why
(``available: false, reason``) instead of inventing inputs.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind
from offerlab.domain.types import KpiType
from offerlab.stats.planning import plan_power, power_check
from offerlab.store.documents import Kpi, OfferExperiment

_KIND = {MetricKind.MEAN: "mean", MetricKind.PROPORTION: "proportion", MetricKind.RATIO: "ratio"}
SECONDS_PER_DAY = 86_400.0


def primary_kpi(experiment: OfferExperiment) -> Kpi | None:
    return next((k for k in experiment.kpis if k.type == KpiType.PRIMARY.value), None)


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def _plan(experiment: OfferExperiment, *, users_per_day: float, planned_days: float, sd: float | None,
          enrolled: tuple[float, float] = (0.0, 0.0), source: str) -> dict[str, Any]:
    kpi = primary_kpi(experiment)
    if kpi is None or kpi.metric not in Metric._value2member_map_:
        return _unavailable("no PRIMARY KPI")
    if kpi.baseline_value is None or kpi.target_value is None:
        return _unavailable("the PRIMARY KPI needs baselineValue and targetValue")
    if kpi.baseline_value == kpi.target_value:
        return _unavailable("targetValue equals baselineValue: there is no effect to detect")
    kind = _KIND[METRIC_KINDS[Metric(kpi.metric)]]
    if kind == "proportion" and not (0 < kpi.baseline_value < 1 and 0 < kpi.target_value < 1):
        return _unavailable("a proportion's baselineValue and targetValue must lie in (0, 1)")
    if kind != "proportion" and not (sd is not None and sd > 0 and math.isfinite(sd)):
        return _unavailable("a mean or ratio KPI needs its per-user standard deviation"
                            + (" (primaryMetricStdDev)" if source == "definition" else " (no data yet)"))
    plan = plan_power(float(kpi.baseline_value), float(kpi.target_value), kind=kind, users_per_day=users_per_day,
                      treatment_share=experiment.treatment_percentage / 100.0, planned_days=max(planned_days, 0.0),
                      sd=sd if kind != "proportion" else None, enrolled_control=enrolled[0],
                      enrolled_treatment=enrolled[1])
    return {"available": True, "source": source, "kpi": kpi.name, "metric": kpi.metric, "kind": kind,
            "usersPerDay": users_per_day, "plannedDays": planned_days, "stdDev": sd if kind != "proportion" else None,
            **plan.to_dict(), "check": power_check(plan)}


def planned_by_definition(experiment: OfferExperiment) -> dict[str, Any]:
    """The plan from the definition alone (creation, edits, the launch checklist)."""
    if experiment.expected_daily_users is None:
        return _unavailable("expectedDailyUsers is not set: the plan needs the expected traffic")
    days = (experiment.planned_end_date - experiment.planned_start_date).total_seconds() / SECONDS_PER_DAY
    return _plan(experiment, users_per_day=float(experiment.expected_daily_users), planned_days=days,
                 sd=experiment.primary_metric_std_dev, source="definition")


def planned_by_observation(experiment: OfferExperiment, exposures: dict[str, int], control_sd: float | None,
                           now: datetime) -> dict[str, Any]:
    """The plan from what was observed since the start (monitor_experiment)."""
    if experiment.started_at is None:
        return planned_by_definition(experiment)
    elapsed_days = (now - experiment.started_at).total_seconds() / SECONDS_PER_DAY
    enrolled = (float(exposures.get("CONTROL", 0)), float(exposures.get("TREATMENT", 0)))
    if elapsed_days <= 0 or sum(enrolled) == 0:
        return _unavailable("no exposures yet: the observed rate is unknown")
    left = (experiment.planned_end_date - now).total_seconds() / SECONDS_PER_DAY
    return _plan(experiment, users_per_day=sum(enrolled) / elapsed_days, planned_days=max(left, 0.0),
                 sd=control_sd, enrolled=enrolled, source="observed")

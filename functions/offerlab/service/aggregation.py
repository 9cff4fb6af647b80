"""The streamed per-arm statistics of an experiment (domain/aggregates.py): what it streams, reading its
shards, and moving users out of the kept sums when an exclusion becomes known.

Monitoring (check_guardrails, monitor_experiment, the guardrail sweep, the rollout gates, kpi_snapshot)
reads ``streamed(store, experiment)``: one query over at most 3 × SHARDS shard documents, whatever the
number of enrolled users.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from offerlab.domain.aggregates import AggregateSpec, StreamedStatistics, UserChange, make_spec
from offerlab.domain.clock import utcnow
from offerlab.service.analytics import AnalysisSettings, settings_from_env
from offerlab.service.ports import Store
from offerlab.store.documents import OfferExperiment

log = logging.getLogger("offerlab.aggregation")


def spec_for(experiment: OfferExperiment, settings: AnalysisSettings | None = None) -> AggregateSpec:
    """What ``experiment`` streams: all six metrics, its caps (``metricCaps``), the exclusion settings."""
    settings = settings or settings_from_env()
    baselines: dict[str, float] = {}
    for kpi in sorted(experiment.kpis, key=lambda k: {"PRIMARY": 0, "SECONDARY": 1}.get(k.type, 2)):
        if kpi.baseline_value is not None:
            baselines.setdefault(kpi.metric, float(kpi.baseline_value))
    return make_spec(experiment.experiment_id, experiment.offer_type, experiment.holdout_cohort_id,
                     experiment.metric_caps or {}, settings.fraud_threshold, settings.policy, baselines)


@dataclass(frozen=True)
class Streamed:
    spec: AggregateSpec
    stats: StreamedStatistics


def streamed(store: Store, experiment: OfferExperiment, settings: AnalysisSettings | None = None) -> Streamed:
    """The experiment's shard sums (a bounded read)."""
    return Streamed(spec_for(experiment, settings), StreamedStatistics.from_shards(store.aggregates.read(
        experiment.experiment_id)))


def exclude_user(store: Store, user_id: str, reason: str, experiment_ids: Iterable[str] | None = None,
                 *, cohort_id: str | None = None) -> int:
    """Move ``user_id`` out of the kept sums of the experiments they were exposed to (all of them, or
    ``experiment_ids``, or those whose holdout cohort is ``cohort_id``) for ``reason`` (fraud, spillover).

    Idempotent: a flag set before changes nothing, so every delivery of a signal may call this (a
    redelivered signal then repairs a first delivery that failed half-way). Returns how many
    experiments the user was exposed to among those asked for."""
    wanted = set(experiment_ids) if experiment_ids is not None else None
    changes = []
    for exposure in store.exposures.of_user(user_id):
        if wanted is not None and exposure.experiment_id not in wanted:
            continue
        try:
            experiment = store.definitions.get(exposure.experiment_id)
        except Exception:  # noqa: BLE001 - an exposure of a deleted experiment: nothing streams
            log.warning("exposure of unknown experiment %s", exposure.experiment_id)
            continue
        if cohort_id is not None and experiment.holdout_cohort_id != cohort_id:
            continue
        changes.append(UserChange(
            experiment_id=exposure.experiment_id, user_id=user_id, arm=exposure.arm,
            identity={"experimentId": exposure.experiment_id, "userId": user_id, "arm": exposure.arm,
                      "firstExposedAt": exposure.first_exposed_at, "updatedAt": utcnow()},
            flag=reason, spec=spec_for(experiment)))
    if changes:
        store.metric_totals.apply_flags(changes)
    return len(changes)

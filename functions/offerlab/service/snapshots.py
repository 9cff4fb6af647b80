"""kpi_snapshot (hourly, API.md §6): per-arm sufficient statistics of every metric, per experiment.

``experimentSnapshots/{experimentId}_{tickId}``: for each metric of API.md §7 and each arm, the
``MomentStats`` sums (n, Σy, Σy², and for ratio metrics Σx, Σx², Σxy with x the denominator), plus the
exposures per arm. Sums are what later analyses and dashboards combine (a difference of two snapshots
is the window between them). Created once per tick (``create``): a tick delivered twice, or the worker's
health-probe run, writes nothing twice. One experiment failing is logged and does not stop the others.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from offerlab.domain.metrics import Metric
from offerlab.domain.types import ExperimentStatus
from offerlab.service.analysis_source import AnalysisSource, FirestoreAnalysisSource
from offerlab.store import experiments as experiments_repo
from offerlab.store import snapshots as repo
from offerlab.store.documents import ExperimentSnapshot, OfferExperiment

log = logging.getLogger("offerlab.snapshots")

SNAPSHOT_STATUSES = (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)


def tick_id(at: datetime) -> str:
    """The tick's identity: its schedule time to the second, UTC (``20261125T140000Z``)."""
    return at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class SnapshotReport:
    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def snapshot_of(experiment: OfferExperiment, at: datetime, source: AnalysisSource) -> ExperimentSnapshot:
    moments = source.arm_moments(experiment, list(Metric))
    return ExperimentSnapshot(
        experiment_id=experiment.experiment_id, taken_at=at, exposures=source.exposures(experiment),
        metrics={metric: {arm: stats.to_dict() for arm, stats in by_arm.items()} for metric, by_arm in moments.items()},
        tick_id=tick_id(at), status=experiment.status.value, coverage=experiment.coverage,
    )


def kpi_snapshot(at: datetime, source: AnalysisSource | None = None) -> SnapshotReport:
    report = SnapshotReport()
    ids = experiments_repo.ids_with_status([s.value for s in SNAPSHOT_STATUSES])
    tick = tick_id(at)
    for experiment_id in ids:
        try:
            if repo.get_snapshot(experiment_id, tick) is not None:
                report.existing.append(experiment_id)
                continue
            experiment = experiments_repo.get_experiment(experiment_id)
            snapshot = snapshot_of(experiment, at, source or FirestoreAnalysisSource())
            (report.written if repo.create_snapshot(tick, snapshot) else report.existing).append(experiment_id)
        except Exception:  # one experiment's failure must not block the others' snapshots
            log.exception("kpi snapshot of %s at %s failed", experiment_id, tick)
            report.failed.append(experiment_id)
    return report

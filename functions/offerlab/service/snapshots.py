"""kpi_snapshot (hourly, API.md §6): per-arm sufficient statistics of every metric, per experiment.

``experimentSnapshots/{experimentId}_{tickId}``: for each metric of API.md §7 and each arm, the
``MomentStats`` sums of the kept users (n, Σy, Σy², Σx, Σx², Σxy with x the ratio denominator or the CUPED
covariate), read from the streamed shards (service/aggregation.py: a bounded read), plus the exposures per
arm. Sums are what later analyses and dashboards combine (a difference of two snapshots
is the window between them). The hourly tick fans out one message per experiment (topic ``kpi-snapshots``,
handler ``on_kpi_snapshot``), so one experiment failing or slow never delays the others. Created once per
tick (``create``): a tick delivered twice, or the worker's health-probe run, writes nothing twice.
"""
from __future__ import annotations

import enum
import logging
from datetime import datetime
from typing import Any

from offerlab.domain.errors import NotFound
from offerlab.domain.fanout import parse_check_message, tick_id, tick_stamp
from offerlab.domain.metrics import Metric
from offerlab.domain.types import ExperimentStatus
from offerlab.service import aggregation
from offerlab.service.aggregation import Streamed
from offerlab.service.ports import Store
from offerlab.store.documents import ExperimentSnapshot, OfferExperiment

log = logging.getLogger("offerlab.snapshots")

SNAPSHOT_STATUSES = (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)
SNAPSHOT_TOPIC = "kpi-snapshots"


def snapshot_of(experiment: OfferExperiment, at: datetime, data: Streamed) -> ExperimentSnapshot:
    """The streamed sums of the kept users at ``at`` (a bounded read: service/aggregation.py)."""
    moments = data.stats.arm_moments(data.spec, list(Metric))
    return ExperimentSnapshot(
        experiment_id=experiment.experiment_id, taken_at=at, exposures=dict(data.stats.exposures),
        metrics={metric: {arm: stats.to_dict() for arm, stats in by_arm.items()} for metric, by_arm in moments.items()},
        tick_id=tick_id(at), status=experiment.status.value, coverage=experiment.coverage,
    )


def kpi_snapshot(store: Store, at: datetime) -> int:
    """The hourly tick: publish one ``{experimentId, tick}`` request per RUNNING or PAUSED experiment to
    ``kpi-snapshots`` (``on_kpi_snapshot`` takes each in parallel); returns how many were published.

    One invocation reading every experiment's totals took minutes once a few hundred experiments ran
    (and a slow one delayed all the others); the fan-out keeps each unit of work to one experiment, like
    the two sweeps (service/sweeps.py)."""
    ids = store.experiments.ids_with_status(SNAPSHOT_STATUSES)
    if ids:
        stamp = tick_stamp(at)
        store.messages.publish_many(SNAPSHOT_TOPIC, [{"experimentId": i, "tick": stamp} for i in ids])
    return len(ids)


def take_snapshot(store: Store, experiment_id: str, at: datetime) -> str:
    """Write the experiment's snapshot for the tick ``at`` once: ``WRITTEN``, ``EXISTING`` (a tick delivered
    twice) or ``SKIPPED`` (the experiment is gone or no longer RUNNING/PAUSED)."""
    tick = tick_id(at)
    if store.snapshots.exists(experiment_id, tick):
        return SnapshotOutcome.EXISTING
    try:
        experiment = store.experiments.get(experiment_id)
    except NotFound:
        return SnapshotOutcome.SKIPPED
    if experiment.status not in SNAPSHOT_STATUSES:
        return SnapshotOutcome.SKIPPED
    snapshot = snapshot_of(experiment, at, aggregation.streamed(store, experiment))
    return SnapshotOutcome.WRITTEN if store.snapshots.create(tick, snapshot) else SnapshotOutcome.EXISTING


def handle_snapshot_request(store: Store, data: Any) -> str:
    """One message of ``kpi-snapshots``; raises ``ValueError`` for a message that can never succeed."""
    experiment_id, at = parse_check_message(data)
    return take_snapshot(store, experiment_id, at)


class SnapshotOutcome(str, enum.Enum):
    WRITTEN = "WRITTEN"
    EXISTING = "EXISTING"  # a tick delivered twice: written once
    SKIPPED = "SKIPPED"    # the experiment is gone or no longer RUNNING/PAUSED

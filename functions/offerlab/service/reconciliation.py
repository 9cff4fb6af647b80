"""aggregate_reconciliation (daily): recompute a sample of experiments' streamed sums from per-user data and
raise an alert when they drift beyond floating-point error.

    aggregate_reconciliation (scheduled, daily; now = the tick's time)
        → publish {experimentId, tick} to ``aggregate-reconciliations`` for a sample of the RUNNING/PAUSED
          experiments (``SAMPLE_SIZE``, rotating by day so every experiment is checked regularly)
    on_aggregate_reconciliation (one delivery per experiment)
        → reconcile: every user's totals in pages (memory: one page and the running sums), the shards and
          the exposure counts, ALL read at one ``read_time`` a few seconds in the past

One read time makes the comparison a consistent snapshot without stopping ingestion: Firestore serves any
version of the last hour (``read_time`` on queries and batched gets), so the scanned totals and the shard
sums describe the same instant, and any difference is drift, not a race.

The tolerance is floating-point error: the shard sums add per-user deltas in another order than the
recompute, so they agree to a few ulps of the largest partial sums; ``DRIFT_TOLERANCE`` = 1e-9 relative is
far above that and far below any real loss or double count (one user's terms move a sum by ~1/n of it).
"""
from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from offerlab.domain.aggregates import ARMS, StreamedStatistics, max_relative_difference, streamed_fields, user_terms
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import NotFound
from offerlab.domain.fanout import parse_check_message, tick_id, tick_stamp
from offerlab.domain.types import ExperimentStatus
from offerlab.service.aggregation import spec_for
from offerlab.service.ports import Store, UnitOfWork

log = logging.getLogger("offerlab.reconciliation")

TOPIC = "aggregate-reconciliations"
SCOPE = "aggregate-reconciliation"
ALERT_TYPE = "AGGREGATE_DRIFT"
SAMPLE_SIZE = 25
DRIFT_TOLERANCE = 1e-9
SNAPSHOT_LAG = timedelta(seconds=5)  # read a moment in the past: every commit before it is visible
RECONCILED_STATUSES = (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)


class Verdict(str, enum.Enum):
    CONSISTENT = "CONSISTENT"
    DRIFT = "DRIFT"                # beyond floating-point error: an alert is raised
    SKIPPED = "SKIPPED"            # gone, or no longer running


@dataclass(frozen=True)
class Reconciliation:
    verdict: Verdict
    max_relative_difference: float = 0.0
    where: str | None = None
    users: int = 0
    exposures_streamed: dict[str, int] = field(default_factory=dict)
    exposures_counted: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "maxRelativeDifference": self.max_relative_difference,
                "where": self.where, "users": self.users, "exposuresStreamed": self.exposures_streamed,
                "exposuresCounted": self.exposures_counted}


def sample(ids: list[str], at: datetime, size: int = SAMPLE_SIZE) -> list[str]:
    """Up to ``size`` ids, a different slice each day: ordered by a hash of (id, day)."""
    day = at.strftime("%Y%m%d")
    return sorted(ids, key=lambda i: hashlib.sha256(f"{day}:{i}".encode()).digest())[:size]


def aggregate_reconciliation(store: Store, at: datetime) -> int:
    """The daily tick: one ``{experimentId, tick}`` message per sampled experiment; returns how many."""
    chosen = sample(store.experiments.ids_with_status(RECONCILED_STATUSES), at)
    if chosen:
        stamp = tick_stamp(at)
        store.messages.publish_many(TOPIC, [{"experimentId": i, "tick": stamp} for i in chosen])
    return len(chosen)


def reconcile(store: Store, experiment_id: str, at: datetime, *, page_size: int = 1000,
              read_time: datetime | None = None) -> Reconciliation:
    """Compare the experiment's shards with a recompute from its users' totals, both as of ``read_time``
    (default: a few seconds ago, to a whole second)."""
    try:
        experiment = store.experiments.get(experiment_id)
    except NotFound:
        return Reconciliation(Verdict.SKIPPED)
    if experiment.status not in RECONCILED_STATUSES:
        return Reconciliation(Verdict.SKIPPED)
    spec = spec_for(experiment)
    snapshot = read_time or (utcnow() - SNAPSHOT_LAG).replace(microsecond=0)
    recomputed: dict[str, dict[str, float]] = {arm: {} for arm in ARMS}
    scales: dict[str, dict[str, float]] = {arm: {} for arm in ARMS}
    users = 0
    for page in store.analysis_source().totals_pages(experiment, page_size, read_time=snapshot):
        for _user, arm, totals in page:
            users += 1
            acc, size = recomputed.setdefault(arm, {}), scales.setdefault(arm, {})
            for key, value in user_terms(totals, spec).items():
                acc[key] = acc.get(key, 0.0) + value
                size[key] = size.get(key, 0.0) + abs(value)
    shards = store.aggregates.read(experiment_id, read_time=snapshot)
    counted = store.exposures.count_by_arm(experiment_id, read_time=snapshot)
    worst, where = max_relative_difference(streamed_fields(shards), recomputed, scales)
    streamed_exposures = StreamedStatistics.from_shards(shards).exposures
    counted = {arm: int(counted.get(arm, 0)) for arm in ARMS}
    if streamed_exposures != counted:
        worst, where = max(worst, 1.0), "exposures"
    verdict = Verdict.DRIFT if worst > DRIFT_TOLERANCE else Verdict.CONSISTENT
    return Reconciliation(verdict, worst, where, users, dict(streamed_exposures), counted)


def handle_reconciliation_request(store: Store, data: Any) -> Reconciliation:
    """One message of ``aggregate-reconciliations``; raises ``ValueError`` for one that can never succeed.
    A drift raises ``experimentAlerts/aggregate_drift_{experimentId}_{tickId}`` once per tick."""
    experiment_id, at = parse_check_message(data)
    result = reconcile(store, experiment_id, at)
    if result.verdict is Verdict.DRIFT:
        raise_drift_alert(store, experiment_id, at, result)
    log.info("reconciliation %s %s: %s", experiment_id, tick_id(at), result.as_dict())
    return result


def raise_drift_alert(store: Store, experiment_id: str, at: datetime, result: Reconciliation) -> bool:
    alert = f"aggregate_drift_{experiment_id}_{tick_id(at)}"

    def effect(uow: UnitOfWork) -> None:
        uow.alerts.create(alert, {
            "alertId": alert, "type": ALERT_TYPE, "severity": "CRITICAL", "experimentId": experiment_id,
            "chainId": experiment_id, "reason": (f"The streamed statistics drifted from a recompute by "
                                                 f"{result.max_relative_difference:.3g} (at {result.where})."),
            "reconciliation": result.as_dict(), "actor": "aggregate-reconciliation", "detectedAt": at,
            "raisedAt": at, "acknowledged": False,
        })

    return store.apply_once(SCOPE, f"{experiment_id}:{tick_id(at)}", effect)

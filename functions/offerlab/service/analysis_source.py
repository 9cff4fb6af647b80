"""Where analyses read their data: ONE interface, ``AnalysisSource`` (issue 6, "scale path").

An analysis needs, per arm, sufficient statistics (n, Σy, Σy², Σx, Σx², Σxy; stats/sufficient.py) and,
only where a correction must look at individual users (exclusions, winsorizing), per-user rows. Guardrail
checks and KPI snapshots use ``arm_moments`` alone; ``analyze_experiment`` uses ``user_rows`` plus the
per-user facts the exclusions need (fraud scores, contaminated users).

``FirestoreAnalysisSource`` (the default) streams ``experimentExposures`` and ``userMetricTotals`` of the
experiment: every exposed user counts, a user without a totals document (no event yet) is a row of zeros.
A BigQuery source (a later issue; docs/analytics.md) implements the same methods: ``arm_moments`` becomes
one ``GROUP BY arm`` query computing the sums in SQL, and ``user_rows`` is only needed for the users a
correction touches plus the tail above the winsorizing cap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Protocol

from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind, last_event_at, metric_value
from offerlab.stats.sufficient import MomentStats
from offerlab.store import analyses as repo
from offerlab.store import exposures as exposures_repo
from offerlab.store.documents import OfferExperiment

ARMS = ("CONTROL", "TREATMENT")


@dataclass(frozen=True, slots=True)
class UserRow:
    """One exposed user's totals over the experiment window (zeros when no event arrived yet)."""

    user_id: str
    arm: str
    counts: Mapping[str, int] = field(default_factory=dict)
    amounts: Mapping[str, float] = field(default_factory=dict)
    pre_exposure: Mapping[str, float] = field(default_factory=dict)
    sandbox: bool = False
    region: str | None = None
    first_exposed_at: datetime | None = None
    last_event_at: datetime | None = None

    def value(self, metric: Metric) -> tuple[float, float]:
        """(numerator, denominator) of ``metric`` for this user (domain/metrics.py, API.md §7)."""
        return metric_value({"counts": self.counts, "amounts": self.amounts}, metric)

    def covariate(self) -> float:
        """CUPED covariate: purchase amount before first exposure (Deng et al. 2013)."""
        return float(self.pre_exposure.get("purchaseAmount", 0.0) or 0.0)


class AnalysisSource(Protocol):
    """What an analysis reads. Implementations: Firestore (default); BigQuery (later, docs/analytics.md)."""

    def arm_moments(self, experiment: OfferExperiment, metrics: Iterable[Metric]) -> dict[str, dict[str, MomentStats]]:
        """{metric: {arm: MomentStats}} over CONTROL and TREATMENT; x = ratio denominator for ratio metrics."""

    def exposures(self, experiment: OfferExperiment) -> dict[str, int]:
        """Exposed users per arm: CONTROL, TREATMENT, HOLDOUT."""

    def user_rows(self, experiment: OfferExperiment) -> list[UserRow]:
        """Every exposed CONTROL/TREATMENT user (for corrections that look at individual users)."""

    def fraud_scores(self, user_ids: Iterable[str], min_score: float) -> dict[str, float]:
        """{userId: highest fraud score} of those of ``user_ids`` whose score is ≥ ``min_score``."""

    def contaminated_users(self, experiment: OfferExperiment) -> set[str]:
        """Users contaminated by spillover (service/spillover.py)."""


def moments_from_rows(rows: Iterable[UserRow], metric: Metric) -> dict[str, MomentStats]:
    """Per-arm sufficient statistics of ``metric`` in plain Python (no numpy: the sweep stays light).
    Ratio metrics carry their per-user denominator as x (Deng, Knoblich & Lu 2018)."""
    ratio = METRIC_KINDS[metric] is MetricKind.RATIO
    sums = {arm: [0, 0.0, 0.0, 0.0, 0.0, 0.0] for arm in ARMS}
    for row in rows:
        acc = sums.get(row.arm)
        if acc is None:
            continue
        y, x = row.value(metric)
        acc[0] += 1
        acc[1] += y
        acc[2] += y * y
        if ratio:
            acc[3] += x
            acc[4] += x * x
            acc[5] += x * y
    return {arm: MomentStats(int(s[0]), s[1], s[2], s[3], s[4], s[5]) for arm, s in sums.items()}


def _row(user_id: str, arm: str, totals: Mapping[str, Any] | None) -> UserRow:
    if totals is None:
        return UserRow(user_id, arm)
    return UserRow(
        user_id=user_id, arm=arm, counts=totals.get("counts") or {}, amounts=totals.get("amounts") or {},
        pre_exposure=totals.get("preExposure") or {}, sandbox=bool(totals.get("sandbox")) or bool(totals.get("sandboxEvents")),
        region=totals.get("lastRegion"), first_exposed_at=totals.get("firstExposedAt"),
        last_event_at=last_event_at(totals),
    )


class FirestoreAnalysisSource:
    """The default source: exposures and per-user totals from Firestore, read once per instance."""

    def __init__(self) -> None:
        self._rows: dict[str, list[UserRow]] = {}

    def user_rows(self, experiment: OfferExperiment) -> list[UserRow]:
        cached = self._rows.get(experiment.experiment_id)
        if cached is not None:
            return cached
        arms: dict[str, str] = {}
        for user_id, arm in repo.stream_exposures(experiment.experiment_id):
            if user_id and arm in ARMS:
                arms[user_id] = arm
        totals = {t["userId"]: t for t in repo.stream_totals(experiment.experiment_id)
                  if t.get("userId") and t.get("arm") in ARMS}
        for user_id, t in totals.items():  # totals imply an exposure; keep them even if the read raced it
            arms.setdefault(user_id, t["arm"])
        rows = [_row(user_id, arm, totals.get(user_id)) for user_id, arm in arms.items()]
        rows.sort(key=lambda r: r.user_id)  # a stable order: the inputs digest must not depend on read order
        self._rows[experiment.experiment_id] = rows
        return rows

    def arm_moments(self, experiment: OfferExperiment, metrics: Iterable[Metric]) -> dict[str, dict[str, MomentStats]]:
        rows = self.user_rows(experiment)
        return {m.value: moments_from_rows(rows, m) for m in metrics}

    def exposures(self, experiment: OfferExperiment) -> dict[str, int]:
        return exposures_repo.count_by_arm(experiment.experiment_id)

    def fraud_scores(self, user_ids: Iterable[str], min_score: float) -> dict[str, float]:
        wanted = set(user_ids)
        return {u: s for u, s in repo.fraud_scores_at_least(min_score).items() if u in wanted}

    def contaminated_users(self, experiment: OfferExperiment) -> set[str]:
        return repo.contaminated_users(experiment.experiment_id, experiment.holdout_cohort_id)

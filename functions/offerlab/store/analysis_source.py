"""The Firestore ``AnalysisSource`` (service/analysis_source.py): exposures and per-user totals of one
experiment, streamed from experimentExposures and userMetricTotals; every exposed user counts, a user
without a totals document (no event yet) is a row of zeros."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping

from offerlab.domain.metrics import Metric, last_event_at
from offerlab.domain.program import PROGRAM_ARMS, program_id
from offerlab.domain.user_rows import ARMS, UserRow, moments_from_rows
from offerlab.stats.sufficient import MomentStats
from offerlab.store import analyses as repo
from offerlab.store import exposures as exposures_repo
from offerlab.store.documents import OfferExperiment

PAGE_SIZE = 1000
"""Users per page of the paged reads: ~1,000 small documents per query page and per batched get."""


def _row(user_id: str, arm: str, totals: Mapping[str, Any] | None) -> UserRow:
    if totals is None:
        return UserRow(user_id, arm)
    return UserRow(
        user_id=user_id, arm=arm, counts=totals.get("counts") or {}, amounts=totals.get("amounts") or {},
        pre_exposure=totals.get("preExposure") or {}, sandbox=bool(totals.get("sandbox")) or bool(totals.get("sandboxEvents")),
        region=totals.get("lastRegion"), first_exposed_at=totals.get("firstExposedAt"),
        last_event_at=last_event_at(totals), currencies=totals.get("currencies") or {},
        refused=totals.get("refused") or {}, refused_currencies=totals.get("refusedCurrencies") or {},
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

    def fraud_scores(self, user_ids: Iterable[str] | None, min_score: float) -> dict[str, float]:
        flagged = repo.fraud_scores_at_least(min_score)
        if user_ids is None:
            return flagged
        wanted = set(user_ids)
        return {u: s for u, s in flagged.items() if u in wanted}

    def contaminated_users(self, experiment: OfferExperiment) -> set[str]:
        return repo.contaminated_users(experiment.experiment_id, experiment.holdout_cohort_id)

    def program_rows(self, cohort_id: str) -> list[UserRow]:
        """The cohort's program-exposed users (docs/program.md §5) as rows: members as CONTROL (the
        status quo), everyone else as TREATMENT (the program), with their totals since first exposure."""
        scope_id = program_id(cohort_id)
        arms: dict[str, str] = {}
        for user_id, arm in repo.stream_exposures(scope_id):
            if user_id and arm in PROGRAM_ARMS:
                arms[user_id] = PROGRAM_ARMS[arm]
        totals = {t["userId"]: t for t in repo.stream_totals(scope_id)
                  if t.get("userId") and t.get("arm") in PROGRAM_ARMS}
        for user_id, t in totals.items():
            arms.setdefault(user_id, PROGRAM_ARMS[t["arm"]])
        rows = [_row(user_id, arm, totals.get(user_id)) for user_id, arm in arms.items()]
        rows.sort(key=lambda r: r.user_id)
        return rows

    # --- paged reads: bounded memory whatever the population ---------------------------------------------

    def totals_pages(self, experiment: OfferExperiment, page_size: int = PAGE_SIZE, read_time: datetime | None = None
                     ) -> Iterator[list[tuple[str, str, dict[str, Any] | None]]]:
        """Every exposed user of the experiment in user-id order, ``page_size`` at a time, as
        (userId, arm, totals or None): one query page of exposures (document-id order: the ids are
        ``{experimentId}_{userId}``) and one batched get of their totals documents per page; with
        ``read_time``, as the database was then."""
        return repo.exposure_totals_pages(experiment.experiment_id, page_size, read_time)

    def row_pages(self, experiment: OfferExperiment, page_size: int = PAGE_SIZE) -> Iterator[list[UserRow]]:
        """``totals_pages`` as analysis rows (CONTROL and TREATMENT users only)."""
        for page in self.totals_pages(experiment, page_size):
            yield [_row(user_id, arm, totals) for user_id, arm, totals in page if arm in ARMS]



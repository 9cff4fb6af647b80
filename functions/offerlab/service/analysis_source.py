"""Where analyses read their data: ONE interface, ``AnalysisSource``.

An analysis needs, per arm, sufficient statistics (n, Σy, Σy², Σx, Σx², Σxy; stats/sufficient.py) and,
only where a correction must look at individual users (exclusions, winsorizing), per-user rows. Guardrail
checks and KPI snapshots use ``arm_moments`` alone; ``analyze_experiment`` uses ``user_rows`` plus the
per-user facts the exclusions need (fraud scores, contaminated users).

``FirestoreAnalysisSource`` (store/analysis_source.py, the default) streams ``experimentExposures`` and ``userMetricTotals`` of the
experiment: every exposed user counts, a user without a totals document (no event yet) is a row of zeros.
A BigQuery source (docs/analytics.md) implements the same methods: ``arm_moments`` becomes
one ``GROUP BY arm`` query computing the sums in SQL, and ``user_rows`` is only needed for the users a
correction touches plus the tail above the winsorizing cap.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Iterator, Protocol

from offerlab.domain.metrics import Metric
from offerlab.domain.user_rows import ARMS, UserRow, moments_from_rows
from offerlab.stats.sufficient import MomentStats
from offerlab.store.documents import OfferExperiment

__all__ = ["ARMS", "AnalysisSource", "UserRow", "moments_from_rows"]


class AnalysisSource(Protocol):
    """What an analysis reads. Implementations: Firestore (default); BigQuery (later, docs/analytics.md)."""

    def arm_moments(self, experiment: OfferExperiment, metrics: Iterable[Metric]) -> dict[str, dict[str, MomentStats]]:
        """{metric: {arm: MomentStats}} over CONTROL and TREATMENT; x = ratio denominator for ratio metrics."""

    def exposures(self, experiment: OfferExperiment) -> dict[str, int]:
        """Exposed users per arm: CONTROL, TREATMENT, HOLDOUT."""

    def user_rows(self, experiment: OfferExperiment) -> list[UserRow]:
        """Every exposed CONTROL/TREATMENT user (for corrections that look at individual users)."""

    def totals_pages(self, experiment: OfferExperiment, page_size: int = 1000, read_time: datetime | None = None
                     ) -> Iterator[list[tuple[str, str, dict[str, Any] | None]]]:
        """Every exposed user (any arm) in user-id order, a page at a time: (userId, arm, totals or None).
        Memory is one page, whatever the population. ``read_time``: as the data was then (a snapshot)."""

    def row_pages(self, experiment: OfferExperiment, page_size: int = 1000) -> Iterator[list[UserRow]]:
        """The CONTROL/TREATMENT users of ``totals_pages`` as analysis rows, a page at a time."""

    def fraud_scores(self, user_ids: Iterable[str] | None, min_score: float) -> dict[str, float]:
        """{userId: highest fraud score} of those of ``user_ids`` (None: of every user) whose score is
        ≥ ``min_score``: the flagged population, bounded by how many users are flagged."""

    def contaminated_users(self, experiment: OfferExperiment) -> set[str]:
        """Users contaminated by spillover (service/spillover.py)."""

    def program_rows(self, cohort_id: str) -> list[UserRow]:
        """A holdout cohort's program-exposed users (docs/program.md §5): members as CONTROL, the others
        as TREATMENT, with their totals since their first program exposure."""



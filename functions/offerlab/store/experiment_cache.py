"""In-process caches of get_offer's hot path: no Firestore read of experiment configuration per call on a
warm instance.

* ``OfferView``s (what assignment needs: salts, percentages, coverage, configs, status) live for
  ``TTL_SECONDS``. When one expires, the next call re-reads the experiment document (one read) and keeps
  the derived view if the version is unchanged; otherwise it rebuilds it (and reads the cohort only when
  it is not cached: a FROZEN cohort never changes, API.md §3).
  **Staleness bound**: a transition (pause, kill, stage change) reaches every warm instance within
  ``TTL_SECONDS`` (plus one request's duration). docs/lifecycle.md states it.
* The default experiment (get_offer without ``experimentId``) is cached the same way.
* ``ExposureMemo``: an LRU of (experiment, user) pairs whose first exposure this instance already
  recorded, so a user asking again costs no write at all.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from offerlab.domain.errors import NotFound
from offerlab.domain.types import CohortStatus, ExperimentStatus
from offerlab.store import experiments as experiments_repo
from offerlab.store import holdouts as holdouts_repo

TTL_SECONDS = float(os.environ.get("OFFERLAB_OFFER_CACHE_TTL", "5"))


@dataclass(frozen=True)
class OfferView:
    """The part of an experiment (and its holdout cohort) that get_offer needs."""

    experiment_id: str
    version: int
    status: ExperimentStatus
    salt: str
    treatment_percentage: float
    coverage: float | None
    stage_index: int | None
    offer_config: dict[str, Any]
    control_config: dict[str, Any]
    holdout_salt: str | None
    holdout_percentage: float | None
    started_at: datetime | None
    planned_end_date: datetime | None = None
    """Past it a RUNNING experiment enrolls nobody (API.md §11: get_offer ``reason: "ended"``)."""


@dataclass
class _Entry:
    value: Any
    fetched_at: float


class _TtlCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._clock = clock

    def fresh(self, key: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.fetched_at < TTL_SECONDS:
            return entry
        return None

    def stale(self, key: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._entries) > 1_000:  # bounded: experiments are few, but ids come from callers
                self._entries.clear()
            self._entries[key] = _Entry(value, self._clock())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_views = _TtlCache()
_cohorts: dict[str, tuple[str, float]] = {}  # frozen cohorts only: cohortId -> (salt, percentage)
_default = _TtlCache()


def _cohort_params(cohort_id: str) -> tuple[str | None, float | None]:
    cached = _cohorts.get(cohort_id)
    if cached is not None:
        return cached
    try:
        cohort = holdouts_repo.get_cohort(cohort_id)
    except NotFound:
        return None, None
    if cohort.status == CohortStatus.FROZEN:
        _cohorts[cohort_id] = (cohort.salt, cohort.percentage)
    return cohort.salt, cohort.percentage


def _build(experiment) -> OfferView:
    needs_cohort = experiment.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)
    salt, pct = _cohort_params(experiment.holdout_cohort_id) if needs_cohort else (None, None)
    return OfferView(
        experiment_id=experiment.experiment_id, version=experiment.version, status=experiment.status,
        salt=experiment.salt, treatment_percentage=experiment.treatment_percentage, coverage=experiment.coverage,
        stage_index=experiment.stage_index, offer_config=experiment.offer_config,
        control_config=experiment.control_config, holdout_salt=salt, holdout_percentage=pct,
        started_at=experiment.started_at, planned_end_date=experiment.planned_end_date,
    )


def offer_view(experiment_id: str) -> OfferView:
    """The experiment's view, at most ``TTL_SECONDS`` old; NOT_FOUND (also cached) when it does not exist."""
    entry = _views.fresh(experiment_id)
    if entry is None:
        try:
            experiment = experiments_repo.get_experiment(experiment_id)
        except NotFound:
            _views.put(experiment_id, None)
            raise
        old = _views.stale(experiment_id)
        if old is not None and old.value is not None and old.value.version == experiment.version \
                and (old.value.holdout_salt is not None or old.value.status not in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)):
            view = old.value  # version check: nothing changed, keep the derived view
        else:
            view = _build(experiment)
        _views.put(experiment_id, view)
        entry = _views.fresh(experiment_id) or _Entry(view, 0.0)
    if entry.value is None:
        raise NotFound("No such experiment.")
    return entry.value


def default_experiment_id() -> str | None:
    """get_offer without ``experimentId``: the most recently started RUNNING experiment (None when none)."""
    entry = _default.fresh("default")
    if entry is None:
        running = experiments_repo.running_experiments()
        running.sort(key=lambda e: (e.started_at or e.created_at, e.experiment_id), reverse=True)
        chosen = running[0].experiment_id if running else None
        _default.put("default", chosen)
        return chosen
    return entry.value


_STARTED = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.PAUSED, ExperimentStatus.COMPLETED,
                      ExperimentStatus.KILLED})
_definitions: dict[str, Any] = {}


def definition(experiment_id: str):
    """The experiment as metric ingestion needs it (what it streams: caps, offer type, holdout cohort).
    Cached without expiry once it has started: update_experiment refuses every edit from then on, so
    those fields never change again (an experiment not started yet is read every time)."""
    cached = _definitions.get(experiment_id)
    if cached is not None:
        return cached
    experiment = experiments_repo.get_experiment(experiment_id)
    if experiment.status in _STARTED:
        if len(_definitions) > 1_000:
            _definitions.clear()
        _definitions[experiment_id] = experiment
    return experiment


def clear() -> None:
    """Forget everything (tests, and an instance that must see a change immediately)."""
    _views.clear()
    _default.clear()
    _cohorts.clear()
    _definitions.clear()


class ExposureMemo:
    """A bounded LRU of ``(experimentId, userId)`` whose exposure is known to be recorded."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def seen(self, experiment_id: str, user_id: str) -> bool:
        key = (experiment_id, user_id)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            return False

    def remember(self, experiment_id: str, user_id: str) -> None:
        with self._lock:
            self._seen[(experiment_id, user_id)] = None
            self._seen.move_to_end((experiment_id, user_id))
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)


exposure_memo = ExposureMemo()

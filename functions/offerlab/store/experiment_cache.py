"""In-process caches of get_offer's hot path: no Firestore read of experiment configuration per call on a
warm instance.

* ``OfferView``s (what assignment needs: salts, percentages, coverage, segments, covering cohorts,
  configs, status, the compiled rules of domain/program.py) live for ``TTL_SECONDS``. When one expires,
  the next call re-reads the experiment document (one read) and rebuilds it; cohorts are read only when
  not cached (a FROZEN or RETIRED cohort's definition never changes, API.md §3), and the retired ones
  come from the cohort cache (store/cohort_cache.py, its own TTL).
* ``PlacementView``s (the placement document's holders and shipped experiment, compiled into one
  ``PlacementRule``) live for ``TTL_SECONDS`` too: one read of the placement document per TTL.
  **Staleness bound**: a transition (pause, kill, stage change) reaches every warm instance within
  ``TTL_SECONDS`` (plus one request's duration). docs/lifecycle.md states it.
* The most recently started experiment (``default_experiment_id``) is cached the same way.
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

from offerlab import config
from offerlab.domain.assignment import BUCKETS
from offerlab.domain.eligibility import Eligibility, effective_audience
from offerlab.domain.errors import NotFound
from offerlab.domain.holdouts import CohortView, Scope
from offerlab.domain.placements import DEFAULT_PLACEMENT
from offerlab.domain.program import ExperimentRule, PlacementRule, ShippedRule
from offerlab.domain.types import CohortStatus, ExperimentStatus
from offerlab.store import cohort_cache
from offerlab.store import experiments as experiments_repo
from offerlab.store import holdouts as holdouts_repo
from offerlab.store import placements as placements_repo
from offerlab.store.documents import HoldoutCohort, OfferExperiment, PlacementLayer

TTL_SECONDS = float(os.environ.get("OFFERLAB_OFFER_CACHE_TTL", "5"))


@dataclass(frozen=True)
class OfferView:
    """The part of an experiment (and the cohorts covering it) that get_offer needs, with its decision
    compiled (domain/program.py)."""

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
    placement: str = DEFAULT_PLACEMENT
    offer_type: str = "PROMO"
    rule: ExperimentRule | None = None
    shipped: ShippedRule | None = None
    shipped_arm: str | None = None
    retired_seen: frozenset[str] = frozenset()
    """The retired cohorts the view was built with (a change rebuilds it)."""
    eligibility: Eligibility = Eligibility()
    """Its regions (with the regional policy's for its offer type) and audience (domain/eligibility.py)."""
    shipped_at: datetime | None = None
    """When its ship was approved (SHIPPED views)."""
    planned_end_date: datetime | None = None
    """Past it a RUNNING experiment enrolls nobody (API.md §11: get_offer ``reason: "ended"``)."""

    @property
    def shipped_config(self) -> dict[str, Any]:
        return self.offer_config if self.shipped_arm == "TREATMENT" else self.control_config

    def rule_or_build(self) -> ExperimentRule:
        return self.rule if self.rule is not None else ExperimentRule(
            experiment_id=self.experiment_id, running=False, placement=self.placement, segments=(), covering=(),
            salt=self.salt, coverage=None, treatment_percentage=self.treatment_percentage,
            eligibility=self.eligibility)


@dataclass(frozen=True)
class PlacementView:
    """A placement's compiled decision and the views of the experiments in it (holders, shipped)."""

    placement: str
    rule: PlacementRule
    views: dict[str, OfferView]


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
_placements = _TtlCache()
# FROZEN or RETIRED cohorts only: their definitions never change again (API.md §3), so they are kept.
_cohort_views: dict[str, CohortView] = {}
_default = _TtlCache()
reads = {"experiment": 0, "placement": 0, "cohort": 0, "default": 0}  # loads from Firestore (benchmarks count them)


def cohort_view_of(cohort: HoldoutCohort) -> CohortView:
    return CohortView.of(cohort.cohort_id, cohort.salt, cohort.percentage, cohort.spillover_policy,
                         Scope.of(cohort.scope.placements, cohort.scope.offer_types))


def _cohort_view(cohort_id: str) -> CohortView | None:
    cached = _cohort_views.get(cohort_id)
    if cached is not None:
        return cached
    try:
        reads["cohort"] += 1
        cohort = holdouts_repo.get_cohort(cohort_id)
    except NotFound:
        return None
    view = cohort_view_of(cohort)
    if cohort.status != CohortStatus.DRAFT:
        _cohort_views[cohort_id] = view
    return view


def eligibility_of(experiment: OfferExperiment) -> Eligibility:
    """The experiment's pre-enrolment rules: its own regions, the configured regional policy's regions for its
    offer type (offerlab/config.py), its audience (domain/eligibility.py)."""
    regions = experiment.regions
    return Eligibility.of(regions.allow if regions else (), regions.deny if regions else (),
                          config.regional_policy().denied_for(experiment.offer_type),
                          effective_audience(experiment.audience, experiment.offer_type))


def build_view(experiment: OfferExperiment, cohort_view: Callable[[str], CohortView | None],
               retired: frozenset[str]) -> OfferView:
    """The experiment's view and compiled rules. Coverage is the experiment's own record (the cohorts that
    covered it at its start, or at its ship), minus the cohorts since retired (docs/program.md §4).
    A document written before placements existed has no segments (the whole layer) and no coverage list
    (its own holdout cohort)."""
    live = experiment.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)
    covering_ids = list(experiment.covering_cohort_ids) or ([experiment.holdout_cohort_id] if live else [])
    covering = [c for c in (cohort_view(i) for i in covering_ids if i not in retired) if c is not None]
    own = next((c for c in covering if c.cohort_id == experiment.holdout_cohort_id), None)
    if own is None and live:
        own = cohort_view(experiment.holdout_cohort_id)
    segments = [(s.start, s.end) for s in experiment.traffic_segments] or [(0, BUCKETS)]
    eligibility = eligibility_of(experiment)
    rule = ExperimentRule(
        experiment_id=experiment.experiment_id, running=experiment.status is ExperimentStatus.RUNNING,
        placement=experiment.placement, segments=segments, covering=covering, salt=experiment.salt,
        coverage=experiment.coverage, treatment_percentage=experiment.treatment_percentage,
        eligibility=eligibility)
    shipped = None
    ship = experiment.ship
    if experiment.status is ExperimentStatus.SHIPPED and ship is not None:
        ship_covering = [c for c in (cohort_view(i) for i in ship.covering_cohort_ids if i not in retired)
                         if c is not None]
        shipped = ShippedRule(experiment_id=experiment.experiment_id, covering=ship_covering, eligibility=eligibility)
    return OfferView(
        experiment_id=experiment.experiment_id, version=experiment.version, status=experiment.status,
        salt=experiment.salt, treatment_percentage=experiment.treatment_percentage, coverage=experiment.coverage,
        stage_index=experiment.stage_index, offer_config=experiment.offer_config,
        control_config=experiment.control_config, holdout_salt=own.salt if own and live else None,
        holdout_percentage=own.percentage if own and live else None, started_at=experiment.started_at,
        placement=experiment.placement, offer_type=experiment.offer_type.value, rule=rule, shipped=shipped,
        shipped_arm=ship.arm if shipped is not None and ship is not None else None, retired_seen=retired,
        eligibility=eligibility, shipped_at=ship.shipped_at if ship is not None else None,
        planned_end_date=experiment.planned_end_date,
    )


def build_placement_view(placement: str, layer: PlacementLayer | None,
                         view_of: Callable[[str], OfferView | None]) -> PlacementView:
    """The placement's rule: the live holders (most recently started first: domain/placements.slot_table)
    and the shipped experiment, from the placement document and the experiments' views."""
    views: dict[str, OfferView] = {}
    holders = []
    for holder in (layer.holders if layer else []):
        view = view_of(holder.experiment_id)
        if view is None or view.status not in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
            continue
        views[view.experiment_id] = view
        holders.append((holder.since, view))
    holders.sort(key=lambda hv: hv[0], reverse=True)
    shipped = None
    if layer is not None and layer.shipped_experiment_id:
        view = view_of(layer.shipped_experiment_id)
        if view is not None and view.shipped is not None:
            views[view.experiment_id] = view
            shipped = view.shipped
    rule = PlacementRule(placement=placement, slots=[v.rule_or_build() for _, v in holders], shipped=shipped)
    return PlacementView(placement, rule, views)


def offer_view(experiment_id: str) -> OfferView:
    """The experiment's view, at most ``TTL_SECONDS`` old; NOT_FOUND (also cached) when it does not exist."""
    entry = _views.fresh(experiment_id)
    if entry is None:
        try:
            reads["experiment"] += 1
            experiment = experiments_repo.get_experiment(experiment_id)
        except NotFound:
            _views.put(experiment_id, None)
            raise
        retired = cohort_cache.retired_ids()
        old = _views.stale(experiment_id)
        if old is not None and old.value is not None and old.value.version == experiment.version \
                and old.value.retired_seen == retired:
            view = old.value  # nothing changed: keep the compiled view
        else:
            view = build_view(experiment, _cohort_view, retired)
        _views.put(experiment_id, view)
        entry = _views.fresh(experiment_id) or _Entry(view, 0.0)
    if entry.value is None:
        raise NotFound("No such experiment.")
    return entry.value


def _view_or_none(experiment_id: str) -> OfferView | None:
    try:
        return offer_view(experiment_id)
    except NotFound:
        return None


def placement_view(placement: str) -> PlacementView:
    """The placement's view, rebuilt at most every ``TTL_SECONDS`` (one read of its document; its
    experiments' views come from their own cache). Staleness bound: a start, ship or unship reaches every
    warm instance within 2 x ``TTL_SECONDS`` (docs/program.md §6)."""
    entry = _placements.fresh(placement)
    if entry is None:
        reads["placement"] += 1
        view = build_placement_view(placement, placements_repo.find_placement(placement), _view_or_none)
        _placements.put(placement, view)
        return view
    return entry.value


def default_experiment_id() -> str | None:
    """The most recently started RUNNING experiment (None when none); get_offer itself answers for the
    ``default`` placement instead (API.md §10)."""
    entry = _default.fresh("default")
    if entry is None:
        reads["default"] += 1
        running = experiments_repo.running_experiments()
        running.sort(key=lambda e: (e.started_at or e.created_at, e.experiment_id), reverse=True)
        chosen = running[0].experiment_id if running else None
        _default.put("default", chosen)
        return chosen
    return entry.value


_STARTED = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.PAUSED, ExperimentStatus.COMPLETED,
                      ExperimentStatus.KILLED, ExperimentStatus.SHIP_PENDING_APPROVAL, ExperimentStatus.SHIPPED})
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
    _placements.clear()
    _cohort_views.clear()
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

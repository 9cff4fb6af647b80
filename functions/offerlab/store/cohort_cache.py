"""Warm-instance caches of the holdout hot path (``is_user_in_holdout``, ``check_spillover``).

1. The active (FROZEN) cohorts, held in-process for ``COHORT_TTL_SECONDS``: a warm instance answers
   from memory and queries Firestore at most once per TTL, never per call. This is safe because a
   frozen cohort's definition never changes (docs/holdouts.md): what the cache can miss is only a
   cohort frozen or retired in the last TTL by *another* instance (the instance that freezes or retires
   one invalidates its own cache at once). So a new cohort starts counting, and a retired one stops,
   at most ``COHORT_TTL_SECONDS`` later everywhere: documented in docs/holdouts.md.
2. The (cohort, user) pairs this process has recorded in ``holdoutAssignments`` recently (an LRU): a
   user evaluated again on the same instance costs no write at all; on another instance, one ``create``
   that finds the record already there.

Both are per process and thread-safe (an instance may serve concurrent requests on threads).
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable

from offerlab.domain.holdouts import CohortView, Scope
from offerlab.domain.types import CohortStatus

COHORT_TTL_SECONDS = float(os.environ.get("OFFERLAB_COHORT_CACHE_TTL_SECONDS", "15"))
RECORDED_LRU_SIZE = int(os.environ.get("OFFERLAB_RECORDED_LRU_SIZE", "100000"))  # ~15 MB at most


class TtlCache:
    """One value, loaded by ``loader`` and reused for ``ttl`` seconds. Concurrent callers of an expired
    cache wait for one reload instead of each querying Firestore."""

    def __init__(self, loader: Callable[[], tuple], ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._loader, self._ttl, self._clock = loader, ttl, clock
        self._value: tuple | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self.loads = 0

    def get(self) -> tuple:
        value = self._value
        if value is not None and self._clock() - self._loaded_at < self._ttl:
            return value
        with self._lock:
            if self._value is None or self._clock() - self._loaded_at >= self._ttl:
                self._value = self._loader()
                self._loaded_at = self._clock()
                self.loads += 1
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None


class RecentSet:
    """A bounded set with least-recently-used eviction."""

    def __init__(self, max_size: int) -> None:
        self._items: OrderedDict[Hashable, None] = OrderedDict()
        self._max = max_size
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True
            return False

    def add(self, key: Hashable) -> None:
        with self._lock:
            self._items[key] = None
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _load_active_cohorts() -> tuple[CohortView, ...]:
    from offerlab.store.holdouts import list_cohorts_with_status  # noqa: PLC0415

    cohorts = list_cohorts_with_status(CohortStatus.FROZEN)
    # A stable order (by freezing time, then id), so cohortIds[] reads the same on every instance.
    cohorts.sort(key=lambda c: (c.frozen_at.timestamp() if c.frozen_at else 0.0, c.cohort_id))
    return tuple(CohortView.of(c.cohort_id, c.salt, c.percentage, c.spillover_policy,
                               Scope.of(c.scope.placements, c.scope.offer_types)) for c in cohorts)


def _load_retired_ids() -> tuple[str, ...]:
    from offerlab.store.holdouts import list_cohorts_with_status  # noqa: PLC0415

    return tuple(sorted(c.cohort_id for c in list_cohorts_with_status(CohortStatus.RETIRED)))


active_cohorts_cache = TtlCache(_load_active_cohorts, COHORT_TTL_SECONDS)
# Retired cohorts stop covering the experiments that recorded them (docs/program.md §4); until an
# instance sees the retirement (at most the TTL) it keeps holding their members out: the safe side.
retired_ids_cache = TtlCache(_load_retired_ids, COHORT_TTL_SECONDS)
recently_recorded = RecentSet(RECORDED_LRU_SIZE)


def active_cohorts() -> tuple[CohortView, ...]:
    """The FROZEN cohorts, from memory when fresh enough."""
    return active_cohorts_cache.get()


def retired_ids() -> frozenset[str]:
    return frozenset(retired_ids_cache.get())


def invalidate() -> None:
    """Call after this process froze or retired a cohort: the next call reloads."""
    active_cohorts_cache.invalidate()
    retired_ids_cache.invalidate()

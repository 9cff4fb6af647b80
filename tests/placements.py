"""Placements for test cohorts and experiments (API.md §10).

Experiments RUNNING in one placement are mutually exclusive, and a global cohort covers every experiment
(it cannot even be frozen while one of them runs, docs/program.md §4). So the tests give each cohort a scope
of placements of its own, and each experiment the next free placement of its cohort: the experiments of a
test never compete for traffic, and the cohort covers every one of them, unless a test says otherwise.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable

PLACEMENTS_PER_COHORT = 40
PLACEMENTS_OF: dict[str, list[str]] = {}  # cohortId -> its scope's placements not yet given to an experiment


def new_scope() -> tuple[dict[str, list[str]], list[str]]:
    base = f"p-{uuid.uuid4().hex[:12]}"
    placements = [f"{base}-{i}" for i in range(PLACEMENTS_PER_COHORT)]
    return {"placements": placements}, placements


def scoped(create: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``create(*args, scope=…, **kwargs)`` with a scope of placements of its own, remembered for
    ``next_placement``; ``create`` returns a cohort model or its JSON."""
    scope, placements = new_scope()
    cohort = create(*args, scope=scope, **kwargs)
    cohort_id = cohort["cohortId"] if isinstance(cohort, dict) else cohort.cohort_id
    PLACEMENTS_OF[cohort_id] = list(placements)
    return cohort


def next_placement(cohort_id: str) -> str:
    """The next placement of the cohort's scope (a fresh one for a cohort made some other way)."""
    free = PLACEMENTS_OF.get(cohort_id)
    return free.pop(0) if free else f"p-{uuid.uuid4().hex[:12]}"

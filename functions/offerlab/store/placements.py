"""Repository of placement layers (placementLayers/{placement}) and the coverage lock (programLocks/coverage).

Both are read and written inside the transactions that change what they guard (service/experiments.py,
service/holdouts.py): a read in a Firestore transaction locks the document until the commit, so two
starts racing for one placement, or a freeze racing a start, are serialised (docs/program.md §4).
"""
from __future__ import annotations

from typing import Any

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import PlacementLayer, ProgramLock

COVERAGE_LOCK = "coverage"


def placement_ref(placement: str):
    return db().collection(C.PLACEMENT_LAYERS).document(placement)


def find_placement(placement: str, transaction: Any = None) -> PlacementLayer | None:
    snap = placement_ref(placement).get(transaction=transaction)
    return PlacementLayer.from_firestore(snap.to_dict()) if snap.exists else None


def lock_ref():
    return db().collection(C.PROGRAM_LOCKS).document(COVERAGE_LOCK)


def read_lock(transaction: Any = None) -> ProgramLock:
    snap = lock_ref().get(transaction=transaction)
    return ProgramLock.from_firestore(snap.to_dict()) if snap.exists else ProgramLock()

"""Repository of KPI snapshots: experimentSnapshots/{experimentId}_{tickId}, created once per tick."""
from __future__ import annotations

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import ExperimentSnapshot


def snapshot_id(experiment_id: str, tick_id: str) -> str:
    return f"{experiment_id}_{tick_id}"


def snapshot_ref(experiment_id: str, tick_id: str):
    return db().collection(C.EXPERIMENT_SNAPSHOTS).document(snapshot_id(experiment_id, tick_id))


def create_snapshot(tick_id: str, snapshot: ExperimentSnapshot) -> bool:
    """Create the tick's snapshot; False when it already exists (a tick delivered twice writes once)."""
    from google.api_core.exceptions import AlreadyExists, Conflict  # noqa: PLC0415 - lazy (cold start)

    try:
        snapshot_ref(snapshot.experiment_id, tick_id).create(snapshot.to_firestore())
        return True
    except (AlreadyExists, Conflict):
        return False


def get_snapshot(experiment_id: str, tick_id: str) -> ExperimentSnapshot | None:
    snap = snapshot_ref(experiment_id, tick_id).get()
    return ExperimentSnapshot.from_firestore(snap.to_dict()) if snap.exists else None

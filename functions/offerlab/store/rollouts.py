"""Repository of rollout plans (rolloutPlans/{experimentId}) and rollout events."""
from __future__ import annotations

from typing import Any

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import RolloutPlan


def plan_ref(experiment_id: str):
    return db().collection(C.ROLLOUT_PLANS).document(experiment_id)


def find_plan(experiment_id: str, transaction: Any = None) -> RolloutPlan | None:
    snap = plan_ref(experiment_id).get(transaction=transaction)
    return RolloutPlan.from_firestore(snap.to_dict()) if snap.exists else None




def rollout_event_ref(experiment_id: str, plan_version: int):
    """``rolloutEvents/{experimentId}_{planVersion:06d}``: one per plan version, created (a race collides)."""
    return db().collection(C.ROLLOUT_EVENTS).document(f"{experiment_id}_{plan_version:06d}")


def active_plan_ids(limit: int = 1000) -> list[str]:
    """Experiment ids of ACTIVE plans (the sweep's fan-out); the plan's doc id is the experiment id."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 - lazy (cold start)

    query = db().collection(C.ROLLOUT_PLANS).where(filter=FieldFilter("status", "==", "ACTIVE")).limit(limit)
    return [snap.id for snap in query.stream()]


def list_rollout_events(experiment_id: str) -> list[dict[str, Any]]:
    """The plan's events in version order."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.ROLLOUT_EVENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return sorted((s.to_dict() for s in query.stream()), key=lambda e: e.get("version", 0))


def open_alerts(experiment_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Unacknowledged alerts of the experiment (experimentAlerts, written by the ledger and the analytics
    area): an open alert blocks progression (docs/rollout.md)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = (db().collection(C.EXPERIMENT_ALERTS)
             .where(filter=FieldFilter("experimentId", "==", experiment_id))
             .where(filter=FieldFilter("acknowledged", "==", False)).limit(limit))
    return [s.to_dict() for s in query.stream()]

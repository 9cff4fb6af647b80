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

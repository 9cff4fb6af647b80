"""Repositories of per-user metric totals (userMetricTotals) and fraud scores (fraudScores)."""
from __future__ import annotations

from typing import Any

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import FraudScore, UserMetricTotals


def totals_ref(experiment_id: str, user_id: str):
    return db().collection(C.USER_METRIC_TOTALS).document(f"{experiment_id}_{user_id}")


def find_totals(experiment_id: str, user_id: str, transaction: Any = None) -> dict[str, Any] | None:
    snap = totals_ref(experiment_id, user_id).get(transaction=transaction)
    return snap.to_dict() if snap.exists else None


def totals_of_experiment(experiment_id: str) -> list[UserMetricTotals]:
    """Every user's totals of one experiment (the analytics engineer aggregates them per arm)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 - lazy (cold start)

    query = db().collection(C.USER_METRIC_TOTALS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return [UserMetricTotals.from_firestore(s.to_dict()) for s in query.stream()]


def fraud_ref(user_id: str):
    return db().collection(C.FRAUD_SCORES).document(user_id)


def find_fraud_score(user_id: str, transaction: Any = None) -> FraudScore | None:
    snap = fraud_ref(user_id).get(transaction=transaction)
    return FraudScore.from_firestore(snap.to_dict()) if snap.exists else None

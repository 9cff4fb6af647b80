"""Repositories of per-user metric totals (userMetricTotals) and fraud scores (fraudScores)."""
from __future__ import annotations

from typing import Any

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.domain.metrics import TotalsDelta, normalized_totals
from offerlab.store.documents import FraudScore


def totals_ref(experiment_id: str, user_id: str):
    return db().collection(C.USER_METRIC_TOTALS).document(f"{experiment_id}_{user_id}")


def add_totals_delta(batch: Any, experiment_id: str, user_id: str, identity: dict[str, Any], delta: TotalsDelta) -> None:
    """Queue on ``batch`` a blind merge of ``delta`` into the user's totals (no read, so no lock to fight
    over): increments and maximums become server-side transforms, labels and ``identity`` plain sets."""
    from google.cloud.firestore_v1.transforms import Increment, Maximum  # noqa: PLC0415 - lazy (cold start)

    doc: dict[str, Any] = dict(identity)

    def put(path: str, value: Any) -> None:
        *parents, leaf = path.split(".")
        node = doc
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value

    for path, amount in delta.increments.items():
        put(path, Increment(amount))
    for path, value in delta.maximums.items():
        put(path, Maximum(value))
    for path, value in delta.labels.items():
        put(path, value)
    batch.set(totals_ref(experiment_id, user_id), doc, merge=True)


def find_totals(experiment_id: str, user_id: str, transaction: Any = None) -> dict[str, Any] | None:
    """The user's totals with every count and amount present (None when the user has none)."""
    snap = totals_ref(experiment_id, user_id).get(transaction=transaction)
    return normalized_totals(snap.to_dict()) if snap.exists else None




def fraud_ref(user_id: str):
    return db().collection(C.FRAUD_SCORES).document(user_id)


def find_fraud_score(user_id: str, transaction: Any = None) -> FraudScore | None:
    snap = fraud_ref(user_id).get(transaction=transaction)
    return FraudScore.from_firestore(snap.to_dict()) if snap.exists else None

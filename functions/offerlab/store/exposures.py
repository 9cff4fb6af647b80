"""Repository of first exposures: experimentExposures/{experimentId}_{userId}, created once, never updated.

One document per (experiment, user), created in one batch with a blind increment of its arm's count on
one of SHARDS aggregate shards (no hot counter: store/aggregates.py). Monitoring reads the shards;
``count_by_arm`` (aggregation ``count()`` queries, one read per 1,000 index entries) is what the
reconciliation compares them with.
"""
from __future__ import annotations

from typing import Any

from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import ExperimentExposure


def exposure_id(experiment_id: str, user_id: str) -> str:
    return f"{experiment_id}_{user_id}"


def exposure_ref(experiment_id: str, user_id: str):
    return db().collection(C.EXPERIMENT_EXPOSURES).document(exposure_id(experiment_id, user_id))


def record_first_exposure(exposure: ExperimentExposure) -> bool:
    """Create the exposure; True when this call created it, False when it already existed (idempotent).

    The same atomic batch adds 1 to ``exposures`` of the user's shard of experimentAggregates (a blind
    increment: store/aggregates.py), so the streamed per-arm counts are exact: the batch fails as a whole
    when the exposure exists, and monitoring never needs a count query that grows with the population."""
    from google.api_core.exceptions import AlreadyExists, Conflict  # noqa: PLC0415 - lazy (cold start)

    from offerlab.store.aggregates import count_exposure  # noqa: PLC0415 - no cycle; keeps the import light

    batch = db().batch()
    batch.create(exposure_ref(exposure.experiment_id, exposure.user_id), exposure.to_firestore())
    count_exposure(batch, exposure.experiment_id, exposure.user_id, exposure.arm)
    try:
        batch.commit()
        return True
    except (AlreadyExists, Conflict):
        return False


def find_exposure(experiment_id: str, user_id: str, transaction: Any = None) -> ExperimentExposure | None:
    snap = exposure_ref(experiment_id, user_id).get(transaction=transaction)
    return ExperimentExposure.from_firestore(snap.to_dict()) if snap.exists else None


def exposures_of_user(user_id: str, transaction: Any = None) -> list[ExperimentExposure]:
    """Every experiment the user was exposed to (metric events that name no experiment)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.EXPERIMENT_EXPOSURES).where(filter=FieldFilter("userId", "==", user_id)).limit(100)
    snaps = transaction.get(query) if transaction is not None else query.stream()
    return [ExperimentExposure.from_firestore(s.to_dict()) for s in snaps]


def count_by_arm(experiment_id: str, read_time: Any = None) -> dict[str, int]:
    """Exposures per arm via aggregation queries (one read per 1,000 index entries; ``read_time``: as of then)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    out = {}
    base = db().collection(C.EXPERIMENT_EXPOSURES).where(filter=FieldFilter("experimentId", "==", experiment_id))
    for arm in ("CONTROL", "TREATMENT", "HOLDOUT"):
        result = base.where(filter=FieldFilter("arm", "==", arm)).count().get(read_time=read_time)
        out[arm] = int(result[0][0].value)
    return out

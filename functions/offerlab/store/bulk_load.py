"""Bulk load of historical per-user data (demo history, benchmarks, test fixtures): exposures, totals and
the streamed shard sums that describe them, consistent by construction.

Not a live path: it writes without the compare-and-swap of store/aggregates.py, so it must not run while
events of the same users are ingested. Each user's terms come from the same pure function ingestion uses
(domain/aggregates.user_terms); the shard sums are accumulated in memory (at most 3 × SHARDS documents)
and written as blind increments at the end, so loading in several calls adds up.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from offerlab.domain.aggregates import AggregateSpec, shard_id, shard_of, user_terms
from offerlab.store import collections as C
from offerlab.store.aggregates import _nested
from offerlab.store.client import db

BATCH = 500


def load_users(spec: AggregateSpec, users: Iterable[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any]]],
               flags: Mapping[str, Iterable[str]] | None = None, *, exposed: bool = False) -> int:
    """``users``: (userId, arm, totals or None, exposure fields); ``flags``: userId → signalled exclusion
    reasons (fraud, spillover) to set on their totals. ``exposed``: the users' exposures were recorded (and
    counted) already, by get_offer: only their totals and terms are loaded. Returns how many users were
    written."""
    from google.cloud.firestore_v1.transforms import Increment  # noqa: PLC0415

    flags = flags or {}
    shards: dict[str, dict[str, float]] = {}
    identity: dict[str, dict[str, Any]] = {}
    batch, writes, count = db().batch(), 0, 0

    def flush() -> None:
        nonlocal batch, writes
        if writes:
            batch.commit()
        batch, writes = db().batch(), 0

    for user_id, arm, totals, exposure in users:
        count += 1
        key = shard_id(spec.experiment_id, arm, shard_of(user_id))
        acc = shards.setdefault(key, {})
        identity[key] = {"experimentId": spec.experiment_id, "arm": arm, "shard": shard_of(user_id)}
        if not exposed:
            batch.set(db().collection(C.EXPERIMENT_EXPOSURES).document(f"{spec.experiment_id}_{user_id}"),
                      {"experimentId": spec.experiment_id, "userId": user_id, "arm": arm, **exposure})
            writes += 1
            acc["exposures"] = acc.get("exposures", 0) + 1
        reasons = list(flags.get(user_id, ()))
        if totals is None and reasons:
            totals = {"experimentId": spec.experiment_id, "userId": user_id, "arm": arm,
                      "firstExposedAt": exposure.get("firstExposedAt")}
        if totals is not None:
            doc = dict(totals)
            if reasons:
                doc["excludedBy"] = {**(doc.get("excludedBy") or {}), **{r: True for r in reasons}}
            batch.set(db().collection(C.USER_METRIC_TOTALS).document(f"{spec.experiment_id}_{user_id}"), doc)
            writes += 1
            for field, value in user_terms(doc, spec).items():
                acc[field] = acc.get(field, 0) + value
        if writes >= BATCH - 1:
            flush()
    flush()
    for key, acc in shards.items():
        batch.set(db().collection(C.EXPERIMENT_AGGREGATES).document(key),
                  {**identity[key], **_nested({k: Increment(v) for k, v in acc.items()})}, merge=True)
        writes += 1
        if writes >= BATCH:
            flush()
    flush()
    return count

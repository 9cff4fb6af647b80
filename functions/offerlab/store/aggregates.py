"""experimentAggregates: the streamed per-arm sums (domain/aggregates.py), and the one write path of
per-user totals that keeps them exact.

``apply_changes`` is a compare-and-swap loop, not a transaction: it reads the users' totals documents,
plans each change (domain/aggregates.plan_change), and commits ONE batch holding the new totals (each
conditional on its update time being the one read, or on not existing yet), the shard increments
(blind ``Increment`` transforms: shards are never read here, so they are never contended) and, for an
event, the creation of its processed marker. A lost race (another change of the same user committed in
between: FAILED_PRECONDITION, or ALREADY_EXISTS on a create) re-reads and retries with full-jitter
backoff; the marker's ALREADY_EXISTS is a duplicate delivery and writes nothing. No lock is held between
the read and the commit, so concurrent events of one user never deadlock on the emulator's pessimistic
locks (../shared/notes/emulators.md); only they retry, never events of other users.
"""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from offerlab.domain.aggregates import FLAGGED_REASONS, PlannedChange, UserChange, plan_change, shard_id, shard_of
from offerlab.domain.errors import Aborted
from offerlab.store import collections as C
from offerlab.store.client import db

CAS_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.5


def shard_ref(doc_id: str):
    return db().collection(C.EXPERIMENT_AGGREGATES).document(doc_id)


def read_shards(experiment_id: str, read_time: Any = None) -> list[dict[str, Any]]:
    """Every shard of the experiment: at most 3 arms × SHARDS documents, whatever the population
    (``read_time``: as they were then)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 - lazy (cold start)

    query = db().collection(C.EXPERIMENT_AGGREGATES).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return [s.to_dict() for s in query.stream(read_time=read_time)]


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = out
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return out


def add_increments(batch: Any, planned: PlannedChange) -> None:
    """Queue the shard's blind increments (server-side transforms, merged: no read, no lock)."""
    from google.cloud.firestore_v1.transforms import Increment  # noqa: PLC0415

    if not planned.increments:
        return
    doc = _nested({k: Increment(v) for k, v in planned.increments.items()})
    batch.set(shard_ref(planned.shard), {**planned.shard_identity, **doc}, merge=True)


def count_exposure(batch: Any, experiment_id: str, user_id: str, arm: str) -> None:
    """Queue ``exposures += 1`` on the user's shard (in the batch that creates the exposure)."""
    from google.cloud.firestore_v1.transforms import Increment  # noqa: PLC0415

    shard = shard_of(user_id)
    batch.set(shard_ref(shard_id(experiment_id, arm, shard)),
              {"experimentId": experiment_id, "arm": arm, "shard": shard, "exposures": Increment(1)}, merge=True)


def _initial_flags(change: UserChange) -> list[str]:
    """Exclusions recorded before the user's first totals document: a fraud score at or above the
    experiment's threshold, a contamination of the user for this experiment or in its holdout cohort."""
    if change.spec is None:
        return []
    flags = []
    fraud = db().collection(C.FRAUD_SCORES).document(change.user_id).get()
    if fraud.exists and float((fraud.to_dict() or {}).get("maxScore", 0.0)) >= change.spec.fraud_threshold:
        flags.append("fraud")
    scopes = [change.experiment_id] + ([change.spec.holdout_cohort_id] if change.spec.holdout_cohort_id else [])
    refs = [db().collection(C.HOLDOUT_CONTAMINATIONS).document(f"{scope}_{change.user_id}") for scope in scopes]
    if any(s.exists for s in db().get_all(refs)):
        flags.append("spillover")
    return [f for f in flags if f in FLAGGED_REASONS]


def apply_changes(changes: Sequence[UserChange], *, scope: str | None = None, event_id: str | None = None,
                  totals_ref: Any) -> bool:
    """Commit ``changes`` exactly once (see the module docstring). With ``event_id``, the marker
    ``processedEvents/{scope}:{hash}`` is created in the same batch: False (nothing written) when the
    event was processed before. Without one (an exclusion flag: idempotent by itself), True."""
    from google.api_core import exceptions as gexc  # noqa: PLC0415

    from offerlab.store.idempotency import marker_ref  # noqa: PLC0415 - one marker layout

    marker = marker_ref(scope, event_id) if event_id is not None else None
    refs = [totals_ref(c.experiment_id, c.user_id) for c in changes]
    for attempt in range(CAS_ATTEMPTS):
        snaps = {s.reference.path: s for s in db().get_all(refs)} if refs else {}
        batch = db().batch()
        writes = 0
        for change, ref in zip(changes, refs):
            snap = snaps.get(ref.path)
            old = snap.to_dict() if snap is not None and snap.exists else None
            planned = plan_change(change, old, _initial_flags(change) if old is None else ())
            if planned.doc is None:
                continue
            if old is None:
                batch.create(ref, planned.doc)
            else:
                batch.update(ref, planned.doc, option=db().write_option(last_update_time=snap.update_time))
            add_increments(batch, planned)
            writes += 1
        if marker is not None:
            batch.create(marker, {"scope": scope, "eventId": event_id[:500], "processedAt": datetime.now(timezone.utc)})
        elif not writes:
            return True
        try:
            batch.commit()
            return True
        except gexc.AlreadyExists:
            if marker is not None and marker.get().exists:
                return False  # a duplicate delivery (or our own commit that landed before a retry)
        except (gexc.FailedPrecondition, gexc.Aborted, gexc.Conflict):
            pass  # another change of one of these users committed after our read: re-read
        time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)))
    raise Aborted("A user's totals kept changing under this event; the delivery will be retried.")


def changes_for_users(changes: Iterable[UserChange]) -> list[UserChange]:
    """One change per (experiment, user): a batch may not write one document twice."""
    seen, out = set(), []
    for change in changes:
        key = (change.experiment_id, change.user_id)
        if key not in seen:
            seen.add(key)
            out.append(change)
    return out

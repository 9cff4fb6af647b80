"""Repository of holdout cohorts, their per-user assignment records, spillover events and contaminations.

Figures per cohort (assigned, evaluated, contaminated users) are never kept in a counter document:
each user is one document of its own (``holdoutAssignments/{cohortId}_{userId}``,
``holdoutContaminations/{cohortId}_{userId}``), created once, and the figures are ``count()``
aggregation queries over them. Writers therefore never contend on a shared document (the emulator
and production both serialise writes to one document), and the figures are always current. A count
costs one document read per 1,000 index entries (Firestore pricing, "aggregation queries"), which is
fine for a health report; it is never on a per-user hot path.
"""
from __future__ import annotations

from typing import Any, Iterable

from offerlab.domain.errors import NotFound
from offerlab.domain.types import CohortStatus, ExperimentStatus
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import (
    HoldoutAssignment, HoldoutCohort, HoldoutContamination, HoldoutSpilloverEvent,
)


# --- cohorts -----------------------------------------------------------------------------------------

def cohort_ref(cohort_id: str):
    return db().collection(C.HOLDOUT_COHORTS).document(cohort_id)


def new_cohort_ref():
    return db().collection(C.HOLDOUT_COHORTS).document()


def get_cohort(cohort_id: str, transaction: Any = None) -> HoldoutCohort:
    snap = cohort_ref(cohort_id).get(transaction=transaction)
    if not snap.exists:
        raise NotFound("No such holdout cohort.")
    return HoldoutCohort.from_firestore(snap.to_dict())


def list_cohorts_with_status(status: CohortStatus, transaction: Any = None) -> list[HoldoutCohort]:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 - lazy (cold start)

    query = db().collection(C.HOLDOUT_COHORTS).where(filter=FieldFilter("status", "==", status.value))
    return [HoldoutCohort.from_firestore(s.to_dict()) for s in query.stream(transaction=transaction)]


def experiments_using_cohort(cohort_id: str, statuses: Iterable[ExperimentStatus],
                             transaction: Any = None) -> list[str]:
    """Ids of the experiments whose holdout is this cohort and whose status is one of ``statuses``.

    One equality filter (served by the automatic single-field index); the status is filtered here so
    no composite index is needed."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    wanted = {s.value for s in statuses}
    query = db().collection(C.OFFER_EXPERIMENTS).where(filter=FieldFilter("holdoutCohortId", "==", cohort_id))
    return [snap.id for snap in query.stream(transaction=transaction)
            if (snap.to_dict() or {}).get("status") in wanted]


# --- assignments -------------------------------------------------------------------------------------

def assignment_id(cohort_id: str, user_id: str) -> str:
    return f"{cohort_id}_{user_id}"


def record_assignment(assignment: HoldoutAssignment) -> bool:
    """Create the user's assignment record; False when it already existed (recorded before: fine).

    A single-document ``create`` is atomic and touches no shared document; the record is the event."""
    from google.api_core.exceptions import AlreadyExists, Conflict  # noqa: PLC0415

    ref = db().collection(C.HOLDOUT_ASSIGNMENTS).document(assignment_id(assignment.cohort_id, assignment.user_id))
    try:
        ref.create(assignment.to_firestore())
        return True
    except (AlreadyExists, Conflict):
        return False




def _count(query: Any) -> int:
    result = query.count(alias="n").get()
    return int(result[0][0].value) if result and result[0] else 0


def count_assignments(cohort_id: str) -> tuple[int, int]:
    """(users evaluated, users of them inside the cohort), by aggregation."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    by_cohort = db().collection(C.HOLDOUT_ASSIGNMENTS).where(filter=FieldFilter("cohortId", "==", cohort_id))
    evaluated = _count(by_cohort)
    inside = _count(by_cohort.where(filter=FieldFilter("inHoldout", "==", True)))
    return evaluated, inside


# --- spillover events and contaminations -------------------------------------------------------------

def new_spillover_event_ref():
    return db().collection(C.HOLDOUT_SPILLOVER_EVENTS).document()


def spillover_event_ref(event_id: str):
    return db().collection(C.HOLDOUT_SPILLOVER_EVENTS).document(event_id)


def create_spillover_event(ref: Any, event: HoldoutSpilloverEvent) -> None:
    ref.create(event.to_firestore())


def contamination_ref(scope_id: str, user_id: str):
    """``scope_id`` is a cohort id or an experiment id (both Firestore auto ids, so they never clash)."""
    return db().collection(C.HOLDOUT_CONTAMINATIONS).document(f"{scope_id}_{user_id}")




def count_program_exposures(program_id: str) -> tuple[int, int]:
    """(exposed users, of them holdout members) of a cohort's program exposures, by aggregation."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    base = db().collection(C.EXPERIMENT_EXPOSURES).where(filter=FieldFilter("experimentId", "==", program_id))
    return _count(base), _count(base.where(filter=FieldFilter("arm", "==", "HOLDOUT")))


def count_contaminations(cohort_id: str) -> int:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    return _count(db().collection(C.HOLDOUT_CONTAMINATIONS).where(filter=FieldFilter("cohortId", "==", cohort_id)))


def get_contamination(scope_id: str, user_id: str) -> HoldoutContamination | None:
    snap = contamination_ref(scope_id, user_id).get()
    return HoldoutContamination.from_firestore(snap.to_dict()) if snap.exists else None

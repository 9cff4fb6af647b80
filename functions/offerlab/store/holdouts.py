"""Repository of holdout cohorts."""
from __future__ import annotations

from typing import Any

from offerlab.domain.errors import NotFound
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import HoldoutCohort


def cohort_ref(cohort_id: str):
    return db().collection(C.HOLDOUT_COHORTS).document(cohort_id)


def new_cohort_ref():
    return db().collection(C.HOLDOUT_COHORTS).document()


def get_cohort(cohort_id: str, transaction: Any = None) -> HoldoutCohort:
    snap = cohort_ref(cohort_id).get(transaction=transaction)
    if not snap.exists:
        raise NotFound("No such holdout cohort.")
    return HoldoutCohort.from_firestore(snap.to_dict())

"""Holdout cohort use cases (HoldoutCohortManager)."""
from __future__ import annotations

from typing import Any

from offerlab.api.auth import Caller
from offerlab.domain.assignment import new_salt
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.types import DEFAULT_SPILLOVER_POLICY, CohortStatus
from offerlab.store import holdouts as repo
from offerlab.store.documents import HoldoutCohort, LastChange
from offerlab.store.transaction import run_in_transaction


def create_holdout_cohort(caller: Caller, name: str, percentage: float, description: str,
                          spillover_policy: dict | None) -> HoldoutCohort:
    ref = repo.new_cohort_ref()
    now = utcnow()
    cohort = HoldoutCohort(
        cohort_id=ref.id, name=name, description=description, percentage=percentage, salt=new_salt(),
        status=CohortStatus.DRAFT, spillover_policy={**DEFAULT_SPILLOVER_POLICY, **(spillover_policy or {})},
        created_by=caller.actor, created_at=now, version=1,
        last_change=LastChange(action="COHORT_CREATED", actor=caller.actor, at=now, version=1),
    )

    def body(transaction: Any) -> None:
        transaction.create(ref, cohort.to_firestore())

    run_in_transaction(body)
    return cohort


def freeze_holdout_cohort(caller: Caller, cohort_id: str) -> HoldoutCohort:
    ref = repo.cohort_ref(cohort_id)

    def body(transaction: Any) -> HoldoutCohort:
        cohort = repo.get_cohort(cohort_id, transaction)
        if cohort.status != CohortStatus.DRAFT:
            raise FailedPrecondition(f"Only a DRAFT cohort can be frozen; this one is {cohort.status.value}.")
        now = utcnow()
        frozen = cohort.model_copy(update={
            "status": CohortStatus.FROZEN, "frozen_at": now, "frozen_by": caller.actor,
            "version": cohort.version + 1,
            "last_change": LastChange(action="COHORT_FROZEN", actor=caller.actor, at=now, version=cohort.version + 1),
        })
        transaction.set(ref, frozen.to_firestore())
        return frozen

    return run_in_transaction(body)

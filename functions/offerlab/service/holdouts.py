"""Holdout cohort use cases (HoldoutCohortManager): create, edit, freeze, retire, membership, health.

Each state change is one transaction writing the cohort with ``version + 1`` and a ``lastChange``
stamp naming the action (the event the ledger trigger reads). docs/holdouts.md has the lifecycle,
the cache and the health thresholds.
"""
from __future__ import annotations

import re
from typing import Any

from offerlab.api.auth import Caller, Role
from offerlab.domain.assignment import BUCKETS, new_salt, threshold
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import InvalidArgument, PermissionDenied
from offerlab.domain.holdouts import (
    CohortView, assess_health, cohorts_containing, contamination_rate, ensure_editable, ensure_freezable,
    ensure_retirable,
)
from offerlab.domain.types import DEFAULT_SPILLOVER_POLICY, CohortStatus, ExperimentStatus
from offerlab.store import cohort_cache
from offerlab.store import holdouts as repo
from offerlab.store.documents import HoldoutAssignment, HoldoutCohort, LastChange
from offerlab.store.transaction import run_in_transaction

# Same rule as api.models.UserId: a user id becomes part of a document id, so no '/' or control chars.
_USER_ID = re.compile(r"^[^/\x00-\x1f]{1,128}$")


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


def _next_version(cohort: HoldoutCohort, caller: Caller, action: str, **changes: Any) -> HoldoutCohort:
    now = utcnow()
    version = cohort.version + 1
    return cohort.model_copy(update={
        **changes, "version": version,
        "last_change": LastChange(action=action, actor=caller.actor, at=now, version=version),
    })


def update_holdout_cohort(caller: Caller, cohort_id: str, changes: dict[str, Any]) -> HoldoutCohort:
    """Edit a DRAFT cohort (name, description, percentage, spillover policy; never the salt)."""
    if not changes:
        raise InvalidArgument("Nothing to change.", {"fields": [{"path": "(payload)", "message": "no field to change"}]})
    ref = repo.cohort_ref(cohort_id)

    def body(transaction: Any) -> HoldoutCohort:
        cohort = repo.get_cohort(cohort_id, transaction)
        ensure_editable(cohort.status)
        update = dict(changes)
        if update.get("spillover_policy") is not None:
            update["spillover_policy"] = {**cohort.spillover_policy, **update["spillover_policy"]}
        edited = _next_version(cohort, caller, "COHORT_UPDATED", **update)
        transaction.set(ref, edited.to_firestore())
        return edited

    return run_in_transaction(body)


def freeze_holdout_cohort(caller: Caller, cohort_id: str) -> HoldoutCohort:
    ref = repo.cohort_ref(cohort_id)

    def body(transaction: Any) -> HoldoutCohort:
        cohort = repo.get_cohort(cohort_id, transaction)
        ensure_freezable(cohort.status)
        frozen = _next_version(cohort, caller, "COHORT_FROZEN", status=CohortStatus.FROZEN,
                               frozen_at=utcnow(), frozen_by=caller.actor)
        transaction.set(ref, frozen.to_firestore())
        return frozen

    result = run_in_transaction(body)
    cohort_cache.invalidate()  # this instance applies it at once; others within the cache TTL
    return result


def retire_holdout_cohort(caller: Caller, cohort_id: str, reason: str) -> HoldoutCohort:
    """Admin only (API.md §1). FROZEN → RETIRED; the definition stays as frozen (docs/holdouts.md)."""
    ref = repo.cohort_ref(cohort_id)

    def body(transaction: Any) -> HoldoutCohort:
        cohort = repo.get_cohort(cohort_id, transaction)
        running = repo.experiments_using_cohort(cohort_id, (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED),
                                                transaction)
        ensure_retirable(cohort.status, running)
        retired = _next_version(cohort, caller, "COHORT_RETIRED", status=CohortStatus.RETIRED,
                                retired_at=utcnow(), retired_by=caller.actor, retirement_reason=reason)
        transaction.set(ref, retired.to_firestore())
        return retired

    result = run_in_transaction(body)
    cohort_cache.invalidate()
    return result


# --- membership (the hot path) ------------------------------------------------------------------------

def record_first_evaluation(user_id: str, cohorts: tuple[CohortView, ...]) -> None:
    """Record the user's assignment in every active cohort once (in or out: the observed share needs
    both). Skipped for pairs this process recorded recently; elsewhere ``create`` finds it exists."""
    for cohort in cohorts:
        key = (cohort.cohort_id, user_id)
        if key in cohort_cache.recently_recorded:
            continue
        bucket = cohort.bucket(user_id)
        repo.record_assignment(HoldoutAssignment(
            cohort_id=cohort.cohort_id, user_id=user_id, in_holdout=bucket < cohort.limit, bucket=bucket,
            assigned_at=utcnow()))
        cohort_cache.recently_recorded.add(key)


def is_user_in_holdout(caller: Caller, user_id: str | None) -> dict[str, Any]:
    """Membership over all FROZEN cohorts (API.md §3). End users: their own uid only."""
    target = user_id or caller.uid
    if target != caller.uid and not caller.has(Role.SERVICE):
        raise PermissionDenied("You may only ask about your own holdout membership.")
    if not _USER_ID.match(target):  # a caller uid is not validated by the request model
        raise InvalidArgument("The user id cannot be used.", {"fields": [{"path": "userId", "message": "invalid"}]})
    cohorts = cohort_cache.active_cohorts()
    cohort_ids = cohorts_containing(target, cohorts)
    record_first_evaluation(target, cohorts)
    return {"userId": target, "inHoldout": bool(cohort_ids), "cohortIds": cohort_ids}


# --- health -------------------------------------------------------------------------------------------

def get_holdout_health(cohort_id: str) -> dict[str, Any]:
    """Figures by aggregation over per-user documents (store/holdouts.py), thresholds in domain/holdouts.py."""
    from offerlab.stats.frequentist import srm_p_value  # noqa: PLC0415 - scipy: keep it off cold start

    cohort = repo.get_cohort(cohort_id)
    evaluated, assigned = repo.count_assignments(cohort_id)
    contaminated = repo.count_contaminations(cohort_id)
    expected = threshold(cohort.percentage) / BUCKETS  # the exact share of buckets held out
    observed = assigned / evaluated if evaluated else None
    srm = srm_p_value([assigned, evaluated - assigned], [expected, 1 - expected]) if evaluated else None
    verdict = assess_health(status=cohort.status, assigned=assigned, contaminated=contaminated, srm_p=srm,
                            expected_share=expected, observed_share=observed)
    return {
        "cohortId": cohort_id, "status": cohort.status.value, "frozen": cohort.status != CohortStatus.DRAFT,
        "assignedUsers": assigned, "evaluatedUsers": evaluated, "contaminatedUsers": contaminated,
        "contaminationRate": contamination_rate(assigned, contaminated),
        "expectedShare": expected, "observedShare": observed, "srmPValue": srm,
        "health": verdict.level, "issues": verdict.issues,
    }

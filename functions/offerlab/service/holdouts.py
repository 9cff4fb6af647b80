"""Holdout cohort use cases (HoldoutCohortManager): create, edit, freeze, retire, membership, health.

Each state change is one transaction writing the cohort with ``version + 1`` and a ``lastChange``
stamp naming the action (the event the ledger trigger reads). docs/holdouts.md has the lifecycle,
the cache and the health thresholds.
"""
from __future__ import annotations

from typing import Any

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import BUCKETS, new_salt, threshold
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import InvalidArgument, PermissionDenied
from offerlab.domain.holdouts import (
    CohortEventType, CohortView, Scope, assess_health, cohorts_containing, contamination_rate, ensure_editable,
    ensure_freezable, ensure_no_serving_experiment, ensure_retirable,
)
from offerlab.domain.ids import is_document_id
from offerlab.domain.types import DEFAULT_SPILLOVER_POLICY, CohortStatus, ExperimentStatus
from offerlab.service.ports import HoldoutRecords, Store, UnitOfWork
from offerlab.store.documents import CohortScope, HoldoutAssignment, HoldoutCohort, LastChange

# Experiments whose coverage a freeze must not change: running ones (arms are fixed while live) and
# shipped ones (their covering cohorts are recorded at the ship).
COVERAGE_FIXED = (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED, ExperimentStatus.SHIPPED)


def create_holdout_cohort(store: Store, caller: Caller, name: str, percentage: float, description: str,
                          spillover_policy: dict | None, scope: dict | None = None) -> HoldoutCohort:
    """A DRAFT cohort; ``scope`` ``{placements, offerTypes}`` (validated by the api model), empty = global."""
    now = utcnow()
    cohort = HoldoutCohort(
        cohort_id=store.cohorts.new_id(), name=name, description=description, percentage=percentage,
        salt=new_salt(), status=CohortStatus.DRAFT,
        spillover_policy={**DEFAULT_SPILLOVER_POLICY, **(spillover_policy or {})},
        created_by=caller.actor, created_at=now, version=1,
        last_change=LastChange(action=CohortEventType.COHORT_CREATED, actor=caller.actor, at=now, version=1),
        scope=CohortScope.model_validate(scope or {}),
    )
    store.transaction(lambda uow: uow.cohorts.create(cohort))
    return cohort


def write_cohort(uow: UnitOfWork, cohort: HoldoutCohort, caller: Caller, event: CohortEventType,
                 **changes: Any) -> HoldoutCohort:
    """The one write path of a cohort's state: ``version + 1`` and the ``lastChange`` stamp naming the
    event, which the ledger trigger on holdoutCohorts records (docs/ledger.md)."""
    now = utcnow()
    version = cohort.version + 1
    after = cohort.model_copy(update={
        **changes, "version": version,
        "last_change": LastChange(action=event, actor=caller.actor, at=now, version=version),
    })
    uow.cohorts.save(after)
    return after


def update_holdout_cohort(store: Store, caller: Caller, cohort_id: str, changes: dict[str, Any]) -> HoldoutCohort:
    """Edit a DRAFT cohort (name, description, percentage, spillover policy, scope; never the salt)."""
    if not changes:
        raise InvalidArgument("Nothing to change.", {"fields": [{"path": "(payload)", "message": "no field to change"}]})

    def body(uow: UnitOfWork) -> HoldoutCohort:
        cohort = uow.cohorts.get(cohort_id)
        ensure_editable(cohort.status)
        update = dict(changes)
        if update.get("spillover_policy") is not None:
            update["spillover_policy"] = {**cohort.spillover_policy, **update["spillover_policy"]}
        if update.get("scope") is not None:
            update["scope"] = CohortScope.model_validate(update["scope"])
        return write_cohort(uow, cohort, caller, CohortEventType.COHORT_UPDATED, **update)

    return store.transaction(body)


def _scope(cohort: HoldoutCohort) -> Scope:
    return Scope.of(cohort.scope.placements, cohort.scope.offer_types)


def freeze_holdout_cohort(store: Store, caller: Caller, cohort_id: str) -> HoldoutCohort:
    """DRAFT → FROZEN; refused while an experiment its scope includes is RUNNING, PAUSED or SHIPPED: its
    members would switch offers mid-way and those already served would be contaminated from the first day
    (docs/program.md §4). The coverage lock serialises the check against concurrent starts and ships."""
    def body(uow: UnitOfWork) -> HoldoutCohort:
        lock = uow.coverage_lock.read()
        cohort = uow.cohorts.get(cohort_id)
        ensure_freezable(cohort.status)
        scope = _scope(cohort)
        serving = uow.experiments.with_status(COVERAGE_FIXED)
        ensure_no_serving_experiment(scope, [(e.experiment_id, e.placement, e.offer_type) for e in serving])
        now = utcnow()
        frozen = write_cohort(uow, cohort, caller, CohortEventType.COHORT_FROZEN, status=CohortStatus.FROZEN,
                              frozen_at=now, frozen_by=caller.actor)
        uow.coverage_lock.save(lock.model_copy(update={"version": lock.version + 1, "at": now,
                                                       "last_action": f"COHORT_FROZEN:{cohort_id}"}))
        return frozen

    result = store.transaction(body)
    store.holdout_records.cohorts_changed()  # this instance applies it at once; others within the cache TTL
    return result


def retire_holdout_cohort(store: Store, caller: Caller, cohort_id: str, reason: str) -> HoldoutCohort:
    """Admin only (API.md §1). FROZEN → RETIRED; the definition stays as frozen (docs/holdouts.md)."""
    def body(uow: UnitOfWork) -> HoldoutCohort:
        lock = uow.coverage_lock.read()
        cohort = uow.cohorts.get(cohort_id)
        running = uow.cohorts.experiments_using(cohort_id, (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED))
        # A cohort covering a live experiment keeps covering it: its members must not switch arms mid-run.
        live = uow.experiments.with_status((ExperimentStatus.RUNNING, ExperimentStatus.PAUSED))
        running = sorted(set(running) | {e.experiment_id for e in live if cohort_id in e.covering_cohort_ids})
        ensure_retirable(cohort.status, running)
        now = utcnow()
        retired = write_cohort(uow, cohort, caller, CohortEventType.COHORT_RETIRED, status=CohortStatus.RETIRED,
                               retired_at=now, retired_by=caller.actor, retirement_reason=reason)
        uow.coverage_lock.save(lock.model_copy(update={"version": lock.version + 1, "at": now,
                                                       "last_action": f"COHORT_RETIRED:{cohort_id}"}))
        return retired

    result = store.transaction(body)
    store.holdout_records.cohorts_changed()
    return result


# --- membership (the hot path) ------------------------------------------------------------------------

def record_first_evaluation(records: HoldoutRecords, user_id: str, cohorts: tuple[CohortView, ...]) -> None:
    """Record the user's assignment in every active cohort once (in or out: the observed share needs
    both). The store skips pairs this process recorded recently; elsewhere ``create`` finds it exists."""
    for cohort in cohorts:
        if records.assignment_known(cohort.cohort_id, user_id):
            continue
        bucket = cohort.bucket(user_id)
        records.record_assignment(HoldoutAssignment(
            cohort_id=cohort.cohort_id, user_id=user_id, in_holdout=bucket < cohort.limit, bucket=bucket,
            assigned_at=utcnow()))


def is_user_in_holdout(store: Store, caller: Caller, user_id: str | None) -> dict[str, Any]:
    """Membership over all FROZEN cohorts (API.md §3). End users: their own uid only."""
    target = user_id or caller.uid
    if target != caller.uid and not caller.has(Role.SERVICE):
        raise PermissionDenied("You may only ask about your own holdout membership.")
    if not is_document_id(target):  # a caller uid is not validated by the request model
        raise InvalidArgument("The user id cannot be used.", {"fields": [{"path": "userId", "message": "invalid"}]})
    cohorts = store.holdout_records.active_cohorts()
    cohort_ids = cohorts_containing(target, cohorts)
    record_first_evaluation(store.holdout_records, target, cohorts)
    return {"userId": target, "inHoldout": bool(cohort_ids), "cohortIds": cohort_ids}


# --- health -------------------------------------------------------------------------------------------

def get_holdout_health(store: Store, cohort_id: str) -> dict[str, Any]:
    """Figures by aggregation over per-user documents (store/holdouts.py), thresholds in domain/holdouts.py."""
    from offerlab.stats.frequentist import srm_p_value  # noqa: PLC0415 - scipy: keep it off cold start

    cohort = store.cohorts.get(cohort_id)
    evaluated, assigned = store.holdout_records.count_assignments(cohort_id)
    exposed, exposed_members = store.holdout_records.count_program_exposures(cohort_id)
    contaminated = store.holdout_records.count_contaminations(cohort_id)
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
        # Real exposures (API.md §10): users a get_offer answer of a covered experiment or shipped offer reached.
        "exposedUsers": exposed, "exposedHoldoutUsers": exposed_members, "scope": _scope(cohort).as_dict(),
    }

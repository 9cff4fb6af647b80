"""Holdout callables (API.md §3, Holdouts) and the contamination trigger on spillover events."""
from __future__ import annotations

__all__ = [
    "create_holdout_cohort", "update_holdout_cohort", "freeze_holdout_cohort", "retire_holdout_cohort",
    "is_user_in_holdout", "check_spillover", "get_holdout_health", "on_holdout_spillover_event",
]

import logging

from firebase_functions import firestore_fn, https_fn

from offerlab.api import holdouts as m
from offerlab.domain.actors import Role
from offerlab.api.callable import handle
from offerlab.service import holdouts as svc
from offerlab.service import spillover
from offerlab.store import collections as C
from offerlab.store.firestore_store import firestore_store as store

log = logging.getLogger("offerlab.holdouts")


@https_fn.on_call()
def create_holdout_cohort(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CreateHoldoutCohort, lambda caller, p: svc.create_holdout_cohort(
        store(), caller, p.name, p.percentage, p.description, p.spillover_policy,
        p.scope.model_dump() if p.scope is not None else None), roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def update_holdout_cohort(req: https_fn.CallableRequest) -> dict:
    """Edits a DRAFT cohort; FAILED_PRECONDITION once frozen (a frozen cohort never changes again)."""
    return handle(req, m.UpdateHoldoutCohort, lambda caller, p: svc.update_holdout_cohort(
        store(), caller, p.cohort_id, p.model_dump(exclude={"cohort_id"}, exclude_none=True)), roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def freeze_holdout_cohort(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CohortRef, lambda caller, p: svc.freeze_holdout_cohort(store(), caller, p.cohort_id),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def retire_holdout_cohort(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RetireHoldoutCohort, lambda caller, p: svc.retire_holdout_cohort(
        store(), caller, p.cohort_id, p.reason), roles=[Role.ADMIN])


@https_fn.on_call()
def is_user_in_holdout(req: https_fn.CallableRequest) -> dict:
    """Any signed-in user for their own uid; the service role (and admin) for anyone."""
    return handle(req, m.IsUserInHoldout, lambda caller, p: svc.is_user_in_holdout(store(), caller, p.user_id))


@https_fn.on_call()
def check_spillover(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CheckSpillover, lambda caller, p: spillover.check_spillover(
        store(), caller, p.from_user_id, p.to_user_id, p.channel, p.experiment_id), roles=[Role.SERVICE])


@https_fn.on_call()
def get_holdout_health(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CohortRef, lambda caller, p: svc.get_holdout_health(store(), p.cohort_id),
                  roles=[Role.EXPERIMENTER, Role.ANALYST])


@firestore_fn.on_document_created(document=f"{C.HOLDOUT_SPILLOVER_EVENTS}/{{eventId}}")
def on_holdout_spillover_event(event: firestore_fn.Event[firestore_fn.DocumentSnapshot | None]) -> None:
    """Marks FLAGged recipients contaminated (service/spillover.py), at most once per event.

    Not retried on failure (the default): a poison event is logged and dropped rather than retried forever."""
    snapshot = event.data
    event_id = event.params.get("eventId", "")
    try:
        spillover.mark_contamination(store(), event_id, snapshot.to_dict() if snapshot is not None else None)
    except Exception:  # log and drop: the trigger has no caller to tell
        log.exception("contamination trigger failed for spillover event %s", event_id)

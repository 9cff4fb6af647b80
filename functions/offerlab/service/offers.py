"""get_offer (API.md §2, §3): the only way an offer reaches a user.

Hot path, per call on a warm instance: an in-process view of the experiment (store/experiment_cache.py,
TTL ``TTL_SECONDS``), three SHA-256 buckets, and at most one Firestore write — the user's first exposure,
created once (``experimentExposures/{experimentId}_{userId}``, ALREADY_EXISTS ignored) and then
remembered in an in-process LRU so a repeated ask writes nothing.

Who gets what:
* experiment not RUNNING (draft, approved, PAUSED, KILLED, COMPLETED): everyone NOT_ENROLLED with the
  status quo (``controlConfig``); nobody is exposed.
* RUNNING: holdout users → HOLDOUT with ``controlConfig``; users outside coverage → NOT_ENROLLED with
  ``controlConfig``; enrolled users → TREATMENT with ``offerConfig`` or CONTROL with ``controlConfig``.
* no ``experimentId``: the most recently started RUNNING experiment; none running → NOT_ENROLLED,
  ``experimentId`` null, ``offerConfig`` null (the app keeps its built-in default).
* RUNNING past its ``plannedEndDate``: everyone NOT_ENROLLED with the status quo, ``reason: "ended"``,
  nobody exposed (API.md §11).
"""
from __future__ import annotations

from typing import Any

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import Arm, assign_arm
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import PermissionDenied
from offerlab.domain.types import ExperimentStatus
from offerlab.service.ports import Store
from offerlab.store.documents import ExperimentExposure
from offerlab.store.experiment_cache import OfferView


def _target_user(caller: Caller, user_id: str | None) -> str:
    """End users ask for themselves only; the service role (and admin) for anyone (API.md §1)."""
    if user_id is None or user_id == caller.uid:
        return caller.uid
    if caller.has(Role.SERVICE):
        return user_id
    raise PermissionDenied("You may only ask for your own offer.")


def arm_for(view: OfferView, user_id: str) -> Arm:
    if view.status != ExperimentStatus.RUNNING or view.holdout_salt is None or view.holdout_percentage is None:
        return Arm.NOT_ENROLLED
    return assign_arm(user_id=user_id, experiment_salt=view.salt, treatment_percentage=view.treatment_percentage,
                      coverage=view.coverage, holdout_salt=view.holdout_salt, holdout_percentage=view.holdout_percentage)


def _record_exposure(store: Store, view: OfferView, user_id: str, arm: Arm) -> None:
    if store.exposures.known(view.experiment_id, user_id):
        return
    store.exposures.record_first(ExperimentExposure(
        experiment_id=view.experiment_id, user_id=user_id, arm=arm.value, first_exposed_at=utcnow(),
        coverage=view.coverage, stage_index=view.stage_index, experiment_version=view.version,
    ))


def get_offer(store: Store, caller: Caller, user_id: str | None, experiment_id: str | None) -> dict[str, Any]:
    user = _target_user(caller, user_id)
    chosen = experiment_id or store.offer_views.default_experiment_id()
    if chosen is None:
        return {"userId": user, "arm": Arm.NOT_ENROLLED.value, "experimentId": None, "offerConfig": None}
    view = store.offer_views.view(chosen)  # NOT_FOUND for an unknown experimentId
    if view.status == ExperimentStatus.RUNNING and view.planned_end_date is not None and utcnow() >= view.planned_end_date:
        # API.md §11: past its plannedEndDate a RUNNING experiment enrolls nobody and exposes nobody.
        return {"userId": user, "arm": Arm.NOT_ENROLLED.value, "experimentId": view.experiment_id,
                "offerConfig": view.control_config, "reason": "ended"}
    arm = arm_for(view, user)
    if arm in (Arm.HOLDOUT, Arm.CONTROL, Arm.TREATMENT):
        _record_exposure(store, view, user, arm)
    config = view.offer_config if arm is Arm.TREATMENT else view.control_config
    return {"userId": user, "arm": arm.value, "experimentId": view.experiment_id, "offerConfig": config}

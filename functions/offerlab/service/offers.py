"""get_offer (API.md §2, §3, §10): the only way an offer reaches a user.

Who gets what (the rules are domain/program.py's, compiled into the cached views):
* ``placement`` (or neither ``placement`` nor ``experimentId``: placement ``default``): the experiment whose
  traffic segments hold the user's layer bucket decides; a bucket nobody holds gets the placement's shipped
  offer (arm SHIPPED), else NOT_ENROLLED with no config (the app keeps its built-in default).
* ``experimentId``: that experiment decides (a user outside its traffic is NOT_ENROLLED, ``not_in_traffic``);
  a SHIPPED experiment serves its shipped arm.
* Inside an experiment: not RUNNING → NOT_ENROLLED with the status quo (``controlConfig``); a member of any
  cohort covering it → HOLDOUT with the status quo; outside the coverage → NOT_ENROLLED; else TREATMENT
  (``offerConfig``) or CONTROL (``controlConfig``). A shipped offer's covering-cohort members → HOLDOUT.

Hot path, per call on a warm instance: the cached placement (or experiment) view, its hashes, and no
Firestore read at all. Writes happen on a user's first answer only (then remembered in-process):
* the experiment exposure (``{experimentId}_{userId}``) for HOLDOUT, CONTROL and TREATMENT;
* for every cohort covering the deciding experiment or shipped offer, the user's *program exposure*
  (``program:{cohortId}_{userId}``, member or not: the holdout read-out's population, docs/program.md §5)
  and the holdout evaluation record (the health report's denominators);
* at a member's first program exposure, one query of their exposures: a treatment or shipped offer in the
  cohort's scope served to them earlier makes them contaminated (``cause: served``).
* a RUNNING experiment past its ``plannedEndDate`` enrolls and exposes nobody: NOT_ENROLLED with the status
  quo, ``reason: "ended"`` (API.md §11).
"""
from __future__ import annotations

from typing import Any

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import Arm
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import InvalidArgument, PermissionDenied
from offerlab.domain.holdouts import CohortView
from offerlab.domain.placements import DEFAULT_PLACEMENT
from offerlab.domain.program import ExperimentRule, OfferReason, ShippedRule, contaminating, program_id
from offerlab.domain.types import ExperimentStatus
from offerlab.service.holdouts import record_first_evaluation
from offerlab.service.ports import Store, UnitOfWork
from offerlab.store.documents import ExperimentExposure, HoldoutContamination
from offerlab.store.experiment_cache import OfferView

EXPOSED_ARMS = frozenset({Arm.HOLDOUT, Arm.CONTROL, Arm.TREATMENT})
# Answers that come from the program (a running experiment's traffic, a shipped offer), whoever asks.
_UNCOVERED = frozenset({OfferReason.NOT_RUNNING, OfferReason.NOT_IN_TRAFFIC})


def _target_user(caller: Caller, user_id: str | None) -> str:
    """End users ask for themselves only; the service role (and admin) for anyone (API.md §1)."""
    if user_id is None or user_id == caller.uid:
        return caller.uid
    if caller.has(Role.SERVICE):
        return user_id
    raise PermissionDenied("You may only ask for your own offer.")


def arm_for(view: OfferView, user_id: str) -> Arm:
    """The arm ``view``'s experiment gives ``user_id`` when asked by id (reference form for tests)."""
    if view.shipped is not None:
        return view.shipped.decide(user_id)[0]
    return view.rule_or_build().decide(user_id)[0]


def _past_planned_end(view: OfferView) -> bool:
    return (view.status is ExperimentStatus.RUNNING and view.planned_end_date is not None
            and utcnow() >= view.planned_end_date)


def _config(view: OfferView | None, arm: Arm) -> Any:
    if view is None:
        return None
    if arm is Arm.TREATMENT:
        return view.offer_config
    if arm is Arm.SHIPPED:
        return view.shipped_config
    return view.control_config


def _exposure(view: OfferView, scope_id: str, user_id: str, arm: str, served: Arm, reason: OfferReason | None,
              region: str | None, **extra: Any) -> ExperimentExposure:
    return ExperimentExposure(
        experiment_id=scope_id, user_id=user_id, arm=arm, first_exposed_at=utcnow(), coverage=view.coverage,
        stage_index=view.stage_index, experiment_version=view.version, placement=view.placement,
        offer_type=view.offer_type, region=region, served_arm=served.value,
        reason=reason.value if reason else None, **extra)


def _check_contamination(store: Store, cohort: CohortView, user_id: str) -> None:
    """A member's first HOLDOUT answer through ``cohort``: were they ever served what it covers?"""
    served = [(e.experiment_id, e.served_arm or e.arm, e.placement, e.offer_type)
              for e in store.exposures.of_user(user_id)]
    found = contaminating(cohort.scope, served)
    if not found:
        return
    record = HoldoutContamination(user_id=user_id, cohort_id=cohort.cohort_id, contaminated_at=utcnow(),
                                  cause="served", served_exposure_ids=sorted(found))

    def body(uow: UnitOfWork) -> None:
        if not uow.contaminations.exists(cohort.cohort_id, user_id):  # the first record is the one kept
            uow.contaminations.create(cohort.cohort_id, record)

    store.transaction(body)


def _record(store: Store, view: OfferView, rule: ExperimentRule | ShippedRule, user_id: str, arm: Arm,
            reason: OfferReason | None, region: str | None) -> None:
    exposures = store.exposures
    if isinstance(rule, ExperimentRule) and arm in EXPOSED_ARMS and not exposures.known(view.experiment_id, user_id):
        exposures.record_first(_exposure(view, view.experiment_id, user_id, arm.value, arm, reason, region))
    if reason in _UNCOVERED or not rule.covering:
        return
    record_first_evaluation(store.holdout_records, user_id, rule.covering)
    for cohort in rule.covering:
        scope_id = program_id(cohort.cohort_id)
        if exposures.known(scope_id, user_id):
            continue
        member = cohort.contains(user_id)
        created = exposures.record_first(_exposure(
            view, scope_id, user_id, Arm.HOLDOUT.value if member else "PROGRAM", arm, reason, region,
            cohort_id=cohort.cohort_id, in_holdout=member))
        if created and member:
            _check_contamination(store, cohort, user_id)


def get_offer(store: Store, caller: Caller, user_id: str | None, experiment_id: str | None,
              placement: str | None = None, region: str | None = None) -> dict[str, Any]:
    user = _target_user(caller, user_id)
    view: OfferView | None
    if experiment_id is not None:
        view = store.offer_views.view(experiment_id)  # NOT_FOUND for an unknown experimentId
        if placement is not None and placement != view.placement:
            raise InvalidArgument("The experiment is not shown in that placement.",
                                  {"fields": [{"path": "placement", "message": f"the experiment's placement is {view.placement}"}]})
        rule: ExperimentRule | ShippedRule | None = view.shipped or view.rule_or_build()
        arm, reason = rule.decide(user)
    else:
        placed = store.offer_views.placement(placement or DEFAULT_PLACEMENT)
        arm, reason, rule = placed.rule.decide(user)
        view = placed.views.get(rule.experiment_id) if rule is not None else None
    if view is not None and _past_planned_end(view) and arm is not Arm.SHIPPED and reason is not OfferReason.NOT_IN_TRAFFIC:
        arm, reason = Arm.NOT_ENROLLED, OfferReason.ENDED  # API.md §11: enrolls nobody, exposes nobody
    elif rule is not None and view is not None:
        _record(store, view, rule, user, arm, reason, region)
    answer: dict[str, Any] = {
        "userId": user, "arm": arm.value, "experimentId": view.experiment_id if view is not None else None,
        "offerConfig": _config(view, arm), "placement": view.placement if view is not None else (placement or DEFAULT_PLACEMENT),
    }
    if reason is not None:
        answer["reason"] = reason.value
    return answer

"""get_offer (API.md §2, §3, §10): the only way an offer reaches a user.

Who gets what (the rules are domain/program.py's, compiled into the cached views):
* ``placement`` (or neither ``placement`` nor ``experimentId``: placement ``default``): the experiment whose
  traffic segments hold the user's layer bucket decides; a bucket nobody holds gets the placement's shipped
  offer (arm SHIPPED), else NOT_ENROLLED with no config (the app keeps its built-in default).
* ``experimentId``: that experiment decides (a user outside its traffic is NOT_ENROLLED, ``not_in_traffic``);
  a SHIPPED experiment serves its shipped arm.
* Inside an experiment: not RUNNING → NOT_ENROLLED with the status quo (``controlConfig``); a region it may
  not serve → NOT_ENROLLED, reason ``region``; a member of any cohort covering it → HOLDOUT with the status
  quo; outside the coverage → NOT_ENROLLED; else TREATMENT (``offerConfig``) or CONTROL (``controlConfig``).
  A shipped offer: a region it may not serve → NOT_ENROLLED; its covering-cohort members → HOLDOUT.
* RUNNING past its ``plannedEndDate``: NOT_ENROLLED with the status quo, ``reason: "ended"``, nobody
  exposed (API.md §11).
* Pre-enrolment rules (API.md §13, domain/eligibility.py), for an experiment that has any: the user's first
  decision is recorded (an exposure, or an ``offerRefusals`` document) and kept for the experiment's life:
  a user refused stays out (reason ``region`` or ``audience``), an enrolled user keeps their arm (but is
  answered with the status quo wherever the experiment may not serve). An existing subscriber (the
  backend's ``subscriber``, or their ingested history) of a NEW_CUSTOMERS experiment is refused at their
  first decision (reason ``audience``). One read per (instance, user) at most: the decision is remembered.
* Prices (domain/reference_price.py): a served config naming a price is recorded in the placement's price
  history for the request's region (once per day and price per instance); a config shown as a reduction
  (``displayAsDiscount``) gets ``referencePrice`` (the lowest price served there in the 30 days before) and
  ``discountAllowed``.

Hot path, per call on a warm instance: the cached placement (or experiment) view, its hashes, and no
Firestore read at all. Writes happen on a user's first answer only (then remembered in-process):
* the experiment exposure (``{experimentId}_{userId}``) for HOLDOUT, CONTROL and TREATMENT;
* for every cohort covering the deciding experiment or shipped offer, the user's *program exposure*
  (``program:{cohortId}_{userId}``, member or not: the holdout read-out's population, docs/program.md §5)
  and the holdout evaluation record (the health report's denominators);
* at a member's first program exposure, one query of their exposures: a treatment or shipped offer in the
  cohort's scope served to them earlier makes them contaminated (``cause: served``).
"""
from __future__ import annotations

from datetime import date
from typing import Any

from offerlab.domain.actors import Caller, Role
from offerlab.domain.assignment import Arm
from offerlab.domain.clock import utcnow
from offerlab.domain.eligibility import Audience, RefusalReason
from offerlab.domain.errors import InvalidArgument, PermissionDenied
from offerlab.domain.money import parse_amount
from offerlab.domain.holdouts import CohortView
from offerlab.domain.iso import normalize_code
from offerlab.domain.placements import DEFAULT_PLACEMENT
from offerlab.domain.program import ExperimentRule, OfferReason, ShippedRule, contaminating, program_id
from offerlab.domain.types import ExperimentStatus
from offerlab.domain.reference_price import Served, judge, served_price, shown_as_discount, window
from offerlab.service.holdouts import record_first_evaluation
from offerlab.service.ports import Store, UnitOfWork
from offerlab.store.documents import ExperimentExposure, HoldoutContamination, OfferRefusal, PriceServed
from offerlab.store.experiment_cache import OfferView

EXPOSED_ARMS = frozenset({Arm.HOLDOUT, Arm.CONTROL, Arm.TREATMENT})
# Answers that are not part of the program's population (a running experiment's traffic, a shipped offer):
# the experiment is not running, the user is outside its traffic, or kept out before enrolment.
_UNCOVERED = frozenset({OfferReason.NOT_RUNNING, OfferReason.NOT_IN_TRAFFIC, OfferReason.REGION,
                        OfferReason.AUDIENCE, OfferReason.ENDED})


def _ended(view: OfferView) -> bool:
    return view.status is ExperimentStatus.RUNNING and view.planned_end_date is not None \
        and utcnow() >= view.planned_end_date


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


def _refuse(store: Store, view: OfferView, user_id: str, reason: RefusalReason, region: str | None,
            source: str | None = None) -> None:
    store.eligibility.record_refusal(OfferRefusal(
        experiment_id=view.experiment_id, user_id=user_id, reason=reason.value, region=region,
        subscriber_source=source, placement=view.placement, experiment_version=view.version, refused_at=utcnow()))


def _first_decision(store: Store, view: OfferView, rule: ExperimentRule, user_id: str, arm: Arm,
                    reason: OfferReason | None, region: str | None, subscriber: bool | None
                    ) -> tuple[Arm, OfferReason | None]:
    """Apply the recorded first decision and the audience rule (module docstring) to the hashes' answer."""
    eligibility = rule.eligibility
    if reason is OfferReason.REGION:
        # Refused now. It is the user's first decision only if the hashes would have exposed them and
        # nothing was recorded yet (an enrolled user keeps their arm; the status quo is all they get here).
        if rule.assign(user_id.encode())[0] in EXPOSED_ARMS:
            known = store.eligibility.known(view.experiment_id, user_id)
            decision = known or store.eligibility.first_decision(view.experiment_id, user_id, with_customer=False)
            if not decision.decided:
                _refuse(store, view, user_id, RefusalReason.REGION, region)
        return arm, reason
    if arm not in EXPOSED_ARMS:
        return arm, reason  # not covered yet: not evaluated yet
    new_customers = eligibility.audience is Audience.NEW_CUSTOMERS
    decision = store.eligibility.known(view.experiment_id, user_id)
    if decision is None or (not decision.decided and new_customers and decision.customer_active is None):
        decision = store.eligibility.first_decision(view.experiment_id, user_id,
                                                    with_customer=new_customers and subscriber is not True)
    if decision.exposed:
        return arm, reason
    if decision.refusal is not None:
        return Arm.NOT_ENROLLED, OfferReason(decision.refusal)
    if new_customers and (subscriber is True or decision.customer_active):
        _refuse(store, view, user_id, RefusalReason.AUDIENCE, region, "backend" if subscriber is True else "history")
        return Arm.NOT_ENROLLED, OfferReason.AUDIENCE
    return arm, reason


def _prices(store: Store, answer: dict[str, Any], view: OfferView | None, arm: Arm, region: str | None) -> None:
    """Record the price served (the price history) and, for a reduction, add its reference price."""
    config = answer["offerConfig"]
    price = served_price(config, region)
    if price is None:
        return
    discount = shown_as_discount(config)
    now = utcnow()
    today = now.date()
    placement = answer["placement"]
    if region:
        store.prices.record_served(PriceServed(
            placement=placement, region=region, day=today.isoformat(), currency=price.currency,
            amount=format(price.amount.normalize(), "f"), discount=discount,
            experiment_id=view.experiment_id if view is not None else None, arm=arm.value, first_served_at=now))
    if not discount:
        return
    history = []
    if region:
        first, last = window(today)
        history = [Served(date.fromisoformat(h.day), h.currency, parse_amount(h.amount), h.discount)
                   for h in store.prices.served_between(placement, region, first.isoformat(), last.isoformat())]
    judged = judge(price, history, today)
    answer["referencePrice"] = float(judged.reference) if judged.reference is not None else None
    answer["discountAllowed"] = judged.discount_allowed


def get_offer(store: Store, caller: Caller, user_id: str | None, experiment_id: str | None,
              placement: str | None = None, region: str | None = None, subscriber: bool | None = None
              ) -> dict[str, Any]:
    user = _target_user(caller, user_id)
    region = normalize_code(region) if region else None  # the api validated it (ISO 3166-1 alpha-2)
    if subscriber is not None and not caller.has(Role.SERVICE):
        # The trust model (docs/regions.md §2): an end user could claim "no subscription" to see a new
        # customer's price; only the backend, from receipts it verified with the store, may say.
        raise PermissionDenied("Only the backend (service role) may state a user's subscription status.")
    view: OfferView | None
    if experiment_id is not None:
        view = store.offer_views.view(experiment_id)  # NOT_FOUND for an unknown experimentId
        if placement is not None and placement != view.placement:
            raise InvalidArgument("The experiment is not shown in that placement.",
                                  {"fields": [{"path": "placement", "message": f"the experiment's placement is {view.placement}"}]})
        rule: ExperimentRule | ShippedRule | None = view.shipped or view.rule_or_build()
        arm, reason = rule.decide(user, region)
    else:
        placed = store.offer_views.placement(placement or DEFAULT_PLACEMENT)
        arm, reason, rule = placed.rule.decide(user, region)
        view = placed.views.get(rule.experiment_id) if rule is not None else None
    if isinstance(rule, ExperimentRule) and view is not None and _ended(view) and reason is not OfferReason.NOT_IN_TRAFFIC:
        # API.md §11: past its plannedEndDate a RUNNING experiment enrolls nobody and exposes nobody.
        arm, reason = Arm.NOT_ENROLLED, OfferReason.ENDED
    if isinstance(rule, ExperimentRule) and view is not None and rule.eligibility.has_rules \
            and reason not in (OfferReason.NOT_RUNNING, OfferReason.NOT_IN_TRAFFIC, OfferReason.ENDED):
        arm, reason = _first_decision(store, view, rule, user, arm, reason, region, subscriber)
    if rule is not None and view is not None:
        _record(store, view, rule, user, arm, reason, region)
    answer: dict[str, Any] = {
        "userId": user, "arm": arm.value, "experimentId": view.experiment_id if view is not None else None,
        "offerConfig": _config(view, arm), "placement": view.placement if view is not None else (placement or DEFAULT_PLACEMENT),
    }
    if reason is not None:
        answer["reason"] = reason.value
    _prices(store, answer, view, arm, region)
    return answer

"""The program of experiments (API.md §10): coverage, placement allocation, shipping.

* ``covering_cohort_ids``: the FROZEN cohorts whose scope includes an experiment, read inside the
  transaction that records them (the start, the ship approval).
* ``allocation_reads`` / ``allocate_traffic``: the start's placement allocation (domain/placements.py);
  the placement document and the coverage lock are read and written in the start's own transaction.
* ``ship_experiment``, ``approve_ship``, ``reject_ship``, ``unship_experiment``: the shipping lifecycle,
  every step through the one write path (service/transitions.py).

**A second ship in one placement** (docs/program.md §7): a ship request is accepted while another
experiment of the placement is shipped; when its last approval lands, it *replaces* the shipped one in
the same transaction (that one returns to COMPLETED with an ``EXPERIMENT_UNSHIPPED`` event naming its
successor). The placement never serves two shipped offers, and never none in between.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from offerlab.domain.actors import Actor, Caller, actor_of
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition, NotFound
from offerlab.domain.holdouts import Scope
from offerlab.domain.lifecycle import LIVE, Command, Transition, check_actor, check_not_already_approved, plan_transition
from offerlab.domain.placements import DEFAULT_COOLDOWN, Capacity, Holder, plan_capacity
from offerlab.domain.program import covers
from offerlab.domain.types import CohortStatus, ExperimentStatus
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import transition_experiment, write_experiment
from offerlab.store.documents import (
    Approval, HoldoutCohort, LastChange, OfferExperiment, PlacementHolder, PlacementLayer, ProgramLock, Ship,
    TrafficSegment,
)

ENDED = frozenset({ExperimentStatus.COMPLETED, ExperimentStatus.KILLED, ExperimentStatus.SHIP_PENDING_APPROVAL,
                   ExperimentStatus.SHIPPED})


def placement_cooldown() -> timedelta:
    """How long an ended experiment keeps its layer buckets (domain/placements.py): OFFERLAB_PLACEMENT_COOLDOWN_HOURS,
    default 7 days."""
    hours = os.environ.get("OFFERLAB_PLACEMENT_COOLDOWN_HOURS")
    return timedelta(hours=float(hours)) if hours else DEFAULT_COOLDOWN


def scope_of(cohort: HoldoutCohort) -> Scope:
    return Scope.of(cohort.scope.placements, cohort.scope.offer_types)


def covering_cohort_ids(frozen: list[HoldoutCohort], experiment: OfferExperiment) -> list[str]:
    """The FROZEN cohorts covering ``experiment`` (API.md §10), in a stable order (freezing time, id)."""
    ordered = sorted(frozen, key=lambda c: (c.frozen_at.timestamp() if c.frozen_at else 0.0, c.cohort_id))
    return [c.cohort_id for c in ordered if covers(c.status, scope_of(c), experiment.placement, experiment.offer_type)]


def touch_lock(uow: UnitOfWork, lock: ProgramLock, action: str, now: datetime) -> None:
    """Advance the coverage lock (read earlier in the same transaction): concurrent coverage changes conflict."""
    uow.coverage_lock.save(lock.model_copy(update={"version": lock.version + 1, "last_action": action, "at": now}))


# --- allocation at the start --------------------------------------------------------------------------


@dataclass
class AllocationReads:
    """What the start reads for the program rules (before any write)."""

    lock: ProgramLock
    layer: PlacementLayer | None
    holders: list[tuple[PlacementHolder, OfferExperiment | None]]
    frozen: list[HoldoutCohort]


def allocation_reads(uow: UnitOfWork, experiment: OfferExperiment) -> AllocationReads:
    lock = uow.coverage_lock.read()
    layer = uow.placements.find(experiment.placement)
    holders = []
    for holder in (layer.holders if layer else []):
        if holder.experiment_id == experiment.experiment_id:
            continue
        try:
            holders.append((holder, uow.experiments.get(holder.experiment_id)))
        except NotFound:  # a holder that no longer exists holds nothing
            holders.append((holder, None))
    return AllocationReads(lock, layer, holders, uow.cohorts.with_status(CohortStatus.FROZEN))


def _holder(holder: PlacementHolder, experiment: OfferExperiment | None) -> Holder:
    segments = tuple((s.start, s.end) for s in holder.segments)
    if experiment is None:
        return Holder(holder.experiment_id, segments, live=False, ended_at=holder.since)
    return Holder(holder.experiment_id, segments, live=experiment.status in LIVE,
                  ended_at=experiment.ended_at if experiment.status in ENDED else None)


def plan_allocation(reads: AllocationReads, experiment: OfferExperiment, now: datetime) -> Capacity:
    holders = [_holder(h, e) for h, e in reads.holders]
    return plan_capacity(experiment.placement, experiment.traffic_percentage, holders, now, placement_cooldown())


def write_allocation(uow: UnitOfWork, reads: AllocationReads, experiment: OfferExperiment, capacity: Capacity,
                     actor: str, now: datetime) -> None:
    """The placement document with this experiment's hold added (holders past their cooldown pruned),
    and the coverage lock advanced."""
    cooldown = placement_cooldown()
    kept = [h for h, e in reads.holders if _holder(h, e).holds(now, cooldown)]
    segments = [TrafficSegment(start=s, end=e) for s, e in capacity.segments or ()]
    kept.append(PlacementHolder(experiment_id=experiment.experiment_id, segments=segments, since=now))
    layer = reads.layer or PlacementLayer(placement=experiment.placement)
    version = layer.version + 1
    uow.placements.save(layer.model_copy(update={
        "holders": kept, "version": version,
        "last_change": LastChange(action="EXPERIMENT_STARTED", actor=actor, at=now, version=version)}))
    touch_lock(uow, reads.lock, f"EXPERIMENT_STARTED:{experiment.experiment_id}", now)


# --- shipping -----------------------------------------------------------------------------------------


def ship_experiment(store: Store, caller: Caller, experiment_id: str, arm: str, reason: str) -> OfferExperiment:
    """COMPLETED → SHIP_PENDING_APPROVAL (author or admin); the experiment's approvers then decide."""
    actor = actor_of(caller)

    def change(experiment: OfferExperiment, transition: Transition, now: datetime):
        ship = Ship(arm=arm, reason=reason, requested_by=actor.name, requested_at=now)
        config = experiment.offer_config if arm == "TREATMENT" else experiment.control_config
        payload = {"arm": arm, "reason": reason, "placement": experiment.placement, "shippedConfig": config,
                   "approvers": experiment.approvers}
        return {"ship": ship, "status_reason": None}, payload

    return store.transaction(lambda uow: transition_experiment(uow, experiment_id, Command.SHIP, actor, change))


def approve_ship(uow: UnitOfWork, experiment: OfferExperiment, actor: Actor, comment: str | None) -> OfferExperiment:
    """One approval of a ship request (inside the caller's transaction; the experiment already read).
    The last one ships: coverage recorded, the placement document points at it, a shipped predecessor in
    the placement is replaced (module docstring)."""
    ship = experiment.ship
    if ship is None:
        raise FailedPrecondition("The experiment has no ship request.")
    check_not_already_approved(actor.email, ship.approvals)
    approvals_after = set(ship.approvals) | {actor.email}
    transition = plan_transition(Command.APPROVE, experiment.status, approvals_after=approvals_after,
                                 approvers=experiment.approvers)
    now = utcnow()
    approvals = {**ship.approvals, actor.email: Approval(approver=actor.email, approved_at=now, comment=comment)}
    payload: dict[str, Any] = {"approver": actor.email, "comment": comment, "approved": sorted(approvals_after),
                               "required": sorted(experiment.approvers), "arm": ship.arm}
    if transition.to_status is not ExperimentStatus.SHIPPED:
        after = experiment.model_copy(update={"ship": ship.model_copy(update={"approvals": approvals})})
        return write_experiment(uow, experiment, after, transition, actor.name, now, payload)
    # The last approval: every read first (lock, placement, cohorts, the predecessor), then the writes.
    lock = uow.coverage_lock.read()
    layer = uow.placements.find(experiment.placement) or PlacementLayer(placement=experiment.placement)
    frozen = uow.cohorts.with_status(CohortStatus.FROZEN)
    previous_id = layer.shipped_experiment_id if layer.shipped_experiment_id != experiment.experiment_id else None
    previous = uow.experiments.get(previous_id) if previous_id else None
    covering = covering_cohort_ids(frozen, experiment)
    shipped = ship.model_copy(update={"approvals": approvals, "shipped_at": now, "covering_cohort_ids": covering})
    after = experiment.model_copy(update={"status": transition.to_status, "ship": shipped})
    payload.update(placement=experiment.placement, coveringCohortIds=covering,
                   shippedConfig=experiment.offer_config if ship.arm == "TREATMENT" else experiment.control_config,
                   replaces=previous.experiment_id if previous is not None and previous.status is ExperimentStatus.SHIPPED else None)
    committed = write_experiment(uow, experiment, after, transition, actor.name, now, payload)
    if previous is not None and previous.status is ExperimentStatus.SHIPPED:
        _unship(uow, previous, actor.name, now, f"replaced by the ship of {experiment.experiment_id}",
                superseded_by=experiment.experiment_id)
    version = layer.version + 1
    uow.placements.save(layer.model_copy(update={
        "shipped_experiment_id": experiment.experiment_id, "version": version,
        "last_change": LastChange(action=transition.event_type, actor=actor.name, at=now, version=version)}))
    touch_lock(uow, lock, f"{transition.event_type}:{experiment.experiment_id}", now)
    return committed


def reject_ship(uow: UnitOfWork, experiment: OfferExperiment, actor: Actor, reason: str) -> OfferExperiment:
    """SHIP_PENDING_APPROVAL → COMPLETED; the launch approvals stay as they were."""
    def change(e: OfferExperiment, transition: Transition, now: datetime):
        ship = e.ship.model_copy(update={"rejected_by": actor.email, "rejection_reason": reason}) if e.ship else None
        return {"ship": ship}, {"reason": reason, "arm": e.ship.arm if e.ship else None,
                                "shipApprovalsVoided": sorted(e.ship.approvals) if e.ship else []}

    return transition_experiment(uow, experiment.experiment_id, Command.REJECT, actor, change)


def _unship(uow: UnitOfWork, experiment: OfferExperiment, actor: str, now: datetime, reason: str,
            superseded_by: str | None = None) -> OfferExperiment:
    transition = plan_transition(Command.UNSHIP, experiment.status)
    ship = experiment.ship.model_copy(update={"unshipped_at": now, "unshipped_by": actor, "unship_reason": reason}) \
        if experiment.ship else None
    after = experiment.model_copy(update={"status": transition.to_status, "ship": ship})
    payload = {"reason": reason, "placement": experiment.placement, "arm": experiment.ship.arm if experiment.ship else None}
    if superseded_by:
        payload["supersededBy"] = superseded_by
    return write_experiment(uow, experiment, after, transition, actor, now, payload)


def unship_experiment(store: Store, caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    """SHIPPED → COMPLETED (admin): the placement's users are back on the status quo."""
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> OfferExperiment:
        experiment = uow.experiments.get(experiment_id)
        check_actor(Command.UNSHIP, actor, author=experiment.author, approvers=experiment.approvers)
        plan_transition(Command.UNSHIP, experiment.status)  # the refusal before any other read
        layer = uow.placements.find(experiment.placement)
        now = utcnow()
        committed = _unship(uow, experiment, actor.name, now, reason)
        if layer is not None and layer.shipped_experiment_id == experiment_id:
            version = layer.version + 1
            uow.placements.save(layer.model_copy(update={
                "shipped_experiment_id": None, "version": version,
                "last_change": LastChange(action="EXPERIMENT_UNSHIPPED", actor=actor.name, at=now, version=version)}))
        return committed

    return store.transaction(body)

"""Spillover isolation use cases: ``check_spillover`` and the contamination trigger (docs/holdouts.md).

``check_spillover`` decides (domain/spillover.py) and records the call in ``holdoutSpilloverEvents``
(one ``create``: the event is the only state it writes). The Firestore trigger on that collection then
marks flagged recipients contaminated, once per (cohort or experiment, user), through ``apply_once``.
"""
from __future__ import annotations

import logging
from typing import Any

from offerlab.domain.actors import Caller
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from offerlab.domain.holdouts import CohortView
from offerlab.domain.spillover import ExperimentView, SpilloverDecision, decide
from offerlab.domain.types import SpilloverChannel
from offerlab.service.aggregation import exclude_user
from offerlab.service.holdouts import record_first_evaluation
from offerlab.service.ports import Store, UnitOfWork
from offerlab.store.documents import HoldoutContamination, HoldoutSpilloverEvent

log = logging.getLogger("offerlab.spillover")

CONTAMINATION_SCOPE = "holdout-contamination"


def _experiment_view(store: Store, experiment_id: str, active: tuple[CohortView, ...]) -> ExperimentView:
    experiment = store.experiments.get(experiment_id)  # NOT_FOUND when unknown: nothing is recorded
    holdout = next((c for c in active if c.cohort_id == experiment.holdout_cohort_id), None)
    if holdout is None:  # not frozen (yet), or retired: its definition still decides the HOLDOUT arm
        try:
            cohort = store.cohorts.get(experiment.holdout_cohort_id)
        except NotFound:
            raise FailedPrecondition("The experiment's holdout cohort does not exist.") from None
        holdout = CohortView.of(cohort.cohort_id, cohort.salt, cohort.percentage, cohort.spillover_policy)
    # The same decision get_offer makes (its traffic, every covering cohort): the cached view's rule.
    rule = store.offer_views.view(experiment_id).rule_or_build()
    return ExperimentView(experiment_id, experiment.salt, experiment.treatment_percentage, experiment.coverage,
                          holdout, rule)


def check_spillover(store: Store, caller: Caller, from_user_id: str, to_user_id: str, channel: SpilloverChannel,
                    experiment_id: str | None) -> dict[str, Any]:
    if from_user_id == to_user_id:  # refused before anything is read or written
        raise InvalidArgument("A user cannot pass a benefit to themselves.",
                              {"fields": [{"path": "toUserId", "message": "must differ from fromUserId"}]})
    records = store.holdout_records
    active = records.active_cohorts()
    experiment = _experiment_view(store, experiment_id, active) if experiment_id else None
    decision = decide(from_user_id, to_user_id, channel, list(active), experiment)
    event_id = records.new_spillover_event_id()
    records.record_spillover_event(event_id, _event(caller, from_user_id, to_user_id, channel, experiment_id, decision))
    # Both users were evaluated against every active cohort: record it (the health report's
    # denominators), so a contaminated user is always also a counted one.
    record_first_evaluation(records, from_user_id, active)
    record_first_evaluation(records, to_user_id, active)
    result: dict[str, Any] = {
        "violation": decision.violation, "action": decision.action.value, "reason": decision.reason,
        "eventId": event_id, "cohortIds": decision.cohort_ids,
    }
    if experiment is not None:
        result.update(experimentId=experiment_id, fromArm=decision.from_arm.value, toArm=decision.to_arm.value)
    return result


def _event(caller: Caller, from_user_id: str, to_user_id: str, channel: SpilloverChannel,
           experiment_id: str | None, decision: SpilloverDecision) -> HoldoutSpilloverEvent:
    return HoldoutSpilloverEvent(
        from_user_id=from_user_id, to_user_id=to_user_id, channel=channel, experiment_id=experiment_id,
        violation=decision.violation, action=decision.action, reason=decision.reason,
        cohort_ids=decision.cohort_ids, actor=caller.actor, recorded_at=utcnow(),
        contaminated_cohort_ids=decision.contaminated_cohort_ids,
        contaminates_experiment=decision.contaminates_experiment,
        from_arm=decision.from_arm.value if decision.from_arm else None,
        to_arm=decision.to_arm.value if decision.to_arm else None,
    )


def contaminations_of(event_id: str, event: HoldoutSpilloverEvent) -> list[tuple[str, HoldoutContamination]]:
    """The (scope id, record) pairs a recorded spillover event asks for (empty unless it was FLAGged)."""
    now = utcnow()
    common = dict(user_id=event.to_user_id, channel=event.channel, from_user_id=event.from_user_id,
                  spillover_event_id=event_id, contaminated_at=now)
    records = [(cohort_id, HoldoutContamination(cohort_id=cohort_id, **common))
               for cohort_id in dict.fromkeys(event.contaminated_cohort_ids)]
    if event.contaminates_experiment and event.experiment_id:
        records.append((event.experiment_id, HoldoutContamination(
            experiment_id=event.experiment_id, arm=event.to_arm, **common)))
    return records


def mark_contamination(store: Store, event_id: str, data: dict[str, Any] | None) -> int:
    """The trigger's effect: create the contamination records once. Returns how many were created now.

    Idempotent twice over: ``apply_once`` skips a redelivered event, and a record that exists already
    (the user was contaminated by an earlier event) is kept as it is. A malformed event is logged and
    dropped (returns 0): retrying a poison message would never succeed."""
    try:
        event = HoldoutSpilloverEvent.from_firestore(data or {})
    except ValueError:
        log.error("dropping malformed spillover event %s", event_id)
        return 0
    records = contaminations_of(event_id, event)
    if not records:
        return 0
    created = [0]

    def effect(uow: UnitOfWork) -> None:
        # Reads first, then writes: the first contamination of a user is the one kept.
        missing = [(scope, record) for scope, record in records if not uow.contaminations.exists(scope, record.user_id)]
        for scope, record in missing:
            uow.contaminations.create(scope, record)
        created[0] = len(missing)

    store.apply_once(CONTAMINATION_SCOPE, event_id, effect)
    # On every delivery (idempotent): the contaminated user leaves the kept streamed sums of the
    # experiment, or of the experiments whose holdout cohort the contamination is in.
    for scope, record in records:
        if record.experiment_id is not None:
            exclude_user(store, record.user_id, "spillover", [record.experiment_id])
        elif record.cohort_id is not None:
            exclude_user(store, record.user_id, "spillover", cohort_id=record.cohort_id)
    return created[0]

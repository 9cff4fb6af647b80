"""The guardrail sweep's fan-out: one Pub/Sub message per RUNNING experiment per tick.

    guardrail_sweep (scheduled, every 5 minutes)
        → publish {experimentId, tick} to ``guardrail-checks`` for each RUNNING experiment
    on_guardrail_check (Pub/Sub function, one delivery per experiment, in parallel)
        → evaluate its guardrails (read-only) → on a violation, act inside
          ``apply_once("guardrail-check", f"{experimentId}:{tick}")``

So one slow or failing experiment never blocks the others, thousands are checked in parallel, and a tick
delivered twice (Pub/Sub is at-least-once; the scheduler may retry; every worker runs the function once
when it starts) acts at most once per experiment. A malformed message, or one naming an experiment that
is gone or no longer running, is logged and dropped (never retried forever).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import enum

from offerlab.domain.errors import NotFound
from offerlab.domain.fanout import parse_check_message, tick_id, tick_stamp
from offerlab.domain.types import ExperimentStatus
from offerlab.service import guardrails
from offerlab.service.ports import Store, UnitOfWork

log = logging.getLogger("offerlab.sweeps")

GUARDRAIL_TOPIC = "guardrail-checks"
IDEMPOTENCY_SCOPE = "guardrail-check"


def guardrail_sweep(store: Store, at: datetime) -> int:
    """Publish one check per RUNNING experiment for the tick ``at``; returns how many were published."""
    ids = store.experiments.ids_with_status([ExperimentStatus.RUNNING])
    if ids:
        stamp = tick_stamp(at)
        store.messages.publish_many(GUARDRAIL_TOPIC, [{"experimentId": i, "tick": stamp} for i in ids])
    return len(ids)


class CheckStatus(str, enum.Enum):
    ACTED = "ACTED"
    NO_VIOLATION = "NO_VIOLATION"
    ALREADY_PROCESSED = "ALREADY_PROCESSED"
    SKIPPED = "SKIPPED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class CheckOutcome:
    status: CheckStatus
    action: str = guardrails.NO_ACTION
    reason: str = ""


def handle_guardrail_check(store: Store, data: Any) -> CheckOutcome:
    try:
        experiment_id, at = parse_check_message(data)
    except ValueError as err:
        return CheckOutcome(CheckStatus.REJECTED, reason=str(err)[:300])
    try:
        experiment = store.experiments.get(experiment_id)
    except NotFound:
        return CheckOutcome(CheckStatus.SKIPPED, reason="no such experiment")
    if experiment.status is not ExperimentStatus.RUNNING:
        return CheckOutcome(CheckStatus.SKIPPED, reason=f"the experiment is {experiment.status.value}")
    if guardrails.past_planned_end(experiment, at):
        raise_planned_end_alert(store, experiment, at)
    checks = guardrails.check_experiment(store, experiment)
    violations = [c for c in checks if c.breached]
    if not violations:
        return CheckOutcome(CheckStatus.NO_VIOLATION)
    tick = tick_id(at)
    taken: list[Any] = []

    def effect(uow: UnitOfWork) -> None:
        taken.clear()  # the body may be retried on contention
        taken.append(guardrails.act_on_violations(uow, experiment_id, violations,
                                                  via=f"guardrail_sweep {tick}", key=tick, now=at))

    if not store.apply_once(IDEMPOTENCY_SCOPE, f"{experiment_id}:{tick}", effect):
        return CheckOutcome(CheckStatus.ALREADY_PROCESSED)
    action = taken[0] if taken else None
    return CheckOutcome(CheckStatus.ACTED, action=action.value if action else guardrails.NO_ACTION)


PLANNED_END_SCOPE = "planned-end"
PLANNED_END_ALERT = "PLANNED_END_PASSED"


def planned_end_alert_id(experiment_id: str) -> str:
    return f"planned_end_{experiment_id}"


def raise_planned_end_alert(store: Store, experiment: Any, at: datetime) -> bool:
    """API.md §11: a RUNNING experiment past its plannedEndDate raises an alert (once; it stays open, and
    blocks the rollout, until acknowledged; monitor_experiment reports the issue until it is completed).
    get_offer already enrolls nobody past the date (service/offers.py, ``reason: "ended"``)."""
    alert = planned_end_alert_id(experiment.experiment_id)

    def effect(uow: UnitOfWork) -> None:
        uow.alerts.create(alert, {
            "alertId": alert, "type": PLANNED_END_ALERT, "severity": "WARNING", "experimentId": experiment.experiment_id,
            "chainId": experiment.experiment_id, "plannedEndDate": experiment.planned_end_date,
            "reason": "The experiment is past its planned end date: it enrolls nobody; complete it.",
            "actor": guardrails.MONITOR_ACTOR, "detectedAt": at, "raisedAt": at, "acknowledged": False,
        })

    return store.apply_once(PLANNED_END_SCOPE, experiment.experiment_id, effect)

"""Rollout callables (API.md §3, Rollouts), the ``rollout_sweep`` schedule (API.md §6) and its fan-out
handler (topic ``rollout-checks``). create_rollout_plan is the lifecycle's (service/rollout_plans.py); the
controller is service/rollouts.py (docs/rollout.md)."""
from __future__ import annotations

__all__ = [
    "create_rollout_plan", "start_rollout", "check_stage_progress", "progress_rollout", "pause_rollout",
    "rollback_rollout", "abort_rollout", "rollout_sweep", "on_rollout_check",
]

import logging
from typing import Any

from firebase_functions import https_fn, pubsub_fn, scheduler_fn

from offerlab.api import rollouts as m
from offerlab.domain.actors import Role
from offerlab.api.callable import handle
from offerlab.api.delivery import PoisonMessage, deliver
from offerlab.service import rollout_plans as svc
from offerlab.store.firestore_store import firestore_store as store

log = logging.getLogger("offerlab.rollouts")

CHECK_TOPIC = "rollout-checks"          # = service.rollouts.CHECK_TOPIC (kept literal: no heavy import here)


def _controller():
    from offerlab.service import rollouts  # noqa: PLC0415 - keeps main's import light

    return rollouts


@https_fn.on_call()
def create_rollout_plan(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CreateRolloutPlan, lambda c, p: svc.create_rollout_plan(store(), c, p), roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def start_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutRef, lambda c, p: _controller().start_rollout(store(), c, p.experiment_id),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def check_stage_progress(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutRef, lambda c, p: _controller().check_stage_progress(store(), c, p.experiment_id),
                  roles=[Role.EXPERIMENTER, Role.ANALYST])


@https_fn.on_call()
def progress_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutRef, lambda c, p: _controller().progress_rollout(store(), c, p.experiment_id),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def pause_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutWithReason, lambda c, p: _controller().pause_rollout(store(), c, p.experiment_id, p.reason),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def rollback_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutWithReason,
                  lambda c, p: _controller().rollback_rollout(store(), c, p.experiment_id, p.reason), roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def abort_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutWithReason, lambda c, p: _controller().abort_rollout(store(), c, p.experiment_id, p.reason),
                  roles=[Role.ADMIN])


@scheduler_fn.on_schedule(schedule="every 15 minutes")
def rollout_sweep(event: scheduler_fn.ScheduledEvent) -> None:
    """*now* is the tick's ``X-CloudScheduler-ScheduleTime`` (API.md §6; the SDK falls back to the wall clock)."""
    result = _controller().sweep(store(), event.schedule_time)
    log.info("rollout_sweep: %s", result)


@pubsub_fn.on_message_published(topic=CHECK_TOPIC, retry=True)
def on_rollout_check(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    """One plan at one tick: idempotent (apply_once per experiment and tick). Delivery policy: api/delivery.py."""

    def work(data: Any, message_id: str) -> None:
        experiment_id, tick = _check(data)
        outcome = _controller().run_step(store(), experiment_id, tick)
        log.info("rollout check %s: %s at %s → %s", message_id, experiment_id, tick, outcome)

    deliver("rollout check", event, work)


def _check(data: Any) -> tuple[str, str]:
    from offerlab.domain.fanout import parse_check_message  # noqa: PLC0415

    try:
        experiment_id, _ = parse_check_message(data)
    except ValueError as err:
        raise PoisonMessage(str(err)) from None
    return experiment_id, data["tick"]  # the step keys its idempotency on the tick as published

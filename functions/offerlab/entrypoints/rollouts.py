"""Rollout callables (API.md §3, Rollouts), the ``rollout_sweep`` schedule (API.md §6) and its fan-out
handler (topic ``rollout-checks``). create_rollout_plan is the lifecycle's (service/rollout_plans.py); the
controller is service/rollouts.py (docs/rollout.md)."""
from __future__ import annotations

__all__ = [
    "create_rollout_plan", "start_rollout", "check_stage_progress", "progress_rollout", "pause_rollout",
    "rollback_rollout", "abort_rollout", "rollout_sweep", "on_rollout_check",
]

import logging
from datetime import datetime, timedelta, timezone

from firebase_functions import https_fn, pubsub_fn, scheduler_fn

from offerlab.api import rollouts as m
from offerlab.api.auth import Role
from offerlab.api.callable import handle
from offerlab.service import rollout_plans as svc

log = logging.getLogger("offerlab.rollouts")

CHECK_TOPIC = "rollout-checks"          # = service.rollouts.CHECK_TOPIC (kept literal: no heavy import here)
MAX_RETRY_AGE = timedelta(minutes=10)   # a failing check is retried while younger, then dropped (next tick)


def _controller():
    from offerlab.service import rollouts  # noqa: PLC0415 - keeps main's import light

    return rollouts


@https_fn.on_call()
def create_rollout_plan(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CreateRolloutPlan, svc.create_rollout_plan, roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def start_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutRef, lambda c, p: _controller().start_rollout(c, p.experiment_id),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def check_stage_progress(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutRef, lambda c, p: _controller().check_stage_progress(c, p.experiment_id),
                  roles=[Role.EXPERIMENTER, Role.ANALYST])


@https_fn.on_call()
def progress_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutRef, lambda c, p: _controller().progress_rollout(c, p.experiment_id),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def pause_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutWithReason, lambda c, p: _controller().pause_rollout(c, p.experiment_id, p.reason),
                  roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def rollback_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutWithReason,
                  lambda c, p: _controller().rollback_rollout(c, p.experiment_id, p.reason), roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def abort_rollout(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.RolloutWithReason, lambda c, p: _controller().abort_rollout(c, p.experiment_id, p.reason),
                  roles=[Role.ADMIN])


@scheduler_fn.on_schedule(schedule="every 15 minutes")
def rollout_sweep(event: scheduler_fn.ScheduledEvent) -> None:
    """*now* is the tick's ``X-CloudScheduler-ScheduleTime`` (API.md §6; the SDK falls back to the wall clock)."""
    result = _controller().sweep(event.schedule_time)
    log.info("rollout_sweep: %s", result)


@pubsub_fn.on_message_published(topic=CHECK_TOPIC)
def on_rollout_check(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    """One plan at one tick: idempotent (apply_once per experiment and tick). A malformed message is logged and
    acknowledged; a transient failure is retried only while the message is young, never forever."""
    message = event.data.message
    try:
        data = message.json
        experiment_id, tick = data["experimentId"], data["tick"]
        if not (isinstance(experiment_id, str) and isinstance(tick, str)) or not experiment_id or "/" in experiment_id:
            raise ValueError("experimentId and tick must be strings")
        from offerlab.domain.clock import parse_rfc3339  # noqa: PLC0415

        parse_rfc3339(tick)
    except (ValueError, KeyError, TypeError) as err:
        log.warning("rollout check %s dropped: malformed (%s)", message.message_id, type(err).__name__)
        return
    try:
        outcome = _controller().run_step(experiment_id, tick)
        log.info("rollout check %s: %s at %s → %s", message.message_id, experiment_id, tick, outcome)
    except Exception:
        published = message.publish_time
        age = datetime.now(timezone.utc) - published if published else MAX_RETRY_AGE
        if age >= MAX_RETRY_AGE:
            log.exception("rollout check %s for %s dropped after %s of failures", message.message_id, experiment_id, age)
            return
        log.exception("rollout check %s for %s failed; leaving it for redelivery", message.message_id, experiment_id)
        raise

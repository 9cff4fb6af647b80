"""The guardrail sweep's fan-out (issue 6): one Pub/Sub message per RUNNING experiment per tick.

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
from datetime import datetime, timezone
from typing import Any

from offerlab.domain.errors import NotFound
from offerlab.domain.fanout import parse_check_message
from offerlab.domain.types import ExperimentStatus
from offerlab.service import guardrails
from offerlab.service.analysis_source import AnalysisSource, FirestoreAnalysisSource
from offerlab.service.snapshots import tick_id
from offerlab.store import experiments as experiments_repo
from offerlab.store.idempotency import apply_once
from offerlab.store.pubsub import publish_many

log = logging.getLogger("offerlab.sweeps")

GUARDRAIL_TOPIC = "guardrail-checks"
IDEMPOTENCY_SCOPE = "guardrail-check"


def guardrail_sweep(at: datetime) -> int:
    """Publish one check per RUNNING experiment for the tick ``at``; returns how many were published."""
    ids = experiments_repo.ids_with_status([ExperimentStatus.RUNNING.value])
    tick = at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if ids:
        publish_many(GUARDRAIL_TOPIC, [{"experimentId": i, "tick": tick} for i in ids])
    return len(ids)


@dataclass(frozen=True)
class CheckOutcome:
    status: str          # ACTED | NO_VIOLATION | ALREADY_PROCESSED | SKIPPED | REJECTED
    action: str = "NONE"
    reason: str = ""


def handle_guardrail_check(data: Any, source: AnalysisSource | None = None) -> CheckOutcome:
    try:
        experiment_id, at = parse_check_message(data)
    except ValueError as err:
        return CheckOutcome("REJECTED", reason=str(err)[:300])
    try:
        experiment = experiments_repo.get_experiment(experiment_id)
    except NotFound:
        return CheckOutcome("SKIPPED", reason="no such experiment")
    if experiment.status is not ExperimentStatus.RUNNING:
        return CheckOutcome("SKIPPED", reason=f"the experiment is {experiment.status.value}")
    checks = guardrails.check_experiment(experiment, source or FirestoreAnalysisSource())
    violations = [c for c in checks if c.breached]
    if not violations:
        return CheckOutcome("NO_VIOLATION")
    tick = tick_id(at)
    taken: list[str] = []

    def effect(transaction: Any) -> None:
        taken.clear()  # the body may be retried on contention
        taken.append(guardrails.act_on_violations(transaction, experiment_id, violations,
                                                  via=f"guardrail_sweep {tick}", key=tick, now=at))

    if not apply_once(IDEMPOTENCY_SCOPE, f"{experiment_id}:{tick}", effect):
        return CheckOutcome("ALREADY_PROCESSED")
    return CheckOutcome("ACTED", action=taken[0] if taken else "NONE")

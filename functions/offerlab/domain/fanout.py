"""The message the scheduled fan-outs publish, one per experiment per tick: ``{experimentId, tick}``.

guardrail_sweep → ``guardrail-checks``, rollout_sweep → ``rollout-checks``, kpi_snapshot → ``kpi-snapshots``
(docs/data-model.md). One parser for all three handlers, so they refuse the same garbage the same way.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from offerlab.domain.clock import parse_rfc3339
from offerlab.domain.ids import is_document_id


def tick_stamp(at: datetime) -> str:
    """The tick as published: its schedule time in RFC 3339, UTC, 'Z' (a naive time is UTC: the SDK yields
    one when the X-CloudScheduler-ScheduleTime header has no zone)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def tick_id(at: datetime) -> str:
    """The tick's identity in document ids: its schedule time to the second, UTC (``20261125T140000Z``)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_check_message(data: Any) -> tuple[str, datetime]:
    """(experimentId, tick); ``ValueError`` for a message that can never be handled (a poison message)."""
    if not isinstance(data, dict):
        raise ValueError("the message is not a JSON object")
    experiment_id, tick = data.get("experimentId"), data.get("tick")
    if not is_document_id(experiment_id):
        raise ValueError("experimentId is missing or invalid")
    if not isinstance(tick, str):
        raise ValueError("tick is missing")
    return experiment_id, parse_rfc3339(tick)

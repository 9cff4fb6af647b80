"""The message the scheduled fan-outs publish, one per experiment per tick: ``{experimentId, tick}``.

guardrail_sweep → ``guardrail-checks``, rollout_sweep → ``rollout-checks``, kpi_snapshot → ``kpi-snapshots``
(docs/data-model.md). One parser for all three handlers, so they refuse the same garbage the same way.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from offerlab.domain.clock import parse_rfc3339

MAX_ID = 128


def parse_check_message(data: Any) -> tuple[str, datetime]:
    """(experimentId, tick); ``ValueError`` for a message that can never be handled (a poison message)."""
    if not isinstance(data, dict):
        raise ValueError("the message is not a JSON object")
    experiment_id, tick = data.get("experimentId"), data.get("tick")
    if not isinstance(experiment_id, str) or not 0 < len(experiment_id) <= MAX_ID or "/" in experiment_id:
        raise ValueError("experimentId is missing or invalid")
    if not isinstance(tick, str):
        raise ValueError("tick is missing")
    return experiment_id, parse_rfc3339(tick)

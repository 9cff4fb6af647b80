"""One clock for everything time-based (API.md §6): scheduled runs pass the tick's time explicitly."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp ('Z' or an offset); naive times are refused by callers' models."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return value.astimezone(timezone.utc)

"""Turning stored documents into ledger values: JSON that RFC 8785 can encode and Firestore returns unchanged.

A ledger entry must hash the same when it is read back (docs/ledger.md §3), so everything it holds is a
plain JSON value that survives a Firestore round trip: strings, booleans, null, safe integers, finite
doubles, lists and maps. Source documents may hold other Firestore types; they are recorded as:

* timestamps → RFC 3339 strings in UTC with exactly six fractional digits (``2026-11-25T13:44:20.123456Z``),
* integers beyond ±(2**53 − 1) → their decimal string (RFC 8785 numbers are IEEE doubles),
* NaN / ±Infinity → the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``,
* bytes → ``"base64:<standard base64>"``, geo points → ``{latitude, longitude}``,
  document references → their path, anything else → ``{"unsupportedType": <type name>}``.

Pure: Firestore types are recognised by shape, so this module imports nothing from Google.
"""
from __future__ import annotations

import base64
import math
from datetime import date, datetime, timezone
from typing import Any

from offerlab.ledger.canonical import MAX_SAFE_INTEGER

MAX_DEPTH = 32  # Firestore allows 20 levels of nested maps; deeper is refused by Firestore itself


def rfc3339(moment: datetime) -> str:
    """UTC, microsecond precision, always six fractional digits and a 'Z': one spelling per instant."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # Firestore timestamps are UTC
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_ledger_value(value: Any, _depth: int = 0) -> Any:
    """A JSON value a ledger entry can hold (see the module docstring for the mapping)."""
    if value is None or type(value) is bool or type(value) is str:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)  # a str enum by its value
    if isinstance(value, int):
        number = int(value)
        return number if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER else str(number)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return float(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if _depth >= MAX_DEPTH:
        return {"unsupportedType": "too deeply nested"}
    if isinstance(value, dict):
        return {str(key): to_ledger_value(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_ledger_value(item, _depth + 1) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "latitude") and hasattr(value, "longitude"):  # google.cloud.firestore GeoPoint
        return {"latitude": to_ledger_value(value.latitude), "longitude": to_ledger_value(value.longitude)}
    if hasattr(value, "path") and hasattr(value, "parent") and isinstance(getattr(value, "path"), str):
        return value.path  # a DocumentReference
    return {"unsupportedType": type(value).__name__}

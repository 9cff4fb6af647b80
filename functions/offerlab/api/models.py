"""Base types for request and response models: camelCase on the wire, bounded sizes everywhere.

Every string and list has a maximum size and free-form JSON (offer configurations) is bounded in
depth, keys and total size, so no request can produce a Firestore document near the 1 MiB cap.
"""
from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from offerlab.domain.ids import DocumentId
from offerlab.domain.iso import is_country, is_currency, normalize_code
from offerlab.domain.placements import PLACEMENT_PATTERN

MAX_NAME = 200
MAX_TEXT = 4_000
MAX_LIST = 50
MAX_JSON_BYTES = 16 * 1024
MAX_JSON_DEPTH = 6


class ApiModel(BaseModel):
    """Requests: unknown fields are refused (a typo must not be silently ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
        str_strip_whitespace=True, allow_inf_nan=False,
    )


class ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# Document ids (domain/ids.py): no slashes (they would address a sub-collection), no control characters.
Id = DocumentId
UserId = DocumentId
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
# A placement name (domain/placements.py): it becomes a document id.
Placement = Annotated[str, StringConstraints(pattern=PLACEMENT_PATTERN)]


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return normalize_code(value)


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError("not an ISO 4217 currency code")
    return normalize_code(value)


# A region (get_offer, experiments' regions): an ISO 3166-1 alpha-2 country code (domain/iso.py), any case,
# normalised to upper case.
Region = Annotated[str, StringConstraints(max_length=8), AfterValidator(_country)]
# An ISO 4217 currency code of an active currency (domain/iso.py), normalised to upper case.
Currency = Annotated[str, StringConstraints(max_length=8), AfterValidator(_currency)]


def _basis_points(value: float) -> float:
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError("percentages have a resolution of 0.01")
    return value


# Percentages in [0, 100] with a resolution of 0.01 (API.md conventions).
Percentage = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False), AfterValidator(_basis_points)]


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        if len(value) > MAX_LIST:
            raise ValueError(f"more than {MAX_LIST} keys")
        for key, item in value.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_NAME:
                raise ValueError("keys must be non-empty strings of at most 200 characters")
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_LIST:
            raise ValueError(f"more than {MAX_LIST} items")
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"strings longer than {MAX_TEXT} characters")
    elif not isinstance(value, (str, int, float, bool, type(None), dict, list)):
        raise ValueError("only JSON values are allowed")


def _bounded_json_object(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES} bytes")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded_json_object)]


class Empty(ApiModel):
    """A request that takes no fields."""


class ExperimentRef(ApiModel):
    experiment_id: Id


def dump(value: Any) -> Any:
    """A response as JSON-ready data: models by alias, datetimes as RFC 3339 strings."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):  # enums
        return value.value
    return value

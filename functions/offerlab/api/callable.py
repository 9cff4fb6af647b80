"""The plumbing every callable goes through (API.md §1, §9).

    token required → caller and roles → payload validated (pydantic, bounded) → use case → JSON

A refusal raises before the use case writes anything (each use case is one transaction). Domain
errors map to their HttpsError code; anything unexpected is logged here and reaches the client as a
bare INTERNAL, never with a stack trace or message.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, TypeVar

from firebase_functions import https_fn
from pydantic import BaseModel, ValidationError

from offerlab import config
from offerlab.api.auth import Caller, Role, caller_from_token, require_role
from offerlab.api.models import dump
from offerlab.domain.errors import InvalidArgument, OfferlabError

log = logging.getLogger("offerlab.api")

M = TypeVar("M", bound=BaseModel)

_CODES = {code.name: code for code in https_fn.FunctionsErrorCode}


def field_errors(err: ValidationError) -> list[dict[str, str]]:
    """Each bad field as ``{path, message}``: the path in wire names (``kpis.0.name``), no input echoed."""
    out = []
    for item in err.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in item["loc"]) or "(payload)"
        out.append({"path": path, "message": item["msg"]})
    return out


def parse(model: type[M], data: Any) -> M:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidArgument("The payload must be a JSON object.", {"fields": [{"path": "(payload)", "message": "must be an object"}]})
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise InvalidArgument("The request is invalid.", {"fields": field_errors(err)}) from None


def to_https_error(err: OfferlabError) -> https_fn.HttpsError:
    code = _CODES.get(err.code, https_fn.FunctionsErrorCode.INTERNAL)
    return https_fn.HttpsError(code, err.message, err.details)


def handle(
    req: https_fn.CallableRequest,
    model: type[M],
    action: Callable[[Caller, M], Any],
    roles: Iterable[Role] = (),
) -> Any:
    """Run one callable: authenticate, authorise, validate, act, serialise. ``roles=()``: any signed-in user."""
    try:
        auth = req.auth
        caller = caller_from_token(auth.uid if auth else None, auth.token if auth else None)
        require_role(caller, roles)
        length = req.raw_request.content_length if req.raw_request is not None else None
        if length is not None and length > config.MAX_REQUEST_BYTES:
            raise InvalidArgument("The request is too large.", {"fields": [{"path": "(payload)", "message": "too large"}]})
        payload = parse(model, req.data)
        return dump(action(caller, payload))
    except OfferlabError as err:
        raise to_https_error(err) from None
    except https_fn.HttpsError:
        raise
    except Exception:  # the catch-all of API.md §9: log the detail, tell the client nothing
        log.exception("callable failed")
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.INTERNAL, "Internal error.") from None

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
from offerlab.api.auth import caller_from_token, require_role
from offerlab.domain.actors import Caller, Role
from offerlab.api.models import dump
from offerlab.domain.errors import InvalidArgument, OfferlabError

log = logging.getLogger("offerlab.api")

M = TypeVar("M", bound=BaseModel)

_CODES = {code.name: code for code in https_fn.FunctionsErrorCode}


def _refuse_malformed_bodies() -> None:
    """Make a malformed callable body an INVALID_ARGUMENT (HTTP 400), not an INTERNAL (HTTP 500).

    firebase-functions 0.6.0 checks the body in ``private.util.valid_on_call_request`` by reading
    ``request.json`` and testing ``"data" in body``: a body that is not JSON (or not UTF-8) raises
    werkzeug's BadRequest, and a bare JSON scalar such as ``NaN`` raises TypeError; both fall into the
    SDK's catch-all and reach the client as INTERNAL, before ``handle`` runs (found by
    tests/reliability/test_hostile_callables.py). Treating any failure of that check as "invalid"
    sends the SDK down its own ``INVALID_ARGUMENT "Bad Request"`` path instead.
    """
    from firebase_functions.private import util as sdk_util

    original = sdk_util.valid_on_call_request
    if getattr(original, "_offerlab_guarded", False):  # the emulator may re-import this module
        return

    def valid_on_call_request(request: Any) -> bool:
        try:
            return bool(original(request))
        except Exception:  # malformed body: refuse it as the SDK refuses a missing one
            log.warning("callable body is not a JSON object with a data field; refused")
            return False

    valid_on_call_request._offerlab_guarded = True  # type: ignore[attr-defined]
    sdk_util.valid_on_call_request = valid_on_call_request


_refuse_malformed_bodies()


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

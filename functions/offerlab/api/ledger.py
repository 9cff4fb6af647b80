"""Request models of the ledger callables and the HTTP export (API.md §3 "Ledger and reports", §4, §12)."""
from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from offerlab.api.auth import caller_from_token, require_role
from offerlab.domain.actors import Role
from offerlab.api.callable import parse
from offerlab.api.models import ApiModel, Id
from offerlab.domain.errors import InvalidArgument, OfferlabError, Unauthenticated

log = logging.getLogger("offerlab.api")

# Who may read what (API.md §1): the ledger itself (trail, verification) is for auditors — analysts,
# approvers, admins — as in firestore.rules; reports also for experimenters ("reports").
AUDITORS = (Role.ANALYST, Role.APPROVER)
REPORT_READERS = (Role.ANALYST, Role.APPROVER, Role.EXPERIMENTER)
EXPORT_READERS = (Role.ANALYST, Role.APPROVER)  # API.md §4: analyst, approver or admin
STATISTICS_READERS = (Role.ANALYST, Role.APPROVER, Role.EXPERIMENTER)
MAX_TRAIL_PAGE = 1000
MAX_TREE_SIZE = 10**12 - 1  # entry ids hold 12 digits (docs/ledger.md §2)


def _usable_document_id(value: str) -> str:
    # Firestore refuses '.', '..' and ids of the form __…__ (reserved); say so instead of failing later.
    if value in (".", "..") or (value.startswith("__") and value.endswith("__")):
        raise ValueError("not a valid experiment or chain id")
    return value


# An experiment id, or ``cohort:<cohortId>`` for a holdout cohort's chain (docs/ledger.md §1).
ChainId = Annotated[Id, AfterValidator(_usable_document_id)]


class ChainRef(ApiModel):
    experiment_id: ChainId


class AuditTrailRequest(ApiModel):
    experiment_id: ChainId
    after_sequence: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=MAX_TRAIL_PAGE)] = MAX_TRAIL_PAGE


TreeSize = Annotated[int, Field(ge=1, le=MAX_TREE_SIZE)]


class InclusionProofRequest(ApiModel):
    """API.md §12: entry ``sequence`` (leaf ``sequence − 1``) in the tree of ``treeSize`` leaves
    (default: the latest checkpoint's)."""

    experiment_id: ChainId
    sequence: TreeSize
    tree_size: TreeSize | None = None


class ConsistencyProofRequest(ApiModel):
    experiment_id: ChainId
    from_size: TreeSize
    to_size: TreeSize

    @model_validator(mode="after")
    def _ordered(self) -> "ConsistencyProofRequest":
        if self.from_size > self.to_size:
            raise ValueError("fromSize must not exceed toSize")
        return self


class ExportRequest(ApiModel):
    experiment_id: ChainId
    format: Literal["csv", "json", "html"] = "json"


# HTTP status of each error code on the HTTP endpoint (as the callable protocol maps them).
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401,
               "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
               "INTERNAL": 500}


def error_response(code: str, message: str, details: Any = None) -> tuple[str, int, dict[str, str]]:
    """The callable error shape ``{"error": {status, message, details?}}`` with the matching HTTP status."""
    error: dict[str, Any] = {"status": code, "message": message}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}), HTTP_STATUS.get(code, 500), {"Content-Type": "application/json"}


def bearer_caller(authorization: str | None, verify: Any):
    """The caller of an HTTP request: ``Authorization: Bearer <Firebase ID token>``, verified by ``verify``."""
    if not authorization or not authorization.startswith("Bearer ") or not authorization[7:].strip():
        raise Unauthenticated("A Firebase ID token is required (Authorization: Bearer <token>).")
    try:
        claims = verify(authorization[7:].strip())
    except Exception:  # any verification failure (expired, malformed, wrong project): no detail leaks
        raise Unauthenticated("The ID token is invalid or expired.") from None
    return caller_from_token(claims.get("uid") or claims.get("sub"), claims)


def export(method: str, authorization: str | None, args: dict[str, Any], verify: Any,
           build: Any, renderers: dict[str, Any]) -> tuple[str, int, dict[str, str]]:
    """``export_audit_report`` without Flask: (body, status, headers). Errors never carry internals."""
    try:
        if method not in ("GET", "HEAD"):
            return error_response("INVALID_ARGUMENT", "Use GET.")[0], 405, {"Content-Type": "application/json",
                                                                           "Allow": "GET"}
        caller = bearer_caller(authorization, verify)
        require_role(caller, EXPORT_READERS)
        request = parse(ExportRequest, args)
        render, media_type, extension = renderers[request.format]
        body = render(build(request.experiment_id))
        safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.experiment_id)[:80]
        return body, 200, {"Content-Type": media_type, "Cache-Control": "no-store",
                           "Content-Disposition": f'attachment; filename="audit-{safe_name}.{extension}"'}
    except OfferlabError as err:
        return error_response(err.code, err.message, err.details)
    except Exception:  # API.md §9: log the detail, tell the client nothing
        log.exception("export_audit_report failed")
        return error_response("INTERNAL", "Internal error.")


def query_args(raw: Any) -> dict[str, Any]:
    """Query parameters as a dict; a repeated parameter is refused rather than silently picking one."""
    out: dict[str, Any] = {}
    for key in raw.keys():
        values = raw.getlist(key)
        if len(values) != 1:
            raise InvalidArgument("The request is invalid.", {"fields": [{"path": key, "message": "given more than once"}]})
        out[key] = values[0]
    return out

"""Typed exceptions, one per callable error status (API.md §9)."""
from __future__ import annotations

from typing import Any


class CallableError(Exception):
    status = "UNKNOWN"

    def __init__(self, message: str, details: Any = None, http_status: int | None = None) -> None:
        super().__init__(f"{self.status}: {message}")
        self.message = message
        self.details = details
        self.http_status = http_status

    @property
    def field_paths(self) -> list[str]:
        """For INVALID_ARGUMENT: the path of each bad field (``kpis.0.name``)."""
        fields = (self.details or {}).get("fields", []) if isinstance(self.details, dict) else []
        return [f.get("path", "") for f in fields]


class InvalidArgument(CallableError):
    status = "INVALID_ARGUMENT"


class Unauthenticated(CallableError):
    status = "UNAUTHENTICATED"


class PermissionDenied(CallableError):
    status = "PERMISSION_DENIED"


class NotFound(CallableError):
    status = "NOT_FOUND"


class FailedPrecondition(CallableError):
    status = "FAILED_PRECONDITION"


class Aborted(CallableError):
    status = "ABORTED"


class AlreadyExists(CallableError):
    status = "ALREADY_EXISTS"


class Internal(CallableError):
    status = "INTERNAL"


class Unavailable(CallableError):
    """Not an offerlab answer (API.md §9 never uses it): the serving layer had no instance for the call."""
    status = "UNAVAILABLE"


BY_STATUS: dict[str, type[CallableError]] = {
    cls.status: cls for cls in (InvalidArgument, Unauthenticated, PermissionDenied, NotFound,
                                FailedPrecondition, Aborted, AlreadyExists, Internal, Unavailable)
}


def from_wire(error: dict[str, Any], http_status: int) -> CallableError:
    cls = BY_STATUS.get(str(error.get("status")), CallableError)
    return cls(str(error.get("message", "")), error.get("details"), http_status)

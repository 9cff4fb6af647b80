"""Domain errors. The api layer maps each to the HttpsError code of API.md §9 via ``code``."""
from __future__ import annotations

from typing import Any


class OfferlabError(Exception):
    """A refusal a client may see: its message and details must not carry internal detail."""

    code = "INTERNAL"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidArgument(OfferlabError):
    code = "INVALID_ARGUMENT"


class Unauthenticated(OfferlabError):
    code = "UNAUTHENTICATED"


class PermissionDenied(OfferlabError):
    code = "PERMISSION_DENIED"


class NotFound(OfferlabError):
    code = "NOT_FOUND"


class FailedPrecondition(OfferlabError):
    """Illegal state transition or an unmet launch checklist."""

    code = "FAILED_PRECONDITION"


class Aborted(OfferlabError):
    """Contention: the caller may retry safely."""

    code = "ABORTED"


class AlreadyExists(OfferlabError):
    code = "ALREADY_EXISTS"

"""Who is calling: a ``Caller`` (domain/actors.py) built from the verified token's uid, email and roles (API.md §1)."""
from __future__ import annotations

from typing import Any, Iterable

from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import PermissionDenied, Unauthenticated


def caller_from_token(uid: str | None, token: dict[str, Any] | None) -> Caller:
    """Build the caller from a verified ID token; unknown role names are ignored, never trusted."""
    if not uid or token is None:
        raise Unauthenticated("A Firebase ID token is required.")
    raw = token.get("roles") or []
    names = raw if isinstance(raw, (list, tuple)) else []
    roles = frozenset(Role(r) for r in names if isinstance(r, str) and r in Role._value2member_map_)
    email = token.get("email") if isinstance(token.get("email"), str) else None
    return Caller(uid=uid, email=email.lower() if email else None, roles=roles)


def require_role(caller: Caller, roles: Iterable[Role]) -> None:
    wanted = tuple(roles)
    if wanted and not caller.has(*wanted):
        raise PermissionDenied("Your role does not allow this action.")

"""Who acts: the roles of API.md §1, a verified caller, and the actor the lifecycle's guards judge.

Pure. The api layer builds a ``Caller`` from a verified Firebase ID token (api/auth.py); automation
(the kill-switch topic, the guardrail monitor, the rollout sweep) acts as a system ``Actor``, authorised
by who may trigger it (IAM on the topic or the schedule), never by a token.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    EXPERIMENTER = "experimenter"
    APPROVER = "approver"
    ANALYST = "analyst"
    SERVICE = "service"
    ADMIN = "admin"


STAFF = frozenset({Role.EXPERIMENTER, Role.APPROVER, Role.ANALYST, Role.ADMIN})


@dataclass(frozen=True)
class Caller:
    """A verified caller: the token's uid, its (lower-cased) email and the roles it claims."""

    uid: str
    email: str | None
    roles: frozenset[Role]

    def has(self, *roles: Role) -> bool:
        """True when the caller holds any of ``roles``; admin holds every role (API.md §1)."""
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    @property
    def actor(self) -> str:
        """How the ledger names this caller: the email when the token has one, else the uid."""
        return self.email or f"uid:{self.uid}"


@dataclass(frozen=True)
class Actor:
    """Who asks, as the lifecycle's guards need it: the ledger name, the token email, the roles that matter."""

    name: str
    email: str | None
    is_admin: bool = False
    is_approver: bool = False
    is_system: bool = False  # the kill-switch topic, scheduled sweeps: authorised by IAM, not by a token


def actor_of(caller: Caller) -> Actor:
    return Actor(name=caller.actor, email=caller.email, is_admin=Role.ADMIN in caller.roles,
                 is_approver=Role.APPROVER in caller.roles)


def system_actor(name: str) -> Actor:
    """Automation acting under its own name (it may only pause or kill: domain/lifecycle.py)."""
    return Actor(name=name, email=None, is_system=True)

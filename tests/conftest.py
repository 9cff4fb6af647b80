"""Shared fixtures. Integration and e2e tests need the emulator suite: `make test` starts it.

A test that needs the emulators and does not find them FAILS (it never skips): a skipped test
proves nothing, and CI always runs the real suite.
"""
from __future__ import annotations

import os
import uuid

import pytest

from offerlab_client import OfferlabClient, emulator_token

PROJECT = "demo-offerlab"


def _need(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set: run the tests through `make test` (scripts/with-emulators)")
    return value


@pytest.fixture(scope="session")
def functions_url() -> str:
    return _need("OFFERLAB_FUNCTIONS_URL")


@pytest.fixture(scope="session")
def firestore_host() -> str:
    return _need("FIRESTORE_EMULATOR_HOST")


@pytest.fixture(scope="session")
def pubsub_host() -> str:
    return _need("PUBSUB_EMULATOR_HOST")


@pytest.fixture
def uid() -> str:
    """A fresh id: tests share one emulator, so they never depend on a cleared database."""
    return f"t{uuid.uuid4().hex[:12]}"


class Clients:
    """Clients with tokens of each role; ``as_(uid, email, roles)`` for any other caller."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def as_(self, uid: str, email: str | None = None, roles: tuple[str, ...] = ()) -> OfferlabClient:
        return OfferlabClient(self.base_url, emulator_token(uid, email=email, roles=roles, project=PROJECT))

    def anonymous(self) -> OfferlabClient:
        return OfferlabClient(self.base_url, None)

    def experimenter(self, name: str = "pm") -> OfferlabClient:
        return self.as_(f"{name}-uid", f"{name}@company.com", ("experimenter",))

    def approver(self, name: str = "ceo") -> OfferlabClient:
        return self.as_(f"{name}-uid", f"{name}@company.com", ("approver",))

    def analyst(self) -> OfferlabClient:
        return self.as_("analyst-uid", "analyst@company.com", ("analyst",))

    def service(self) -> OfferlabClient:
        return self.as_("backend", None, ("service",))

    def admin(self) -> OfferlabClient:
        return self.as_("admin-uid", "admin@company.com", ("admin",))

    def end_user(self, uid: str) -> OfferlabClient:
        return self.as_(uid)


@pytest.fixture(scope="session")
def clients(functions_url: str) -> Clients:
    return Clients(functions_url)


@pytest.fixture(scope="session")
def firestore_db(firestore_host: str):
    """The Firestore emulator through the same store layer the functions use."""
    from offerlab.store.client import db

    return db()

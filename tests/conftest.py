"""Shared fixtures. Integration and e2e tests need the emulator suite: `make test` starts it.

A test that needs the emulators and does not find them FAILS (it never skips): a skipped test
proves nothing, and CI always runs the real suite.
"""
from __future__ import annotations

import os
import time
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


@pytest.fixture(scope="module", autouse=True)
def _fresh_firestore(request):
    """Every integration, e2e and reliability module starts on an empty Firestore emulator.

    The scheduled sweeps act on *every* RUNNING experiment, so on a shared database each sweep of a late
    module also re-checked the hundreds of experiments earlier modules left behind: on CI's slower
    machine that load timed a callable out (the emulator answered ``{"code": "ECONNRESET"}``) and made
    whole-database tests impossible. Tests still use fresh ids, so a module never depends on another.
    Unit tests need no emulator and are left alone.
    """
    if "unit" in request.path.relative_to(request.config.rootpath).parts[:2]:
        yield
        return
    import requests  # noqa: PLC0415

    url = f"http://{_need('FIRESTORE_EMULATOR_HOST')}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
    deadline = time.monotonic() + 90
    while True:  # 409 while a transaction (e.g. the previous module's last trigger) is still open
        resp = requests.delete(url, timeout=60)
        if resp.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert resp.status_code == 200, f"clearing the Firestore emulator failed: HTTP {resp.status_code} {resp.text[:300]}"
    yield


@pytest.fixture
def uid() -> str:
    """A fresh id: tests of one module share the database, so none depends on another's data."""
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

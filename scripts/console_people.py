"""The console's demo people, (re)created in the Auth emulator every time the suite starts.

    python scripts/console_people.py [--quiet]     with FIREBASE_AUTH_EMULATOR_HOST set (scripts/with-emulators)

Each person gets an email/password account and the custom claim ``roles`` (API.md §1), so a newcomer can
sign in to the console as each of them; the callables read the roles from ``request.auth.token.roles``.
Idempotent: an existing account (e.g. one imported from emulator-data/) is updated in place, so its uid,
and everything the ledger recorded under its email, stays the same.

Why the Auth emulator's REST API and not firebase_admin: the emulator accepts the admin token ``owner``
(``Authorization: Bearer owner``) offline, with no credentials; the endpoints are the Identity Toolkit v1
ones the emulator implements (firebase-tools ``emulator/auth``): ``accounts:lookup``, ``accounts`` (create
as admin) and ``accounts:update`` (password, display name, ``customAttributes`` as a JSON string).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

PROJECT = "demo-offerlab"
# The demo password (the Auth emulator only: there is no such account anywhere else). Documented in
# docs/console.md and printed by `make serve`.
PASSWORD = "offerlab-demo"


@dataclass(frozen=True)
class Person:
    email: str
    uid: str
    name: str
    roles: tuple[str, ...]


# The same uids and emails as the tests' and the demo's unsigned tokens (tests/conftest.py, scripts/demo.py),
# so what the demo recorded under pm@company.com is the PM's own work when the PM signs in.
PEOPLE = (
    Person("pm@company.com", "pm-uid", "Pat Moreno (product manager)", ("experimenter",)),
    Person("ceo@company.com", "ceo-uid", "Casey Ellis (CEO)", ("approver",)),
    Person("cfo@company.com", "cfo-uid", "Chris Fong (CFO)", ("approver",)),
    Person("analyst@company.com", "analyst-uid", "Ana Lee (analyst)", ("analyst",)),
    Person("admin@company.com", "admin-uid", "Alex Min (admin)", ("admin",)),
)


def _post(host: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"http://{host}/identitytoolkit.googleapis.com/v1/projects/{PROJECT}/{path}",
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer owner"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"Auth emulator {path}: HTTP {err.code} {err.read()[:300]!r}") from None


def seed(host: str) -> list[Person]:
    """Create or update every person; returns them in order."""
    for person in PEOPLE:
        found = _post(host, "accounts:lookup", {"email": [person.email]}).get("users") or []
        uid = found[0]["localId"] if found else person.uid
        if not found:
            _post(host, "accounts", {"localId": uid, "email": person.email, "password": PASSWORD})
        _post(host, "accounts:update", {
            "localId": uid, "password": PASSWORD, "displayName": person.name, "emailVerified": True,
            "customAttributes": json.dumps({"roles": list(person.roles)})})
    return list(PEOPLE)


def sign_ins() -> str:
    rows = [f"    {p.email:<22} {', '.join(p.roles):<13} {p.name}" for p in PEOPLE]
    return "\n".join([f"  Sign in with any of these (password: {PASSWORD}):", *rows])


def _status(url: str) -> int | None:
    """The HTTP status `url` answers with, or None when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (OSError, ValueError):
        return None


def announce_when_up(proc: subprocess.Popen, env: dict[str, str], timeout: float = 300.0) -> None:
    """``serve``: once the suite answers, seed the people and print the console's URL.

    The functions emulator loads the Python functions last (firebase-tools prints its "All emulators ready"
    table then): a GET of the ``ping`` callable answers 404 until it is loaded, then 400 (callables want POST).
    Waiting for that prints this after the table instead of somewhere in the start-up log.
    """
    auth, console = env["FIREBASE_AUTH_EMULATOR_HOST"], env["OFFERLAB_CONSOLE_URL"]
    ping = f"{env['OFFERLAB_FUNCTIONS_URL']}/ping"
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if _status(f"http://{auth}/") and _status(console) == 200 and _status(ping) not in (None, 404):
            time.sleep(1.0)
            seed(auth)
            print(f"\n  offerlab console: {console}\n{sign_ins()}\n  (Ctrl-C stops the suite)\n", flush=True)
            return
        time.sleep(1.0)
    if proc.poll() is None:
        print("  the console did not come up in time; the suite is still starting or failed", file=sys.stderr)


if __name__ == "__main__":
    auth_host = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    if not auth_host:
        sys.exit("FIREBASE_AUTH_EMULATOR_HOST is not set: run this through scripts/with-emulators")
    seed(auth_host)
    if "--quiet" not in sys.argv:
        print(sign_ins())

"""Unsigned ID tokens for the Firebase Auth emulator (alg ``none``): tests, demos and local scripts.

The emulated functions accept them only because the auth emulator runs; production needs real
Firebase ID tokens (from the client SDKs or the Identity Toolkit REST API).
"""
from __future__ import annotations

import base64
import json
import time
from typing import Iterable


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def emulator_token(uid: str, *, email: str | None = None, roles: Iterable[str] = (),
                   project: str = "demo-offerlab", ttl_seconds: int = 3600, **claims) -> str:
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid, "user_id": uid,
        "iat": now, "auth_time": now, "exp": now + ttl_seconds,
        "firebase": {"identities": {}, "sign_in_provider": "custom"}, **claims,
    }
    if email:
        payload["email"] = email
        payload["email_verified"] = True
    roles = list(roles)
    if roles:
        payload["roles"] = roles
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."

"""Deployment settings, read from the environment. Nothing here imports Firebase."""
from __future__ import annotations

import os
from pathlib import Path

from offerlab.domain.iso import is_currency
from offerlab.domain.regional_policy import RegionalPolicy, policy_from_json

PROJECT_ID = os.environ.get("GCLOUD_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT") or "demo-offerlab"
REGION = os.environ.get("OFFERLAB_REGION", "us-central1")

# Largest callable request body we accept. Firestore documents are capped at 1 MiB; every request model
# also bounds its strings and lists, so no stored document can approach that cap.
MAX_REQUEST_BYTES = int(os.environ.get("OFFERLAB_MAX_REQUEST_BYTES", str(256 * 1024)))


def in_emulator() -> bool:
    """True under the Firebase Emulator Suite (functions emulator or a test talking to the emulators)."""
    return os.environ.get("FUNCTIONS_EMULATOR") == "true" or "FIRESTORE_EMULATOR_HOST" in os.environ


# --- regions and money (docs/regions.md) ----------------------------------------------------------------

DEFAULT_REGIONAL_POLICY_FILE = Path(__file__).with_name("regional-policy.default.json")


def regional_policy_text() -> str:
    """The regional policy table's JSON (domain/regional_policy.py): ``OFFERLAB_REGIONAL_POLICY`` (the text),
    else the file ``OFFERLAB_REGIONAL_POLICY_FILE``, else the shipped default (docs/regions.md §3)."""
    text = os.environ.get("OFFERLAB_REGIONAL_POLICY")
    if text and text.strip():
        return text
    path = os.environ.get("OFFERLAB_REGIONAL_POLICY_FILE")
    return Path(path).read_text(encoding="utf-8") if path else DEFAULT_REGIONAL_POLICY_FILE.read_text(encoding="utf-8")


def regional_policy() -> RegionalPolicy:
    """The parsed table (ValueError on a malformed one: a deployment must not silently run with none)."""
    text = regional_policy_text()
    cached = _policy_cache.get(text)
    if cached is None:
        cached = policy_from_json(text)
        _policy_cache.clear()
        _policy_cache[text] = cached
    return cached


_policy_cache: dict[str, RegionalPolicy] = {}

# The currency analyses and guardrails are reported in (ISO 4217); metric events in other currencies are
# converted into it at the event date's rate (domain/money.py).
def reporting_currency() -> str:
    code = os.environ.get("OFFERLAB_REPORTING_CURRENCY", "USD").strip().upper()
    if not is_currency(code):
        raise ValueError(f"OFFERLAB_REPORTING_CURRENCY {code!r} is not an ISO 4217 currency")
    return code


def rate_max_age_days() -> int:
    """How many days back a missing date's rate may be taken from (domain/money.py, docs/regions.md §5)."""
    return int(os.environ.get("OFFERLAB_RATE_MAX_AGE_DAYS", "7"))

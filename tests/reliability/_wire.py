"""Raw HTTP helpers for the reliability suite: it must see the wire as an attacker does (status code,
body), so it does not go through the typed client, which would turn errors into exceptions."""
from __future__ import annotations

import json
from typing import Any

import requests

from offerlab_client import emulator_token

PROJECT = "demo-offerlab"

# API.md §9: the only codes a client may ever see. INTERNAL is not among them on purpose.
DOCUMENTED = {"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND",
              "FAILED_PRECONDITION", "ABORTED", "ALREADY_EXISTS"}

# Every callable of the catalog (entrypoints/catalog.py) minus triggers, schedules and the HTTP export.
NOT_CALLABLE = {"guardrail_sweep", "kpi_snapshot", "on_guardrail_check", "on_holdout_spillover_event",
                "export_audit_report", "ledger_on_experiment_event", "ledger_on_rollout_event",
                "ledger_on_analysis", "ledger_on_spillover_event", "ledger_on_experiment_write",
                "ledger_on_cohort_write", "ledger_sweep", "ingest_offer_metric_event", "ingest_fraud_signal",
                "on_experiment_kill_switch", "rollout_sweep", "on_rollout_check", "on_kpi_snapshot",
                "aggregate_reconciliation", "on_aggregate_reconciliation", "ledger_on_exchange_rates"}


def callables() -> list[str]:
    from offerlab.entrypoints.catalog import FUNCTIONS

    return sorted(n for names in FUNCTIONS.values() for n in names if n not in NOT_CALLABLE)


def token(uid: str, email: str | None = None, roles: tuple[str, ...] = ()) -> str:
    return emulator_token(uid, email=email, roles=roles, project=PROJECT)


class Outcome:
    """One callable response: ``status`` is "OK" or the error status; ``http`` the HTTP code."""

    def __init__(self, resp: requests.Response) -> None:
        self.http = resp.status_code
        self.text = resp.text
        try:
            self.body: Any = resp.json()
        except ValueError:
            self.body = None
        if isinstance(self.body, dict) and "result" in self.body:
            self.status = "OK"
        elif isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            self.status = str(self.body["error"].get("status"))
        else:
            self.status = f"UNPARSEABLE({self.http})"

    def __repr__(self) -> str:
        return f"Outcome(http={self.http}, status={self.status}, body={self.text[:300]!r})"


def post_raw(session: requests.Session, base_url: str, name: str, body: bytes | str,
             tok: str | None, content_type: str = "application/json") -> Outcome:
    # A fresh connection per call: the emulator closes idle keep-alive connections after ~6 s, and a pooled
    # one reused just after that is reset before any answer (docs/reliability.md), which an attacker's
    # request did not cause. The typed client handles that case with its retry policy.
    headers = {"Content-Type": content_type, "Connection": "close"}
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    return Outcome(session.post(f"{base_url}/{name}", data=body, headers=headers, timeout=60))


def call(session: requests.Session, base_url: str, name: str, data: Any, tok: str | None) -> Outcome:
    # json.dumps writes NaN/Infinity tokens for non-finite floats (allow_nan=True): we want them on the wire.
    return post_raw(session, base_url, name, json.dumps({"data": data}), tok)


def assert_documented_refusal(outcome: Outcome, expected: set[str] | None = None) -> None:
    """A refusal with a documented code, below HTTP 500, carrying no internal detail."""
    assert outcome.http < 500, outcome
    assert outcome.status in (expected or DOCUMENTED), outcome
    assert "Traceback" not in outcome.text and "File \"" not in outcome.text, outcome

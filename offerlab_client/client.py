"""The client: a generic ``call`` plus one typed method per callable of API.md §3."""
from __future__ import annotations

import os
from typing import Any

import requests

from offerlab_client.errors import CallableError, from_wire


class OfferlabClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 60.0) -> None:
        """``base_url``: ``http://HOST:PORT/<project>/<region>`` (the emulator) or
        ``https://<region>-<project>.cloudfunctions.net``; defaults to $OFFERLAB_FUNCTIONS_URL."""
        self.base_url = (base_url or os.environ["OFFERLAB_FUNCTIONS_URL"]).rstrip("/")
        self.token = token
        self.timeout = timeout
        self._http = requests.Session()

    def with_token(self, token: str | None) -> "OfferlabClient":
        """The same endpoint as another caller (shares nothing mutable with this client)."""
        return OfferlabClient(self.base_url, token, self.timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(self, name: str, data: Any = None) -> Any:
        """Invoke callable ``name``; returns its result or raises the typed CallableError."""
        resp = self._http.post(f"{self.base_url}/{name}", json={"data": data if data is not None else {}},
                               headers=self._headers(), timeout=self.timeout)
        try:
            body = resp.json()
        except ValueError:
            raise CallableError(f"non-JSON response (HTTP {resp.status_code})", http_status=resp.status_code) from None
        if "error" in body:
            raise from_wire(body["error"], resp.status_code)
        if "result" not in body:
            raise CallableError("response without a result", http_status=resp.status_code)
        return body["result"]

    def export_audit_report(self, experiment_id: str, fmt: str = "json") -> requests.Response:
        """The HTTP export (API.md §4); returns the raw response (CSV, JSON or HTML body)."""
        resp = self._http.get(f"{self.base_url}/export_audit_report",
                              params={"experimentId": experiment_id, "format": fmt},
                              headers=self._headers(), timeout=self.timeout)
        if resp.status_code >= 400:
            try:
                error = resp.json().get("error", {})
            except ValueError:
                error = {"status": "UNKNOWN", "message": resp.text[:200]}
            raise from_wire(error, resp.status_code)
        return resp

    # --- typed wrappers: one per callable; keyword arguments are sent in camelCase -------------------

    def _send(self, function_name: str, /, **fields: Any) -> Any:
        return self.call(function_name, {_camel(k): v for k, v in fields.items() if v is not None})

    def ping(self, echo: str | None = None) -> dict:
        return self._send("ping", echo=echo)

    # Holdouts
    def create_holdout_cohort(self, name: str, percentage: float, description: str | None = None,
                              spillover_policy: dict | None = None) -> dict:
        return self._send("create_holdout_cohort", name=name, percentage=percentage, description=description,
                          spillover_policy=spillover_policy)

    def freeze_holdout_cohort(self, cohort_id: str) -> dict:
        return self._send("freeze_holdout_cohort", cohort_id=cohort_id)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)

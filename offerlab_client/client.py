"""The client: a generic ``call`` plus one typed method per callable of API.md §3.

Connections are pooled per client (``requests.Session``), but one idle for longer than ``max_idle_seconds``
is replaced before use (offerlab_client/pool.py: the server may be closing it). A failed call is sent
again only when that is safe (offerlab_client/retry.py: never sent, ``ABORTED``, or, for callables that are
idempotent by contract, no response / ``UNAVAILABLE``), a bounded number of times with full-jitter backoff.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import requests

from offerlab_client.errors import CallableError, from_wire
from offerlab_client.pool import DEFAULT_MAX_IDLE_SECONDS, IdleLimitedAdapter, PoolStats
from offerlab_client.retry import IDEMPOTENT, Failure, RetryPolicy, answer_failure, transport_failure


class OfferlabClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 60.0,
                 retry: RetryPolicy | None = None, max_idle_seconds: float = DEFAULT_MAX_IDLE_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``base_url``: ``http://HOST:PORT/<project>/<region>`` (the emulator) or
        ``https://<region>-<project>.cloudfunctions.net``; defaults to $OFFERLAB_FUNCTIONS_URL.
        ``retry``: the retry policy (default ``RetryPolicy()``; ``retry.NO_RETRY`` never retries)."""
        self.base_url = (base_url or os.environ["OFFERLAB_FUNCTIONS_URL"]).rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_idle_seconds = max_idle_seconds
        self._sleep = sleep
        self.pool_stats = PoolStats()
        self.retries = 0  # calls sent again under the retry policy, over this client's life
        self._http = requests.Session()
        adapter = IdleLimitedAdapter(max_idle_seconds, self.pool_stats)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)

    def with_token(self, token: str | None) -> "OfferlabClient":
        """The same endpoint as another caller (shares nothing mutable with this client)."""
        return OfferlabClient(self.base_url, token, self.timeout, self.retry, self.max_idle_seconds, self._sleep)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _send_with_retries(self, name: str, send: Callable[[], requests.Response],
                           judge: Callable[[requests.Response], Any]) -> Any:
        """``judge(send())`` under the retry policy; ``judge`` returns the result or raises CallableError."""
        idempotent = name in IDEMPOTENT
        attempt = 1
        while True:
            try:
                return judge(send())
            except requests.exceptions.RequestException as err:
                failure = transport_failure(err)
                if not self.retry.should_retry(failure, idempotent, attempt):
                    if failure is Failure.NO_RESPONSE and not idempotent:
                        err.add_note(f"offerlab_client: {name} was not sent again: it may have taken effect "
                                     "and is not idempotent (offerlab_client/retry.py)")
                    raise
            except CallableError as err:
                if not self.retry.should_retry(answer_failure(err.status, err.http_status), idempotent, attempt):
                    raise
            self.retries += 1
            self._sleep(self.retry.delay(attempt))
            attempt += 1

    def call(self, name: str, data: Any = None) -> Any:
        """Invoke callable ``name``; returns its result or raises the typed CallableError."""
        def send() -> requests.Response:
            return self._http.post(f"{self.base_url}/{name}", json={"data": data if data is not None else {}},
                                   headers=self._headers(), timeout=self.timeout)

        return self._send_with_retries(name, send, _callable_result)

    def export_audit_report(self, experiment_id: str, fmt: str = "json") -> requests.Response:
        """The HTTP export (API.md §4); returns the raw response (CSV, JSON or HTML body)."""
        def send() -> requests.Response:
            return self._http.get(f"{self.base_url}/export_audit_report",
                                  params={"experimentId": experiment_id, "format": fmt},
                                  headers=self._headers(), timeout=self.timeout)

        return self._send_with_retries("export_audit_report", send, _export_response)

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

    def update_holdout_cohort(self, cohort_id: str, name: str | None = None, percentage: float | None = None,
                              description: str | None = None, spillover_policy: dict | None = None) -> dict:
        return self._send("update_holdout_cohort", cohort_id=cohort_id, name=name, percentage=percentage,
                          description=description, spillover_policy=spillover_policy)

    def retire_holdout_cohort(self, cohort_id: str, reason: str) -> dict:
        return self._send("retire_holdout_cohort", cohort_id=cohort_id, reason=reason)

    def is_user_in_holdout(self, user_id: str | None = None) -> dict:
        return self._send("is_user_in_holdout", user_id=user_id)

    def check_spillover(self, from_user_id: str, to_user_id: str, channel: str,
                        experiment_id: str | None = None) -> dict:
        return self._send("check_spillover", from_user_id=from_user_id, to_user_id=to_user_id, channel=channel,
                          experiment_id=experiment_id)

    def get_holdout_health(self, cohort_id: str) -> dict:
        return self._send("get_holdout_health", cohort_id=cohort_id)

    # Experiments (issue 5): keyword arguments in snake_case; definition fields as in create_experiment
    def create_experiment(self, **fields) -> dict:
        return self._send("create_experiment", **fields)

    def update_experiment(self, experiment_id: str, **fields) -> dict:
        return self._send("update_experiment", experiment_id=experiment_id, **fields)

    def submit_for_approval(self, experiment_id: str) -> dict:
        return self._send("submit_for_approval", experiment_id=experiment_id)

    def approve_experiment(self, experiment_id: str, comment: str | None = None) -> dict:
        return self._send("approve_experiment", experiment_id=experiment_id, comment=comment)

    def reject_experiment(self, experiment_id: str, reason: str) -> dict:
        return self._send("reject_experiment", experiment_id=experiment_id, reason=reason)

    def start_experiment(self, experiment_id: str) -> dict:
        return self._send("start_experiment", experiment_id=experiment_id)

    def pause_experiment(self, experiment_id: str, reason: str) -> dict:
        return self._send("pause_experiment", experiment_id=experiment_id, reason=reason)

    def resume_experiment(self, experiment_id: str) -> dict:
        return self._send("resume_experiment", experiment_id=experiment_id)

    def complete_experiment(self, experiment_id: str) -> dict:
        return self._send("complete_experiment", experiment_id=experiment_id)

    def kill_experiment(self, experiment_id: str, reason: str) -> dict:
        return self._send("kill_experiment", experiment_id=experiment_id, reason=reason)

    def get_offer(self, user_id: str | None = None, experiment_id: str | None = None) -> dict:
        return self._send("get_offer", user_id=user_id, experiment_id=experiment_id)

    def create_rollout_plan(self, experiment_id: str, stages: list | None = None, auto_progress: bool = False,
                            pause_on_violation: bool = True, rollback_on_failure: bool = True) -> dict:
        return self._send("create_rollout_plan", experiment_id=experiment_id, stages=stages,
                          auto_progress=auto_progress, pause_on_violation=pause_on_violation,
                          rollback_on_failure=rollback_on_failure)

    # Ledger and reports (issue 3; docs/ledger.md). ``experiment_id`` may also be ``cohort:<cohortId>``.
    def get_audit_trail(self, experiment_id: str, after_sequence: int | None = None, limit: int | None = None) -> dict:
        """``{experimentId, entries[], pendingEntries, nextAfterSequence}``; entries in sequence order."""
        return self._send("get_audit_trail", experiment_id=experiment_id, after_sequence=after_sequence, limit=limit)

    def verify_ledger(self, experiment_id: str) -> dict:
        """``{valid, entriesChecked, headHash, firstBadSequence, errors[{sequence, code, message}], ...}``."""
        return self._send("verify_ledger", experiment_id=experiment_id)

    def get_audit_report(self, experiment_id: str) -> dict:
        return self._send("get_audit_report", experiment_id=experiment_id)

    def get_ledger_statistics(self) -> dict:
        return self._send("get_ledger_statistics")

    # Checkpoints and proofs (API.md §12; docs/ledger.md §11). Hashes are base64 (RFC 9162 §2.1).
    def get_checkpoint(self, experiment_id: str) -> dict:
        """``{checkpoint (signed note), treeSize, rootHash, origin, verifierKey}``."""
        return self._send("get_checkpoint", experiment_id=experiment_id)

    def get_inclusion_proof(self, experiment_id: str, sequence: int, tree_size: int | None = None) -> dict:
        """``{leafIndex, treeSize, leafHash, proof[], checkpoint}`` (tree size default: the latest checkpoint's)."""
        return self._send("get_inclusion_proof", experiment_id=experiment_id, sequence=sequence, tree_size=tree_size)

    def get_consistency_proof(self, experiment_id: str, from_size: int, to_size: int) -> dict:
        return self._send("get_consistency_proof", experiment_id=experiment_id, from_size=from_size, to_size=to_size)

    # Rollouts (issue 7; docs/rollout.md). Each change returns the plan plus ``stage`` (the coverage, percent).
    def start_rollout(self, experiment_id: str) -> dict:
        """Resume a PAUSED rollout (starting the experiment starts its rollout at the first stage)."""
        return self._send("start_rollout", experiment_id=experiment_id)

    def check_stage_progress(self, experiment_id: str) -> dict:
        """``{ready, met[], blocking[], checks[], stage, nextStage, exposures, srmPValue, hoursAtStage, ...}``."""
        return self._send("check_stage_progress", experiment_id=experiment_id)

    def progress_rollout(self, experiment_id: str) -> dict:
        return self._send("progress_rollout", experiment_id=experiment_id)

    def pause_rollout(self, experiment_id: str, reason: str) -> dict:
        return self._send("pause_rollout", experiment_id=experiment_id, reason=reason)

    def rollback_rollout(self, experiment_id: str, reason: str) -> dict:
        return self._send("rollback_rollout", experiment_id=experiment_id, reason=reason)

    def abort_rollout(self, experiment_id: str, reason: str) -> dict:
        """Admin only: coverage 0, plan ABORTED, experiment KILLED with the reason."""
        return self._send("abort_rollout", experiment_id=experiment_id, reason=reason)

    # Analytics and guardrails (issue 6; docs/analytics.md)
    def analyze_experiment(self, experiment_id: str, metric: str, treatment_user_ids: list[str] | None = None,
                           control_user_ids: list[str] | None = None) -> dict:
        """A NEW immutable analysis each call: ``{analysisId, rawPercentChange, correctedPercentChange, pValue,
        confidenceInterval, sampleSizes, srmPValue, biasAdjustments[], dataQuality, recommendation, method,
        inputsDigest, ...}``."""
        return self._send("analyze_experiment", experiment_id=experiment_id, metric=metric,
                          treatment_user_ids=treatment_user_ids, control_user_ids=control_user_ids)

    def check_guardrails(self, experiment_id: str) -> dict:
        """``{violations[], actionTaken, dryRun, guardrails[]}``; a dry run for callers who may not act."""
        return self._send("check_guardrails", experiment_id=experiment_id)

    def monitor_experiment(self, experiment_id: str) -> dict:
        """``{experimentId, status, health, issues[], stage, stageIndex, exposures, srmPValue, guardrails[]}``."""
        return self._send("monitor_experiment", experiment_id=experiment_id)

    # A program of experiments (API.md §10): scoped holdouts, placements, shipping, the holdout's read-out.
    def create_scoped_holdout_cohort(self, name: str, percentage: float, placements: list[str] | None = None,
                                     offer_types: list[str] | None = None, description: str | None = None,
                                     spillover_policy: dict | None = None) -> dict:
        """A cohort whose scope is the listed placements and offer types (none: global)."""
        scope = {"placements": placements or [], "offerTypes": offer_types or []}
        return self._send("create_holdout_cohort", name=name, percentage=percentage, description=description,
                          spillover_policy=spillover_policy, scope=scope)

    def get_placement_offer(self, placement: str, user_id: str | None = None, region: str | None = None) -> dict:
        """``{userId, arm, experimentId, offerConfig, placement, reason?}`` for one placement."""
        return self._send("get_offer", user_id=user_id, placement=placement, region=region)

    def ship_experiment(self, experiment_id: str, arm: str, reason: str) -> dict:
        """COMPLETED → SHIP_PENDING_APPROVAL; the approvers then approve_experiment / reject_experiment."""
        return self._send("ship_experiment", experiment_id=experiment_id, arm=arm, reason=reason)

    def unship_experiment(self, experiment_id: str, reason: str) -> dict:
        """Admin only: SHIPPED → COMPLETED, everyone back on the status quo."""
        return self._send("unship_experiment", experiment_id=experiment_id, reason=reason)

    def analyze_holdout(self, cohort_id: str, metric: str) -> dict:
        """A NEW immutable read-out: ``{analysisId, cohortId, metric, holdoutUsers, comparisonUsers, holdoutMean,
        comparisonMean, liftPercent, confidenceInterval, pValue, shippedExperiments[], method, ...}``."""
        return self._send("analyze_holdout", cohort_id=cohort_id, metric=metric)

    # --- monitoring at any scale (API.md §11) ---------------------------------------------------------

    def acknowledge_alert(self, experiment_id: str, alert_id: str, comment: str) -> dict:
        """The experiment's author or an admin; an acknowledged alert stops blocking the rollout (ledgered)."""
        return self._send("acknowledge_alert", experiment_id=experiment_id, alert_id=alert_id, comment=comment)


    # Regions, money and store rules (API.md §13).
    def get_offer_where(self, user_id: str | None = None, experiment_id: str | None = None,
                        placement: str | None = None, region: str | None = None,
                        subscriber: bool | None = None) -> dict:
        """get_offer with every field: ``region`` (ISO 3166-1 alpha-2) and, from the backend (service role)
        only, ``subscriber``. The answer adds ``reason`` (``region``, ``audience``...) and, for an offer shown
        as a reduction, ``referencePrice`` and ``discountAllowed``."""
        return self._send("get_offer", user_id=user_id, experiment_id=experiment_id, placement=placement,
                          region=region, subscriber=subscriber)

    def get_launch_checklist(self, experiment_id: str) -> dict:
        """Read-only: ``{experimentId, status, ready, checklist[], warnings[]}`` as start_experiment would decide."""
        return self._send("get_launch_checklist", experiment_id=experiment_id)

    def set_exchange_rates(self, date: str, base: str, rates: dict) -> dict:
        """Admin: one day's rates (``YYYY-MM-DD``), ``1 base = rates[C] C``; created once, never changed."""
        return self._send("set_exchange_rates", date=date, base=base, rates=rates)

def _callable_result(resp: requests.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        raise CallableError(f"non-JSON response (HTTP {resp.status_code})", http_status=resp.status_code) from None
    if not isinstance(body, dict):
        raise CallableError(f"unexpected response (HTTP {resp.status_code}): {resp.text[:200]}",
                            http_status=resp.status_code)
    if "error" in body:
        raise from_wire(body["error"], resp.status_code)
    if "result" not in body:
        # e.g. the Functions emulator's {"code": "ECONNRESET"} when a worker timed out or died
        raise CallableError(f"response without a result (HTTP {resp.status_code}): {resp.text[:200]}",
                            http_status=resp.status_code)
    return body["result"]


def _export_response(resp: requests.Response) -> requests.Response:
    if resp.status_code >= 400:
        try:
            error = resp.json().get("error", {})
        except (ValueError, AttributeError):
            error = {"status": None, "message": resp.text[:200]}
        raise from_wire(error, resp.status_code)
    return resp


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)

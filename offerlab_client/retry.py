"""When the client sends a call again, and when it must not.

A call is retried only when a second attempt cannot apply it twice:

| what happened                                              | idempotent callable | any other callable |
|------------------------------------------------------------|---------------------|--------------------|
| no connection (refused, DNS, connect timeout): never sent   | retry               | retry              |
| ``ABORTED`` (API.md §9: contention; a refused call writes nothing) | retry        | retry              |
| sent, then reset / closed / timed out before a response     | retry               | raise              |
| ``UNAVAILABLE``, or HTTP 5xx without a callable answer (not offerlab's code: API.md §9) | retry | raise |
| anything else (a documented refusal, ``INTERNAL``, ...)     | raise               | raise              |

"Sent, then no response" may have taken effect (the server may have run the call and died, or timed out
while running it), so only calls that are idempotent by contract are sent again: RFC 9110 §9.2.2 lets a
client retry automatically only an idempotent request, or one it knows was not processed. Attempts are
bounded and spaced by full-jitter exponential backoff (sleep ``uniform(0, min(cap, base · 2^n))``; Brooker,
"Exponential Backoff And Jitter", AWS Architecture Blog, 2015), so many clients retrying at once spread out.
"""
from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Callable

# Callables (and the HTTP export) that are idempotent by contract (API.md §3, §4): read-only, or, for
# get_offer, "the first exposure of a user is recorded once (idempotent)". Not in this set, on purpose:
# create_*/update_*/freeze/retire, the lifecycle and rollout transitions (a second attempt answers
# differently, or acts again), check_spillover ("every call is recorded"), analyze_experiment ("a new call
# makes a new analysis"), check_guardrails (may pause or kill: it acts).
IDEMPOTENT = frozenset({
    "ping", "get_offer", "is_user_in_holdout", "get_holdout_health", "monitor_experiment", "check_stage_progress",
    "get_audit_trail", "verify_ledger", "get_audit_report", "get_ledger_statistics", "export_audit_report",
    "get_launch_checklist", "get_checkpoint", "get_inclusion_proof", "get_consistency_proof",
})


class Failure(str, enum.Enum):
    NOT_SENT = "NOT_SENT"          # no connection was made: the server never saw the call
    NO_RESPONSE = "NO_RESPONSE"    # sent (maybe in part), then reset / closed / timed out without an answer
    ABORTED = "ABORTED"            # the callable answered ABORTED: nothing was written
    UNAVAILABLE = "UNAVAILABLE"    # the serving layer (not offerlab's code) answered UNAVAILABLE / HTTP 503
    FINAL = "FINAL"                # any other answer: never retried


def transport_failure(exc: BaseException) -> Failure:
    """Classify an exception raised by ``requests`` while sending a call."""
    import requests  # noqa: PLC0415 - keeps this module importable for the pure policy tests
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError  # noqa: PLC0415

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure.NOT_SENT
    if isinstance(exc, requests.exceptions.ConnectionError):
        # requests wraps urllib3's MaxRetryError(reason=...) for failures to connect, and urllib3's
        # ProtocolError(..., RemoteDisconnected / ConnectionResetError / BrokenPipeError) for a connection that
        # broke after the request started: only the first kind proves the call was never sent.
        reason = exc.args[0] if exc.args else None
        reason = reason.reason if isinstance(reason, MaxRetryError) else reason
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError)):
            return Failure.NOT_SENT
        return Failure.NO_RESPONSE
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.ChunkedEncodingError)):
        return Failure.NO_RESPONSE
    return Failure.FINAL


def answer_failure(status: str | None, http_status: int | None) -> Failure:
    """Classify an answer that carried no result: the callable error ``status`` (None or "UNKNOWN" when the
    body was not offerlab's error format) and the HTTP code."""
    if status == "ABORTED":
        return Failure.ABORTED
    if status == "UNAVAILABLE":
        return Failure.UNAVAILABLE
    if status in (None, "UNKNOWN") and http_status is not None and http_status >= 500:
        # Not an answer of offerlab's code (it always answers in the callable format): the layer in front of
        # the function failed — 503: no instance took the call; other 5xx (the emulator's
        # {"code": "ECONNRESET"} when a worker died): the call may or may not have run.
        return Failure.UNAVAILABLE if http_status == 503 else Failure.NO_RESPONSE
    return Failure.FINAL


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded full-jitter retries. ``attempts`` counts the first try (``attempts=1``: never retry)."""

    attempts: int = 4
    base_delay: float = 0.2      # seconds; the cap of the first retry's sleep
    max_delay: float = 2.0       # seconds; no single sleep is longer

    def should_retry(self, failure: Failure, idempotent: bool, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1 = the first try) that failed with ``failure`` is tried again."""
        if attempt >= self.attempts:
            return False
        if failure in (Failure.NOT_SENT, Failure.ABORTED):
            return True
        if failure in (Failure.NO_RESPONSE, Failure.UNAVAILABLE):
            return idempotent
        return False

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The sleep before retry number ``attempt`` (1 = the first retry): ``U(0, min(max, base · 2^(n-1)))``."""
        return rand() * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


NO_RETRY = RetryPolicy(attempts=1)

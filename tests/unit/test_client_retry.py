"""offerlab_client's retry policy (offerlab_client/retry.py) and idle-connection limit (pool.py).

The policy as a table, then the client against a real local HTTP server whose answers are scripted (a
connection closed without a response, ABORTED, UNAVAILABLE, a refused connection): which calls are sent
again, how often, after which sleeps, and which never are.
"""
from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest
import requests

from offerlab_client import (
    IDEMPOTENT, NO_RETRY, Aborted, CallableError, FailedPrecondition, OfferlabClient, RetryPolicy, Unavailable,
)
from offerlab_client.retry import Failure, answer_failure, transport_failure

# --- the policy as a table -----------------------------------------------------------------------------

POLICY = RetryPolicy(attempts=4, base_delay=0.2, max_delay=2.0)


@pytest.mark.parametrize("failure, idempotent, retried", [
    (Failure.NOT_SENT, True, True), (Failure.NOT_SENT, False, True),        # never reached the server
    (Failure.ABORTED, True, True), (Failure.ABORTED, False, True),          # API.md §9: writes nothing
    (Failure.NO_RESPONSE, True, True), (Failure.NO_RESPONSE, False, False),  # may have taken effect
    (Failure.UNAVAILABLE, True, True), (Failure.UNAVAILABLE, False, False),
    (Failure.FINAL, True, False), (Failure.FINAL, False, False),
])
def test_what_is_retried(failure, idempotent, retried):
    assert POLICY.should_retry(failure, idempotent, attempt=1) is retried


def test_attempts_are_bounded():
    assert [POLICY.should_retry(Failure.NOT_SENT, True, n) for n in (1, 2, 3, 4, 5)] == [True, True, True, False, False]
    assert NO_RETRY.should_retry(Failure.NOT_SENT, True, 1) is False


def test_the_backoff_is_full_jitter_exponential_and_capped():
    assert [POLICY.delay(n, rand=lambda: 1.0) for n in range(1, 7)] == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert POLICY.delay(3, rand=lambda: 0.0) == 0.0
    samples = [POLICY.delay(3) for _ in range(2000)]
    assert 0.0 <= min(samples) and max(samples) <= 0.8
    assert 0.36 < sum(samples) / len(samples) < 0.44          # uniform on [0, 0.8]: mean 0.4


@pytest.mark.parametrize("status, http_status, failure", [
    ("ABORTED", 409, Failure.ABORTED), ("UNAVAILABLE", 503, Failure.UNAVAILABLE),
    (None, 503, Failure.UNAVAILABLE), ("UNKNOWN", 500, Failure.NO_RESPONSE),   # 5xx without a callable answer
    ("INTERNAL", 500, Failure.FINAL), ("FAILED_PRECONDITION", 400, Failure.FINAL),
    ("INVALID_ARGUMENT", 400, Failure.FINAL), ("UNKNOWN", 404, Failure.FINAL),
])
def test_answers_are_classified(status, http_status, failure):
    assert answer_failure(status, http_status) is failure


def test_the_idempotent_set_is_exactly_the_read_only_calls_and_get_offer():
    from offerlab.entrypoints.catalog import FUNCTIONS

    every = {name for names in FUNCTIONS.values() for name in names}
    assert IDEMPOTENT <= every                                   # no typo, no stale name
    for name in ("create_experiment", "analyze_experiment", "check_spillover", "check_guardrails",
                 "approve_experiment", "kill_experiment", "progress_rollout", "freeze_holdout_cohort"):
        assert name not in IDEMPOTENT


# --- a real local server with scripted answers --------------------------------------------------------

class Scripted(http.server.ThreadingHTTPServer):
    """Answers POSTs/GETs from ``script`` in order (then ``{"result": "ok"}``); records what it saw."""

    daemon_threads = True

    def __init__(self, script: list, port: int = 0, keepalive_idle: float | None = None) -> None:
        self.script = list(script)
        self.requests: list[str] = []
        self.connections = 0
        self.keepalive_idle = keepalive_idle
        super().__init__(("127.0.0.1", port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/demo-offerlab/us-central1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as the Functions emulator

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        if self.server.keepalive_idle is not None:
            self.connection.settimeout(self.server.keepalive_idle)  # an idle keep-alive connection is closed

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests.append(self.path.rsplit("/", 1)[-1].split("?")[0])
        action = self.server.script.pop(0) if self.server.script else (200, {"result": "ok"})
        if action == "drop":            # the connection closes with no response at all
            self.close_connection = True
            return
        status, body = action
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_POST = _answer
    do_GET = _answer


def error(status: str, http_status: int) -> tuple[int, dict]:
    return http_status, {"error": {"status": status, "message": status.lower()}}


@pytest.fixture
def sleeps():
    return []


def client_for(server_url: str, sleeps: list, **kw) -> OfferlabClient:
    return OfferlabClient(server_url, "token", timeout=5, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02),
                          sleep=sleeps.append, **kw)


def test_no_response_is_retried_for_an_idempotent_call(sleeps):
    server = Scripted(["drop", "drop"])
    try:
        client = client_for(server.url, sleeps)
        assert client.get_offer(user_id="u1") == "ok"
        assert server.requests == ["get_offer"] * 3 and len(sleeps) == 2 and client.retries == 2
        assert all(0 <= s <= 0.02 for s in sleeps)
    finally:
        server.stop()


def test_no_response_is_not_retried_for_a_call_that_may_have_taken_effect(sleeps):
    server = Scripted(["drop"])
    try:
        client = client_for(server.url, sleeps)
        with pytest.raises(requests.exceptions.ConnectionError) as caught:
            client.create_experiment(name="x")
        assert server.requests == ["create_experiment"] and sleeps == [] and client.retries == 0
        assert any("not sent again" in note for note in caught.value.__notes__)
        assert transport_failure(caught.value) is Failure.NO_RESPONSE    # a real RemoteDisconnected
        assert "Remote end closed connection without response" in str(caught.value)
    finally:
        server.stop()


def test_aborted_is_retried_for_any_call_and_the_attempts_are_bounded(sleeps):
    server = Scripted([error("ABORTED", 409)] * 5)
    try:
        client = client_for(server.url, sleeps)
        with pytest.raises(Aborted):
            client.approve_experiment("e1")
        assert server.requests == ["approve_experiment"] * 3 and len(sleeps) == 2   # attempts=3
    finally:
        server.stop()
    server = Scripted([error("ABORTED", 409)])
    try:
        assert client_for(server.url, sleeps).create_experiment(name="x") == "ok"
        assert server.requests == ["create_experiment"] * 2
    finally:
        server.stop()


def test_unavailable_is_retried_only_for_idempotent_calls(sleeps):
    server = Scripted([error("UNAVAILABLE", 503), (503, {"message": "no instance"}), (200, {"result": "ok"}),
                       error("UNAVAILABLE", 503)])
    try:
        client = client_for(server.url, sleeps)
        assert client.verify_ledger("e1") == "ok"
        assert server.requests == ["verify_ledger"] * 3
        with pytest.raises(Unavailable):
            client.check_spillover("a", "b", "gift")
        assert server.requests[-1] == "check_spillover" and len(server.requests) == 4
    finally:
        server.stop()


def test_documented_refusals_are_never_retried(sleeps):
    server = Scripted([error("FAILED_PRECONDITION", 400)])
    try:
        client = client_for(server.url, sleeps)
        with pytest.raises(FailedPrecondition):
            client.get_offer(user_id="u1")          # idempotent, but the answer is final
        assert server.requests == ["get_offer"] and sleeps == []
    finally:
        server.stop()


def test_a_refused_connection_is_retried_even_for_a_call_that_is_not_idempotent():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                                   # nothing listens there: connection refused
    started = []

    def sleep(_seconds):                            # the server comes up while the client backs off
        if not started:
            started.append(Scripted([], port=port))

    client = OfferlabClient(f"http://127.0.0.1:{port}/demo-offerlab/us-central1", "t", timeout=5,
                            retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02), sleep=sleep)
    try:
        assert client.create_holdout_cohort(name="c", percentage=5) == "ok"
        assert started[0].requests == ["create_holdout_cohort"] and client.retries == 1
    finally:
        started[0].stop()


def test_a_refused_connection_is_classified_as_never_sent():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.post(f"http://127.0.0.1:{port}/x", timeout=2)
    assert transport_failure(caught.value) is Failure.NOT_SENT
    assert transport_failure(requests.exceptions.ReadTimeout()) is Failure.NO_RESPONSE
    assert transport_failure(requests.exceptions.ConnectTimeout()) is Failure.NOT_SENT
    assert transport_failure(ValueError("not a transport error")) is Failure.FINAL


def test_the_export_is_idempotent_and_retried_after_no_response(sleeps):
    server = Scripted(["drop"])
    try:
        resp = client_for(server.url, sleeps).export_audit_report("e1", "json")
        assert resp.status_code == 200 and server.requests == ["export_audit_report"] * 2
    finally:
        server.stop()


def test_a_response_without_a_result_is_not_retried_for_a_call_that_may_have_taken_effect(sleeps):
    server = Scripted([(500, {"code": "ECONNRESET"})])
    try:
        with pytest.raises(CallableError, match="without a result"):
            client_for(server.url, sleeps).start_experiment("e1")
        assert server.requests == ["start_experiment"]
    finally:
        server.stop()


# --- idle connections ------------------------------------------------------------------------------------

def test_a_connection_idle_past_the_limit_is_replaced_before_use_one_in_use_recently_is_reused(sleeps):
    server = Scripted([], keepalive_idle=5.0)
    try:
        client = client_for(server.url, sleeps, max_idle_seconds=0.3)
        client.ping()
        client.ping()                               # right away: the same connection
        assert server.connections == 1 and client.pool_stats.reused == 1
        time.sleep(0.4)                             # idle past max_idle (the server would keep it 5 s)
        client.ping()
        assert server.connections == 2 and client.pool_stats.replaced_idle == 1
    finally:
        server.stop()


def test_with_token_keeps_the_policy_and_the_idle_limit(sleeps):
    client = client_for("http://127.0.0.1:1/p/r", sleeps, max_idle_seconds=1.5)
    other = client.with_token("other")
    assert (other.retry, other.max_idle_seconds, other.token) == (client.retry, 1.5, "other")

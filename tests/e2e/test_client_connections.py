"""The idle keep-alive connection, reproduced on purpose against the Functions emulator, and the client
surviving it (offerlab_client/pool.py, retry.py).

The emulator's HTTP server (Node 20) advertises ``Keep-Alive: timeout=5`` and closes a keep-alive connection
idle for 6.0 s (measured here). A client that sends on it as it closes, or after, gets no answer ("Remote end
closed connection without response", a reset, a broken pipe): the ``RemoteDisconnected`` of the demo. Callables answer ``Connection: close`` on the emulator
(gunicorn says so to the emulator's fresh per-request connections and the emulator passes the header on),
so the idle connection is set up here with a request the emulator answers itself and keeps alive (an
unknown path: its own 404), as any pooled client does with keep-alive answers (production's front end).
"""
from __future__ import annotations

import http.client
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from offerlab_client.pool import DEFAULT_MAX_IDLE_SECONDS

UNKNOWN_PATH = "/offerlab-keepalive-probe"   # answered 404 by the emulator itself, connection kept alive


def _address(functions_url: str) -> tuple[str, int]:
    parts = urlsplit(functions_url)
    return parts.hostname, parts.port


def _keepalive_request(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("POST", UNKNOWN_PATH, body=b"{}", headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp


def server_idle_close_seconds(functions_url: str) -> float:
    """How long the emulator keeps an idle keep-alive connection open: time from the end of a response to
    the server's FIN (recv returns b"")."""
    host, port = _address(functions_url)
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(f"POST {UNKNOWN_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\n{{}}".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        assert b"keep-alive" in head.lower() or b"connection: close" not in head.lower(), head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += sock.recv(65536)
        idle_from = time.monotonic()
        while sock.recv(65536):
            pass
        return time.monotonic() - idle_from


@pytest.fixture(scope="module")
def server_close(functions_url) -> float:
    closes = [server_idle_close_seconds(functions_url) for _ in range(2)]
    assert all(4.5 < c < 10 for c in closes), closes            # Node 20: advertises 5 s, closes at 6 s
    return min(closes)


def test_the_emulator_closes_idle_keepalive_connections_before_the_client_would_reuse_them(server_close):
    assert DEFAULT_MAX_IDLE_SECONDS < server_close - 1.0         # the client lets go well before


def test_reusing_a_connection_idle_just_past_the_servers_timeout_fails_without_a_response(functions_url, server_close):
    """The failure itself, deliberately: a plain http.client connection reused just after the server closed it."""
    host, port = _address(functions_url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    assert _keepalive_request(conn).status == 404
    time.sleep(server_close + 0.3)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        _keepalive_request(conn)
    conn.close()


@pytest.mark.parametrize("past", [-0.02, 0.0, 0.02, 0.3])
def test_the_client_replaces_a_pooled_connection_idle_around_the_timeout_and_its_calls_succeed(
        clients, functions_url, server_close, past):
    """8 threads, each with a pooled keep-alive connection idle just around / past the server's close, then 8
    calls at once (the demo's get_offer burst after a rollout_sweep): all answered, none retried."""
    client = clients.service()
    warm = [f"{functions_url}{UNKNOWN_PATH}"] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda url: client._http.post(url, data=b"{}", timeout=30), warm))  # 8 pooled connections
        time.sleep(server_close + past)
        answers = list(pool.map(lambda i: client.ping(echo=str(i)), range(8)))
    assert [a["echo"] for a in answers] == [str(i) for i in range(8)]
    assert client.pool_stats.replaced_idle >= 1 and client.retries == 0

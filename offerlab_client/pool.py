"""A connection pool that never reuses a connection the server may be closing.

An HTTP server closes a keep-alive connection that stayed idle past its timeout: the Functions emulator's
server (Node 20, default ``keepAliveTimeout``) advertises ``Keep-Alive: timeout=5`` and closes at 6.0 s
(measured: tests/e2e/test_client_connections.py). A client that sends a request on such a connection in the instant
the server closes it gets no response: ``RemoteDisconnected('Remote end closed connection without
response')`` or a reset. urllib3 checks a pooled connection before reuse and replaces one whose close it
has already *received*, but the race is in the moment before: the server's timer fires (late, when its
event loop is busy, e.g. right after a sweep starts Python workers) while our request is on the wire.
The client cannot know whether such a request was processed (RFC 9110 §9.2.2), so the cure is not to
send it: a connection idle for more than ``max_idle`` seconds, set below the server's timeout, is closed
and replaced before use.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Below the 5 s the Functions emulator advertises (it closes at 6 s), with a margin for a late timer on our
# side. Google's front end in production keeps idle connections open far longer, so this costs at most a
# new connection (and TLS handshake) after a pause of a few seconds.
DEFAULT_MAX_IDLE_SECONDS = 4.0


class PoolStats:
    """What the pools did, for tests and curious callers: connections reused, and stale ones replaced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reused = 0
        self.replaced_idle = 0

    def add(self, field: str) -> None:
        with self._lock:
            setattr(self, field, getattr(self, field) + 1)


class _IdleLimit:
    """Mixed into urllib3's pools: stamps a connection when it goes back to the pool, and closes it on the way
    out if it has been idle too long (urllib3 reconnects a closed connection on its next request)."""

    max_idle: float
    stats: PoolStats

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        since = getattr(conn, "_offerlab_idle_since", None)
        if since is None:
            return conn                   # a new connection
        conn._offerlab_idle_since = None
        if time.monotonic() - since > self.max_idle:
            conn.close()                  # (urllib3 may already have closed it, if the server's FIN arrived)
            self.stats.add("replaced_idle")
        elif getattr(conn, "sock", None) is not None:
            self.stats.add("reused")
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn._offerlab_idle_since = time.monotonic()
        super()._put_conn(conn)  # type: ignore[misc]


class IdleLimitedAdapter(HTTPAdapter):
    """requests' adapter whose pools replace connections idle for more than ``max_idle`` seconds."""

    def __init__(self, max_idle: float = DEFAULT_MAX_IDLE_SECONDS, stats: PoolStats | None = None, **kwargs: Any) -> None:
        self.max_idle = max_idle
        self.stats = stats or PoolStats()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attrs = {"max_idle": self.max_idle, "stats": self.stats}
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("IdleLimitedHTTPConnectionPool", (_IdleLimit, HTTPConnectionPool), attrs),
            "https": type("IdleLimitedHTTPSConnectionPool", (_IdleLimit, HTTPSConnectionPool), attrs),
        }

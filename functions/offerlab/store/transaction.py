"""One use case, one transaction, and the ONE contention policy: what is retried, how often, and when a
caller sees ``Aborted`` instead.

The client library (``google.cloud.firestore.transactional``) retries only a commit that fails with
ABORTED. Under contention Firestore may also abort a transaction at one of its *reads* (the emulator
does so often: it locks documents pessimistically and aborts a waiter on lock timeout or deadlock), and
the client then rolls back and raises. Event handlers (``store.idempotency.apply_once``) therefore re-run
the whole transaction a few times with full-jitter exponential backoff (AWS Architecture Blog,
"Exponential Backoff And Jitter", 2015): the Functions emulator acknowledges every Pub/Sub message,
failed or not, so a handler that gives up loses its event there. Callables do not (``retries=0``): under
heavy contention each lock timeout costs seconds, and a caller is better served by a prompt ABORTED it
may retry than by a request that outlives its timeout (20 parallel pause/resume calls on one experiment
did, tests/reliability/test_delivery.py).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from offerlab.domain.errors import Aborted
from offerlab.store.client import db

T = TypeVar("T")

_CONTENTION = ("Aborted", "Conflict", "TooManyRequests")


@dataclass(frozen=True)
class ContentionPolicy:
    """How hard one use case tries before it reports contention (ABORTED: safe to retry, API.md §9).

    ``commit_attempts``: the client library's own retries of a commit that failed with ABORTED.
    ``reruns``: re-runs of the whole transaction after contention anywhere (a read aborted on a lock
    timeout included), with full-jitter backoff between them. At most ``commit_attempts × (reruns + 1)``
    commits are tried; nothing above this layer retries again (the ledger and apply_once use this policy).
    """

    commit_attempts: int
    reruns: int


CALLABLE = ContentionPolicy(commit_attempts=5, reruns=0)        # ≤ 5 commits, then ABORTED to the caller
EVENT_HANDLER = ContentionPolicy(commit_attempts=5, reruns=3)   # ≤ 20 commits, then the delivery is retried
EVENT_RETRIES = EVENT_HANDLER.reruns
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 1.0


def _is_contention(err: Exception) -> bool:
    from google.api_core import exceptions as gexc  # noqa: PLC0415

    if isinstance(err, gexc.GoogleAPICallError):
        return type(err).__name__ in _CONTENTION
    # the client's "Failed to commit transaction in N attempts" after its own commit retries
    return isinstance(err, ValueError) and "attempts" in str(err)


def run_in_transaction(body: Callable[[Any], T], policy: ContentionPolicy = CALLABLE) -> T:
    """Run ``body(transaction)`` in a Firestore transaction (reads first, then writes), under ``policy``.

    A body that raises writes nothing: the transaction is rolled back. ``body`` may run more than once
    (contention), so it must not keep state across runs except what it resets itself.
    """
    from google.cloud import firestore  # noqa: PLC0415

    retries = policy.reruns
    for attempt in range(retries + 1):
        transaction = db().transaction(max_attempts=policy.commit_attempts)
        try:
            return firestore.transactional(body)(transaction)
        except Exception as err:  # noqa: BLE001 - re-raised unless it is contention
            if not _is_contention(err):
                raise
        if attempt < retries:
            time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)))
    raise Aborted("The resource is busy; please retry.")

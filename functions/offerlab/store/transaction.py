"""One use case, one transaction: contention becomes the domain's ``Aborted`` (safe to retry)."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from offerlab.domain.errors import Aborted
from offerlab.store.client import db

T = TypeVar("T")

_CONTENTION = ("Aborted", "Conflict", "TooManyRequests")


def run_in_transaction(body: Callable[[Any], T], max_attempts: int = 5) -> T:
    """Run ``body(transaction)`` in a Firestore transaction (reads first, then writes), retried by the client.

    A body that raises writes nothing: the transaction is rolled back.
    """
    from google.api_core import exceptions as gexc  # noqa: PLC0415
    from google.cloud import firestore  # noqa: PLC0415

    transaction = db().transaction(max_attempts=max_attempts)
    try:
        return firestore.transactional(body)(transaction)
    except gexc.GoogleAPICallError as err:
        if type(err).__name__ in _CONTENTION:
            raise Aborted("The resource is busy; please retry.") from None
        raise
    except ValueError as err:  # the client's "Failed to commit transaction in N attempts"
        if "attempts" in str(err):
            raise Aborted("The resource is busy; please retry.") from None
        raise

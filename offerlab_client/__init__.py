"""A small typed client for offerlab's callables and the audit export endpoint.

    from offerlab_client import OfferlabClient, emulator_token
    client = OfferlabClient(base_url, token=emulator_token("pm-1", email="pm@company.com", roles=["experimenter"]))
    cohort = client.create_holdout_cohort(name="Q4 holdout", percentage=10)

Retries only what is safe to send again (offerlab_client/retry.py) and never reuses a pooled connection
the server may be closing (offerlab_client/pool.py).

Speaks the callable wire format (POST ``{"data": ...}`` → ``{"result": ...}`` or
``{"error": {status, message, details}}``) and raises each error status as its own exception type.
Only the standard library and ``requests``.
"""
from offerlab_client.client import OfferlabClient
from offerlab_client.errors import (
    Aborted, AlreadyExists, CallableError, FailedPrecondition, Internal, InvalidArgument, NotFound,
    PermissionDenied, Unauthenticated, Unavailable,
)
from offerlab_client.retry import IDEMPOTENT, NO_RETRY, RetryPolicy
from offerlab_client.tokens import emulator_token

__all__ = [
    "OfferlabClient", "emulator_token", "CallableError", "InvalidArgument", "Unauthenticated",
    "PermissionDenied", "NotFound", "FailedPrecondition", "Aborted", "AlreadyExists", "Internal",
    "Unavailable", "RetryPolicy", "NO_RETRY", "IDEMPOTENT",
]

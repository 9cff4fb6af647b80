"""The Firestore client, created lazily (cold start: google.cloud.firestore costs ~0.3 s to import)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from offerlab import config

if TYPE_CHECKING:
    from google.cloud.firestore import Client

_lock = threading.Lock()
_client: "Client | None" = None


def db() -> "Client":
    """The process-wide Firestore client. Under the emulators no credentials exist or are needed."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                from google.cloud import firestore  # noqa: PLC0415 - lazy on purpose

                if config.in_emulator():
                    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

                    _client = firestore.Client(project=config.PROJECT_ID, credentials=AnonymousCredentials())
                else:
                    _client = firestore.Client(project=config.PROJECT_ID)
    return _client

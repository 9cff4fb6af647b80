"""Publishing JSON messages to Pub/Sub: one lazily created PublisherClient per process.

Used by the sweeps' fan-out (guardrail-checks; the rollout sweep reuses it). With
``PUBSUB_EMULATOR_HOST`` set the client talks to the emulator (google-cloud-pubsub reads that variable
itself). A topic that does not exist yet is created on first use (AlreadyExists ignored: another instance
may create it at the same moment); in production the topics are also declared by the deployed
``on_message_published`` functions, so this is a no-op there.
"""
from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from offerlab import config

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

_lock = threading.Lock()
_publisher: "PublisherClient | None" = None
_known_topics: set[str] = set()

PUBLISH_TIMEOUT_S = 30.0


def publisher() -> "PublisherClient":
    global _publisher
    if _publisher is None:
        with _lock:
            if _publisher is None:
                from google.cloud import pubsub_v1  # noqa: PLC0415 - lazy (cold start)

                if config.in_emulator():
                    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

                    _publisher = pubsub_v1.PublisherClient(credentials=AnonymousCredentials())
                else:
                    _publisher = pubsub_v1.PublisherClient()
    return _publisher


def topic_path(topic: str) -> str:
    return publisher().topic_path(config.PROJECT_ID, topic)


def ensure_topic(topic: str) -> str:
    """The topic's full path, creating the topic when it is missing (once per process)."""
    path = topic_path(topic)
    if topic in _known_topics:
        return path
    from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415

    try:
        publisher().create_topic(request={"name": path})
    except AlreadyExists:
        pass
    _known_topics.add(topic)
    return path




def publish_many(topic: str, messages: list[dict[str, Any]], **attributes: str) -> list[str]:
    """Publish several messages concurrently (the client batches them); message ids in input order."""
    path = ensure_topic(topic)
    attrs = {k: str(v) for k, v in attributes.items()}
    futures = [publisher().publish(path, json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
                                   **attrs) for m in messages]
    return [f.result(timeout=PUBLISH_TIMEOUT_S) for f in futures]

"""Where checkpoints go outside the database, and where the log's signing key comes from (docs/ledger.md §11).

Published checkpoints live in Cloud Storage, one object per (chain, tree size):

    gs://<OFFERLAB_LEDGER_BUCKET>/ledger/<chain id, percent-encoded>/checkpoints/<tree size, 20 digits>

Uploads are create-only (``ifGenerationMatch=0``): the functions can add a checkpoint but never replace
one, whatever their code does. In production the bucket also has a locked retention policy, so nobody —
the functions' service account, an administrator, us — can delete or overwrite an object before it
expires. Locally the Storage emulator (scripts/storage_emulator.py) enforces the same precondition.

The signing key (a note signer key, ``PRIVATE+KEY+<name>+<id>+<base64>``) comes from the environment:
``OFFERLAB_LEDGER_SIGNING_KEY`` (production: the Secret Manager secret bound to the functions as this
variable) or ``OFFERLAB_LEDGER_SIGNING_KEY_FILE`` (the emulators: a key file generated on first start
under .cache/, git-ignored). Without either, checkpoints are not issued and the checkpoint callables
answer FAILED_PRECONDITION.
"""
from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from offerlab import config
from offerlab.ledger.note import NoteError, Signer, Verifier

log = logging.getLogger("offerlab.ledger")

SIGNING_KEY_ENV = "OFFERLAB_LEDGER_SIGNING_KEY"
PREVIOUS_KEYS_ENV = "OFFERLAB_LEDGER_PREVIOUS_VERIFIER_KEYS"  # comma-separated vkeys of rotated-out keys
SIGNING_KEY_FILE_ENV = "OFFERLAB_LEDGER_SIGNING_KEY_FILE"
BUCKET_ENV = "OFFERLAB_LEDGER_BUCKET"
_SIZE_DIGITS = 20  # a u64 tree size, zero-padded so object names sort by size


class CheckpointConflict(Exception):
    """A different checkpoint is already published at this tree size: the log was asked to fork."""


@lru_cache(maxsize=1)
def signer_from_environment() -> Signer | None:
    """The log's signer, or None when no key is configured (logged once)."""
    text = os.environ.get(SIGNING_KEY_ENV)
    path = os.environ.get(SIGNING_KEY_FILE_ENV)
    if not text and path:
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            log.error("ledger: signing key file %s cannot be read; no checkpoints", path)
            return None
    if not text:
        log.warning("ledger: no signing key (%s / %s); no checkpoints are issued", SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV)
        return None
    try:
        return Signer.parse(text)
    except NoteError:
        log.error("ledger: the configured signing key is malformed; no checkpoints")
        return None


@lru_cache(maxsize=1)
def previous_verifiers_from_environment() -> tuple[Verifier, ...]:
    """Verifier keys of earlier log keys (after a rotation), so older checkpoints still verify."""
    keys = []
    for vkey in filter(None, (k.strip() for k in os.environ.get(PREVIOUS_KEYS_ENV, "").split(","))):
        try:
            keys.append(Verifier.parse(vkey))
        except NoteError:
            log.error("ledger: ignoring a malformed previous verifier key")
    return tuple(keys)


def bucket_name() -> str:
    return os.environ.get(BUCKET_ENV) or f"{config.PROJECT_ID}-ledger-checkpoints"


def object_prefix(chain_id: str) -> str:
    return f"ledger/{quote(chain_id, safe='')}/checkpoints/"


def object_name(chain_id: str, size: int) -> str:
    return f"{object_prefix(chain_id)}{size:0{_SIZE_DIGITS}d}"


class GcsCheckpointPublisher:
    """Create-only checkpoint objects in Cloud Storage (service.ledger.CheckpointPublisher)."""

    _lock = threading.Lock()
    _client: Any = None
    _ready: set[str] = set()

    def __init__(self, bucket: str | None = None):
        self.bucket_name = bucket or bucket_name()

    def _bucket(self) -> Any:
        cls = type(self)
        with cls._lock:
            if cls._client is None:
                from google.cloud import storage  # noqa: PLC0415 - lazy (cold start)

                if config.in_emulator() or os.environ.get("STORAGE_EMULATOR_HOST"):
                    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

                    cls._client = storage.Client(project=config.PROJECT_ID, credentials=AnonymousCredentials())
                else:
                    cls._client = storage.Client(project=config.PROJECT_ID)
            bucket = cls._client.bucket(self.bucket_name)
            if self.bucket_name not in cls._ready and os.environ.get("STORAGE_EMULATOR_HOST"):
                # Only the emulator starts empty; in production the bucket (with its retention lock)
                # is created by the operator, never by the functions.
                from google.api_core.exceptions import Conflict  # noqa: PLC0415

                try:
                    cls._client.create_bucket(self.bucket_name)
                except Conflict:
                    pass
            cls._ready.add(self.bucket_name)
            return bucket

    def publish(self, chain_id: str, size: int, note_text: str) -> str:
        """Create the object of (chain, size); an identical one already there is fine (idempotent),
        a different one raises CheckpointConflict. Returns the object name."""
        from google.api_core.exceptions import PreconditionFailed  # noqa: PLC0415

        name = object_name(chain_id, size)
        blob = self._bucket().blob(name)
        try:
            blob.upload_from_string(note_text.encode("utf-8"), content_type="text/plain; charset=utf-8",
                                    if_generation_match=0)
        except PreconditionFailed:
            existing = self._bucket().blob(name).download_as_bytes().decode("utf-8", "replace")
            if existing != note_text:
                raise CheckpointConflict(f"{name} already holds a different checkpoint") from None
        return name

    def read(self, chain_id: str, size: int) -> str | None:
        from google.api_core.exceptions import NotFound  # noqa: PLC0415

        try:
            return self._bucket().blob(object_name(chain_id, size)).download_as_bytes().decode("utf-8", "replace")
        except NotFound:
            return None

    def sizes(self, chain_id: str, at_least: int = 0) -> list[int]:
        """Tree sizes published for the chain, ascending; from ``at_least`` on (names sort by size)."""
        prefix = object_prefix(chain_id)
        start = f"{prefix}{at_least:0{_SIZE_DIGITS}d}" if at_least else None
        out = []
        for blob in self._bucket().client.list_blobs(self.bucket_name, prefix=prefix, start_offset=start):
            tail = blob.name[len(prefix):]
            if len(tail) == _SIZE_DIGITS and tail.isdigit():
                out.append(int(tail))
        return sorted(out)

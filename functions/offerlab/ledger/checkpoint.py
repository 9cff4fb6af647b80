"""Checkpoints (c2sp.org/tlog-checkpoint): the signed head of a chain's Merkle tree, pure.

    <origin>\\n          the log's identity: "<log name>/<chain id>" (chain id percent-encoded)
    <tree size>\\n       decimal, no leading zeros
    <root hash>\\n       standard base64 of the RFC 6962 root at that size

and no extension lines. The note is signed by the log key (note.ED25519) and may carry cosignatures
of witnesses (note.COSIGNATURE_V1).

Every chain of the ledger is its own log with its own origin, all signed by one log key: the key name
is the log name, so the spec's "the log's key name SHOULD match the origin" holds for the prefix
only — one verifier key for every experiment is what an auditor can be handed once, out of band.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import quote, unquote

from offerlab.ledger.merkle import HASH_SIZE
from offerlab.ledger.note import NoteError


def origin(log_name: str, chain_id: str) -> str:
    """The origin of a chain's checkpoints: no spaces or '+' (the spec's SHOULD), one per chain."""
    return f"{log_name}/{quote(chain_id, safe=':-_.~')}"


def chain_of(origin_line: str, log_name: str) -> str | None:
    """The chain id an origin names, when it is one of ``log_name``'s; else None."""
    prefix = log_name + "/"
    return unquote(origin_line[len(prefix):]) if origin_line.startswith(prefix) else None


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode()

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        """The body of a checkpoint note (its text, signatures removed), strictly."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError("MALFORMED_CHECKPOINT", "a checkpoint is at least three non-empty lines")
        if len(lines) > 4:
            raise NoteError("MALFORMED_CHECKPOINT", "this log issues checkpoints without extension lines")
        origin_line, size_line, root_line = lines[:3]
        if not size_line.isascii() or not size_line.isdigit() or (size_line != "0" and size_line.startswith("0")):
            raise NoteError("MALFORMED_CHECKPOINT", "the tree size is a decimal number without leading zeros")
        try:
            root = base64.b64decode(root_line, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("MALFORMED_CHECKPOINT", "the root hash is not base64") from None
        if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_line:
            raise NoteError("MALFORMED_CHECKPOINT", "the root hash is not a canonical base64 SHA-256")
        return cls(origin_line, int(size_line), root)

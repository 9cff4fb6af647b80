"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures, and Ed25519 cosignatures
(c2sp.org/tlog-cosignature, "cosignature/v1"), pure (``cryptography`` for Ed25519, RFC 8032).

    <text ending in a newline>
    <blank line>
    — <key name> base64(key ID (4 bytes, big-endian) ‖ signature)      one line per signature

* key ID = SHA-256(key name ‖ 0x0A ‖ type ‖ public key)[:4]; type 0x01 = Ed25519 over the note text,
  0x04 = a timestamped cosignature: the signature is u64 timestamp (big-endian) ‖ Ed25519 over
  "cosignature/v1\\ntime <t>\\n" ‖ note text (tlog-cosignature §"Ed25519 signed message").
* verifier key (vkey) = ``<name>+<hex key ID>+base64(type ‖ 32-byte public key)``; signer key (the
  format of golang.org/x/mod/sumdb/note) = ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 ‖ 32-byte seed)``.
* a note must be UTF-8 without control characters other than newline; key names are non-empty, with
  no Unicode space and no '+'. Signatures by unknown keys are ignored; a signature by a known key that
  does not verify rejects the note; a note with no signature by a known key is rejected.

Vectors: tests/unit/data/signed-note-vectors.json (the Go note package's tests and the spec's example).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100           # the spec asks verifiers to accept at least 16; Go's note package allows 100
_DASH = "\u2014 "              # em dash, space


class NoteError(ValueError):
    """Why a note or a key was refused; ``code`` names the case (MALFORMED_NOTE, UNKNOWN_KEY, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


def key_id(name: str, key_type: int, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key).digest()
    return struct.unpack(">I", digest[:4])[0]


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("MALFORMED_NOTE", "not standard base64") from None


@dataclass(frozen=True)
class Verifier:
    """A verifier key: Ed25519 note signatures (0x01) or timestamped cosignatures (0x04)."""

    name: str
    key_id: int
    key_type: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> "Verifier":
        parts = vkey.strip().split("+", 2)  # base64 may hold "+"; names may not
        if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
            raise NoteError("MALFORMED_KEY", "a verifier key is <name>+<8 hex digits>+<base64 key>")
        name, hex_id, material = parts
        try:
            claimed = int(hex_id, 16)
        except ValueError:
            raise NoteError("MALFORMED_KEY", "the key ID is not hexadecimal") from None
        if hex_id != hex_id.lower():
            raise NoteError("MALFORMED_KEY", "the key ID must be lower-case hexadecimal")
        try:
            raw = _b64decode(material)
        except NoteError:
            raise NoteError("MALFORMED_KEY", "the key material is not base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("MALFORMED_KEY", "only Ed25519 keys (types 0x01 and 0x04) are supported")
        if key_id(name, raw[0], raw[1:]) != claimed:
            raise NoteError("MALFORMED_KEY", "the key ID does not match the key")
        return cls(name, claimed, raw[0], raw[1:])

    @property
    def vkey(self) -> str:
        material = base64.b64encode(bytes([self.key_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, text: bytes, signature: bytes) -> int | None:
        """Whether ``signature`` (without the key ID) signs ``text``; returns the cosignature's
        timestamp (0 for a plain Ed25519 signature), None when it does not verify."""
        public = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.key_type == ED25519:
            message, sig, stamp = text, signature, 0
        else:
            if len(signature) != 8 + 64:
                return None
            stamp = struct.unpack(">Q", signature[:8])[0]
            if stamp > 2**63 - 1:
                return None
            message, sig = cosignature_message(text, stamp), signature[8:]
        try:
            public.verify(sig, message)
        except InvalidSignature:
            return None
        return stamp


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs (tlog-cosignature §"Ed25519 signed message")."""
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text


@dataclass(frozen=True)
class Signer:
    """An Ed25519 signing key with its name: signs notes (0x01) or cosigns checkpoints (0x04)."""

    name: str
    seed: bytes
    key_type: int = ED25519

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise NoteError("MALFORMED_KEY", "a key name is non-empty, without spaces or '+'")
        if len(self.seed) != 32 or self.key_type not in (ED25519, COSIGNATURE_V1):
            raise NoteError("MALFORMED_KEY", "an Ed25519 seed is 32 bytes")

    @classmethod
    def generate(cls, name: str, key_type: int = ED25519) -> "Signer":
        return cls(name, os.urandom(32), key_type)

    @classmethod
    def parse(cls, skey: str) -> "Signer":
        """``PRIVATE+KEY+<name>+<hex id>+base64(type ‖ seed)``; the type byte is 0x01 or 0x04."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("MALFORMED_KEY", "a signer key is PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        _, _, name, hex_id, material = parts
        try:
            raw = _b64decode(material)
            claimed = int(hex_id, 16)
        except (NoteError, ValueError):
            raise NoteError("MALFORMED_KEY", "the signer key is not well-formed") from None
        if len(hex_id) != 8 or hex_id != hex_id.lower():
            raise NoteError("MALFORMED_KEY", "the key ID must be 8 lower-case hexadecimal digits")
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("MALFORMED_KEY", "only Ed25519 keys are supported")
        signer = cls(name, raw[1:], raw[0])
        if signer.key_id != claimed:
            raise NoteError("MALFORMED_KEY", "the key ID does not match the key")
        return signer

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes_raw()

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.key_type, self.public_key)

    @property
    def skey(self) -> str:
        material = base64.b64encode(bytes([self.key_type]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.key_type, self.public_key)

    def signature_line(self, text: str, timestamp: int | None = None) -> str:
        """The note signature line for ``text`` (a cosignature needs its POSIX ``timestamp``)."""
        body = text.encode("utf-8")
        if self.key_type == ED25519:
            sig = self._private.sign(body)
        else:
            if timestamp is None or not 0 <= timestamp <= 2**63 - 1:
                raise ValueError("a cosignature needs a timestamp")
            sig = struct.pack(">Q", timestamp) + self._private.sign(cosignature_message(body, timestamp))
        encoded = base64.b64encode(struct.pack(">I", self.key_id) + sig).decode()
        return f"{_DASH}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    signature: bytes       # without the key ID
    line: str


@dataclass(frozen=True)
class Note:
    text: str
    signatures: list[Signature]                          # every signature line, in order
    verified: list[tuple[Verifier, int]] = field(default_factory=list)   # (key, cosignature time or 0)

    def verified_by(self, verifier: Verifier) -> bool:
        return any(v == verifier for v, _ in self.verified)


def sign(text: str, signers: Sequence[Signer], timestamp: int | None = None) -> str:
    """A signed note: ``text`` (which must end in a newline) signed by each signer in turn."""
    _check_text(text)
    if not signers:
        raise ValueError("a note needs at least one signature")
    return text + "\n" + "".join(s.signature_line(text, timestamp) for s in signers)


def add_signature(note: str, signer: Signer, timestamp: int | None = None) -> str:
    """``note`` with one more signature line (e.g. a witness's cosignature), the text unchanged."""
    parsed = parse(note)
    lines = "".join(s.line for s in parsed.signatures if (s.name, s.key_id) != (signer.name, signer.key_id))
    return parsed.text + "\n" + lines + signer.signature_line(parsed.text, timestamp)


def _check_text(text: str) -> None:
    if not text.endswith("\n") or any(c < " " and c != "\n" for c in text):
        raise NoteError("MALFORMED_NOTE", "a note text ends in a newline and holds no control characters")


def parse(data: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking the syntax only (no verification)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("MALFORMED_NOTE", "the note is not valid UTF-8") from None
    if not isinstance(data, str) or any(c < " " and c != "\n" for c in data):
        raise NoteError("MALFORMED_NOTE", "the note holds a control character")
    split = data.rfind("\n\n")
    if split < 0 or not data.endswith("\n"):
        raise NoteError("MALFORMED_NOTE", "no blank line before the signatures, or no final newline")
    text, block = data[:split + 1], data[split + 2:]
    lines = block.split("\n")[:-1]
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError("MALFORMED_NOTE", "a note carries between 1 and 100 signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError("MALFORMED_NOTE", "a signature line starts with an em dash and a space")
        name, sep, encoded = line[len(_DASH):].partition(" ")
        if not sep or not _valid_name(name) or " " in encoded:
            raise NoteError("MALFORMED_NOTE", "a signature line is '— <key name> <base64 signature>'")
        raw = _b64decode(encoded)
        if len(raw) < 5:
            raise NoteError("MALFORMED_NOTE", "a signature is a key ID and at least one byte")
        signatures.append(Signature(name, struct.unpack(">I", raw[:4])[0], raw[4:], line + "\n"))
    return Note(text, signatures)


def open_note(data: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify a note (c2sp.org/signed-note §Signatures): signatures of unknown keys are ignored,
    a known key's signature that fails rejects the note, and at least one known key must have signed."""
    note = parse(data)
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        if (v.name, v.key_id) in known and known[(v.name, v.key_id)] != v:
            raise NoteError("AMBIGUOUS_KEY", f"two verifier keys share the name and ID {v.name}+{v.key_id:08x}")
        known[(v.name, v.key_id)] = v
    verified: list[tuple[Verifier, int]] = []
    text = note.text.encode("utf-8")
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        stamp = verifier.verify(text, sig.signature)
        if stamp is None:
            raise NoteError("INVALID_SIGNATURE", f"the signature of {sig.name}+{sig.key_id:08x} does not verify")
        if all(v != verifier for v, _ in verified):
            verified.append((verifier, stamp))
    if not verified:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures)
        raise NoteError("UNKNOWN_KEY", f"the note is signed by no known key (signed by: {names})")
    return Note(note.text, note.signatures, verified)

"""The hash chain (docs/ledger.md §4–5): sealing entries and verifying a chain as read back.

    canonical = canonical(entry without "hash" and "canonical")           RFC 8785, stored as text
    hash      = SHA-256( ASCII(prevHash) ‖ UTF-8(canonical) )            as 64 lowercase hex digits
    prevHash of sequence 1 = GENESIS_HASH (64 zeros); of sequence n > 1 = hash of sequence n − 1
    Merkle leaf n − 1 = UTF-8(canonical) of sequence n                  (merkle.py, RFC 9162 §2.1.1)

Every field of the stored entry except ``hash`` is covered, so adding, removing or changing any field
changes the hash. Entry ``n`` of chain ``c`` lives at document id ``entry_doc_id(c, n)``, and the chain's
head document records the last sequence, its hash and the count: together they make deletions,
insertions, reorderings and a truncated tail detectable (``verify_chain``); a published checkpoint
(checkpoint.py) makes a consistent rewrite of every entry and the head detectable too.

Sealing stores the canonical text beside the fields (``canonical``), so verifying hashes those bytes
instead of re-encoding the entry, and checks that the stored fields are exactly what the bytes decode
to (one C-speed JSON parse and one dict comparison): verification is bounded by hashing and parsing,
not by the encoder (benchmarks/bench_ledger.py). Entries sealed before the field existed are verified
by re-encoding, as before.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Iterable, Mapping, Sequence

from json.encoder import c_encode_basestring as _escape  # type: ignore[attr-defined]

from offerlab.ledger import merkle
from offerlab.ledger.canonical import MAX_SAFE_INTEGER, CanonicalizationError, canonical_str, canonicalize

_sha256 = hashlib.sha256

GENESIS_HASH = "0" * 64
HASH_FIELD = "hash"
CANONICAL_FIELD = "canonical"  # the entry's canonical text (without hash and canonical): what is hashed

# The fields of a stored entry (docs/ledger.md §2). ``experimentId`` is the chain id: an experiment id,
# or ``cohort:<cohortId>`` for a holdout cohort's chain.
ENTRY_FIELDS = ("experimentId", "sequence", "eventType", "actor", "sourceKind", "sourceDocument",
                "payload", "snapshotDigest", "recordedAt", "prevHash", "hash")
# What a sealed entry document holds: the fields above and their canonical text.
STORED_FIELDS = ENTRY_FIELDS + (CANONICAL_FIELD,)
# What a draft (a pending entry) supplies; sealing adds experimentId, sequence, prevHash and hash.
DRAFT_FIELDS = ("eventType", "actor", "sourceKind", "sourceDocument", "payload", "snapshotDigest", "recordedAt")


def entry_doc_id(chain_id: str, sequence: int) -> str:
    """Document id of entry ``sequence`` of a chain: zero-padded so ids sort in sequence order."""
    return f"{chain_id}_{sequence:012d}"


def digest(value: Any) -> str:
    """SHA-256 (hex) of a value's canonical encoding: the ``snapshotDigest`` of a source document."""
    return hashlib.sha256(canonicalize(value)).hexdigest()


# The canonical text of a well-formed entry is a fixed frame around its field values: member names
# sorted (RFC 8785 §3.2.3; all ASCII, so code-point and UTF-16 order agree), "hash" left out. Filling
# the frame skips the generic walk and sort of the ten envelope fields; only the payload goes through
# ``canonical_str``. Anything unusual (a missing or extra field, an unexpected type) takes the generic
# path, and tests/unit/test_ledger_chain.py checks the frame against the reference encoder.
_ENVELOPE = itemgetter("actor", "eventType", "experimentId", "payload", "prevHash", "recordedAt", "sequence",
                       "snapshotDigest", "sourceDocument", "sourceKind")  # the frame's order
_ENVELOPE_TYPES = (str, str, str, dict, str, str, int, str, str, str)
_ENVELOPE_TYPES_NO_DIGEST = (str, str, str, dict, str, str, int, type(None), str, str)
_ENVELOPE_STRINGS = itemgetter(0, 1, 2, 4, 5, 7, 8, 9)  # of the values above: every string field
# Each frame starts with %s: the hashed bytes are prevHash ‖ canonical(entry), built as one string.
# _FRAME takes the string fields already escaped (RFC 8785 §3.2.2.2); _FRAME_RAW quotes them as they are,
# valid when none of them holds a character that needs escaping.
_FRAME = ('%s{"actor":%s,"eventType":%s,"experimentId":%s,"payload":%s,"prevHash":%s,"recordedAt":%s,'
          '"sequence":%d,"snapshotDigest":%s,"sourceDocument":%s,"sourceKind":%s}')
_FRAME_RAW = ('%s{"actor":"%s","eventType":"%s","experimentId":"%s","payload":%s,"prevHash":"%s","recordedAt":"%s",'
              '"sequence":%d,"snapshotDigest":"%s","sourceDocument":"%s","sourceKind":"%s"}')
_FRAME_RAW_NO_DIGEST = ('%s{"actor":"%s","eventType":"%s","experimentId":"%s","payload":%s,"prevHash":"%s",'
                        '"recordedAt":"%s","sequence":%d,"snapshotDigest":null,"sourceDocument":"%s","sourceKind":"%s"}')


def _framed(entry: Mapping[str, Any], prefix_prev: bool) -> str | None:
    """The canonical text of a well-formed entry without "hash" (preceded by its prevHash when
    ``prefix_prev``), or None when the entry is not well-formed and the generic path must encode it."""
    if type(entry) is not dict:  # e.g. a defaultdict would grow a missing field on lookup
        return None
    if len(entry) - (HASH_FIELD in entry) - (CANONICAL_FIELD in entry) != 10:
        return None
    try:
        values = _ENVELOPE(entry)  # with the size check: exactly the ten fields (and "hash")
    except KeyError:
        return None
    types = tuple(map(type, values))
    if types != _ENVELOPE_TYPES and types != _ENVELOPE_TYPES_NO_DIGEST:
        return None
    actor, event, chain, payload, prev, recorded, sequence, snapshot, source, kind = values
    if not 0 <= sequence <= MAX_SAFE_INTEGER:
        return None
    body = canonical_str(payload)
    head = prev if prefix_prev else ""
    # Escaping always lengthens a string, so when escaping all the string fields at once adds only the
    # two quotes, no field needs escaping and each is its own escaped form between quotes: one C call
    # instead of eight.
    strings = _ENVELOPE_STRINGS(values) if snapshot is not None else (actor, event, chain, prev, recorded, source, kind)
    joined = "".join(strings)
    if len(_escape(joined)) == len(joined) + 2:
        if snapshot is None:
            return _FRAME_RAW_NO_DIGEST % (head, actor, event, chain, body, prev, recorded, sequence, source, kind)
        return _FRAME_RAW % (head, actor, event, chain, body, prev, recorded, sequence, snapshot, source, kind)
    esc = _escape
    return _FRAME % (head, esc(actor), esc(event), esc(chain), body, esc(prev), esc(recorded), sequence,
                     "null" if snapshot is None else esc(snapshot), esc(source), esc(kind))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("input contains a lone surrogate") from None


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """``canonicalize(entry without "hash" and "canonical")``, fast for well-formed entries."""
    text = _framed(entry, False)
    if text is not None:
        return _utf8(text)
    body = dict(entry)
    body.pop(HASH_FIELD, None)
    body.pop(CANONICAL_FIELD, None)
    return canonicalize(body)


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash an entry must carry, by re-encoding: over its ``prevHash`` and every field but ``hash``
    (and ``canonical``)."""
    text = _framed(entry, True)
    if text is not None:
        return _sha256(_utf8(text)).hexdigest()
    prev = entry.get("prevHash")
    prefix = _utf8(prev) if isinstance(prev, str) else b""
    return _sha256(prefix + canonical_entry(entry)).hexdigest()


def seal(chain_id: str, drafts: Iterable[Mapping[str, Any]], last_sequence: int, head_hash: str) -> list[dict[str, Any]]:
    """Number and hash drafts after the chain's current head; returns the sealed entries in order, each
    with its ``canonical`` text (its Merkle leaf data, ``leaf_data``)."""
    sealed = []
    prev, sequence = head_hash, last_sequence
    for draft in drafts:
        sequence += 1
        entry = {name: draft.get(name) for name in DRAFT_FIELDS}
        entry.update(experimentId=chain_id, sequence=sequence, prevHash=prev)
        text = canonical_entry(entry).decode("utf-8")
        entry[HASH_FIELD] = prev = _sha256(_utf8(prev + text)).hexdigest()
        entry[CANONICAL_FIELD] = text
        sealed.append(entry)
    return sealed


def leaf_data(entry: Mapping[str, Any]) -> bytes:
    """The bytes of an entry's Merkle leaf: its stored canonical text, or (sealed before it was stored)
    the canonical encoding of its fields."""
    text = entry.get(CANONICAL_FIELD)
    return _utf8(text) if isinstance(text, str) else canonical_entry(entry)


def _json_parser():
    """The fastest JSON parser at hand that reads canonical JSON exactly as ``json.loads`` does:
    ``pydantic_core.from_json`` (Rust; installed with pydantic) parses an entry in about half the
    time (benchmarks/bench_ledger.py); tests/unit/test_ledger_chain.py checks both agree."""
    try:
        from pydantic_core import from_json  # noqa: PLC0415 - optional: the offline verifier may lack it
    except ImportError:  # pragma: no cover - exercised where pydantic is not installed
        return json.loads

    def parse(text: str) -> Any:
        try:
            return from_json(text, allow_inf_nan=False)
        except ValueError:
            return json.loads(text)  # whatever it refuses, the standard parser decides

    return parse


decode_json = _json_parser()


def _number(literal: str) -> int | float:
    """A JSON integer literal as the ledger meant it: beyond ±(2**53 − 1) it can only be an integral
    double (RFC 8785 writes 1e20 as 100000000000000000000; the encoder refuses unsafe integers)."""
    value = int(literal)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(literal)


def decode_exact(text: str) -> Any:
    """Canonical JSON back to the values that were encoded (integral doubles beyond 2**53 as floats)."""
    return json.loads(text, parse_int=_number)


def decode_entry(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The entry its canonical text describes, with ``hash`` and ``canonical``: what the ledger serves.
    None when the stored text is missing or not a JSON object."""
    text = entry.get(CANONICAL_FIELD)
    if not isinstance(text, str):
        return None
    try:
        decoded = decode_exact(text)
    except ValueError:
        return None
    if type(decoded) is not dict:
        return None
    decoded[HASH_FIELD] = entry.get(HASH_FIELD)
    decoded[CANONICAL_FIELD] = text
    return decoded


def fields_match(entry: Mapping[str, Any]) -> bool:
    """Whether the stored fields are exactly what the stored canonical text decodes to.

    JSON value equality: an integral double and the integer it equals are the same JSON number (and
    encode the same, docs/ledger.md §3); Python's ``True == 1`` also makes a stored boolean swapped
    for 0/1 compare equal here, which is why everything the ledger serves is decoded from the bytes.
    """
    decoded = decode_entry(entry)
    return decoded is not None and decoded == entry


@dataclass(frozen=True)
class ChainError:
    """One finding; ``sequence`` is the sequence number it concerns (the first bad one for its kind)."""

    sequence: int | None
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Verification:
    valid: bool
    entries_checked: int
    head_hash: str
    first_bad_sequence: int | None
    errors: list[ChainError] = field(default_factory=list)
    tree_size: int = 0          # leaves of the Merkle tree of the entries as stored
    root_hash: str = ""         # its root, base64

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "entriesChecked": self.entries_checked, "headHash": self.head_hash,
                "firstBadSequence": self.first_bad_sequence, "errors": [e.to_json() for e in self.errors],
                "treeSize": self.tree_size, "rootHash": self.root_hash}


def _sort_key(item: tuple[str, Mapping[str, Any]]) -> tuple[int, str]:
    sequence = item[1].get("sequence")
    return (sequence if type(sequence) is int else 1 << 62, item[0])


def verify_chain(chain_id: str, entries: Sequence[tuple[str, Mapping[str, Any]]],
                 head: Mapping[str, Any] | None,
                 checkpoints: Sequence[tuple[int, bytes]] = ()) -> Verification:
    """Check a chain as read: ``entries`` are (document id, data) in any order, ``head`` the chain's head
    document (``lastSequence``, ``headHash``, ``count``, ``rootHash``) or None, ``checkpoints`` the
    (tree size, root hash) of checkpoints published outside the database (already signature-checked).

    Detects (codes in docs/ledger.md §5): a changed field (HASH_MISMATCH or FIELDS_MISMATCH), a changed
    hash (HASH_MISMATCH, then PREV_HASH_MISMATCH on the next entry), a deleted entry (MISSING_ENTRY), an
    inserted one (DUPLICATE_SEQUENCE, ENTRY_ID_MISMATCH or BEYOND_HEAD), reordered entries
    (ENTRY_ID_MISMATCH / HASH_MISMATCH / PREV_HASH_MISMATCH), a truncated tail (TRUNCATED, against the
    head; BEHIND_CHECKPOINT, against a checkpoint) and, against a checkpoint, a rewrite that left the
    chain and its head self-consistent (CONSISTENT_REWRITE) or anything else that changed the tree
    (CHECKPOINT_MISMATCH).
    """
    errors: list[ChainError] = []
    prev_hash, expected, checked, last_sequence = GENESIS_HASH, 1, 0, 0
    wanted = {size: root for size, root in checkpoints}
    computed: dict[int, bytes] = {}
    frontier: list[bytes] = []
    leaves = 0
    sha, leaf_of, parse = _sha256, merkle.leaf_hash, decode_json
    for doc_id, data in sorted(entries, key=_sort_key):
        get = data.get
        sequence = get("sequence")
        if type(sequence) is not int or sequence < 1:
            errors.append(ChainError(None, "BAD_SEQUENCE", f"entry {doc_id} has no valid sequence number"))
            continue
        checked += 1
        if doc_id != f"{chain_id}_{sequence:012d}":  # entry_doc_id, inlined: this loop is the hot path
            errors.append(ChainError(sequence, "ENTRY_ID_MISMATCH",
                                     f"entry {doc_id} claims sequence {sequence} of this chain"))
        if get("experimentId") != chain_id:
            errors.append(ChainError(sequence, "WRONG_CHAIN", f"entry {sequence} names another chain"))
        if sequence < expected:
            errors.append(ChainError(sequence, "DUPLICATE_SEQUENCE", f"a second entry claims sequence {sequence}"))
            continue
        if sequence > expected:
            gap = f"entry {expected} is" if sequence == expected + 1 else f"entries {expected}..{sequence - 1} are"
            errors.append(ChainError(expected, "MISSING_ENTRY", f"{gap} missing"))
        stored_prev = get("prevHash")
        if stored_prev != prev_hash:
            errors.append(ChainError(sequence, "PREV_HASH_MISMATCH",
                                     f"entry {sequence} does not link to the hash of the entry before it"))
        stored = get(HASH_FIELD)
        text = get(CANONICAL_FIELD)
        recomputed = raw = None
        if type(text) is str:
            # The stored bytes are hashed as they are; the fields must be exactly what they decode to.
            try:
                raw = text.encode("utf-8")
                decoded = parse(text)
            except (UnicodeEncodeError, ValueError):
                decoded = None
            if type(decoded) is dict and type(stored_prev) is str:
                recomputed = sha(stored_prev.encode("ascii", "replace") + raw).hexdigest()
                decoded[HASH_FIELD] = stored
                decoded[CANONICAL_FIELD] = text
                # A mismatch is re-checked with the exact decoder (integral doubles beyond 2**53) first.
                if decoded != data and decode_entry(data) != data:
                    errors.append(ChainError(sequence, "FIELDS_MISMATCH",
                                             f"the fields of entry {sequence} differ from its canonical bytes"))
            elif raw is not None and decoded is not None:
                errors.append(ChainError(sequence, "HASH_MISMATCH", f"entry {sequence} does not match its hash"))
        elif text is None:
            try:
                recomputed = entry_hash(data)
                raw = canonical_entry(data)
            except CanonicalizationError:
                recomputed = None
        if raw is None or (recomputed is None and type(text) is not str):
            errors.append(ChainError(sequence, "UNENCODABLE", f"entry {sequence} holds a value the ledger cannot hold"))
        elif recomputed is not None and recomputed != stored:
            errors.append(ChainError(sequence, "HASH_MISMATCH", f"entry {sequence} does not match its hash"))
        prev_hash = stored if isinstance(stored, str) else ""
        expected = sequence + 1
        last_sequence = sequence
        # The Merkle tree of the entries as stored, in sequence order (merkle.append, inlined).
        current, level = leaf_of(raw if raw is not None else b""), 0
        while leaves >> level & 1:
            current = merkle.node_hash(frontier.pop(), current)
            level += 1
        frontier.append(current)
        leaves += 1
        if leaves in wanted:
            computed[leaves] = merkle.root_from_frontier(frontier)
    head_hash = prev_hash
    tree_root = merkle.root_from_frontier(frontier)
    if head is None:
        if checked:
            errors.append(ChainError(1, "HEAD_MISSING", "the chain has entries but no head record"))
    else:
        recorded_last = head.get("lastSequence")
        recorded_hash = head.get("headHash")
        recorded_count = head.get("count")
        if type(recorded_last) is not int:
            errors.append(ChainError(None, "HEAD_INVALID", "the head record has no valid last sequence"))
        elif recorded_last > last_sequence:
            errors.append(ChainError(last_sequence + 1, "TRUNCATED",
                                     f"the head records {recorded_last} entries; the chain ends at {last_sequence}"))
        elif recorded_last < last_sequence:
            errors.append(ChainError(recorded_last + 1, "BEYOND_HEAD",
                                     f"entries after the recorded head ({recorded_last}) were added"))
        elif recorded_hash != head_hash:
            errors.append(ChainError(last_sequence or None, "HEAD_HASH_MISMATCH",
                                     "the last entry's hash differs from the recorded head hash"))
        elif "rootHash" in head and head.get("rootHash") != base64.b64encode(tree_root).decode():
            errors.append(ChainError(None, "HEAD_ROOT_MISMATCH",
                                     "the Merkle root recorded in the head differs from the entries' tree"))
        if type(recorded_count) is int and recorded_count != checked and not any(
                e.code in ("TRUNCATED", "BEYOND_HEAD") for e in errors):
            errors.append(ChainError(None, "COUNT_MISMATCH",
                                     f"the head records {recorded_count} entries; {checked} were found"))
    self_consistent = not errors
    for size, root in sorted(wanted.items()):
        if size > leaves:
            errors.append(ChainError(leaves + 1, "BEHIND_CHECKPOINT",
                                     f"a published checkpoint covers {size} entries; only {leaves} are stored"))
        elif computed.get(size) != root:
            if self_consistent:
                errors.append(ChainError(None, "CONSISTENT_REWRITE",
                                         f"the chain and its head agree with each other but not with the checkpoint "
                                         f"published at tree size {size}: entries up to {size} were rewritten together "
                                         "with the head"))
            else:
                errors.append(ChainError(None, "CHECKPOINT_MISMATCH",
                                         f"the entries do not reproduce the root of the checkpoint published at "
                                         f"tree size {size}"))
    numbered = [e.sequence for e in errors if e.sequence is not None]
    first_bad = min(numbered) if numbered else (1 if errors else None)
    return Verification(valid=not errors, entries_checked=checked, head_hash=head_hash,
                        first_bad_sequence=first_bad, errors=errors,
                        tree_size=leaves, root_hash=base64.b64encode(tree_root).decode())


def verify_entries_in_memory(entries: Sequence[Mapping[str, Any]]) -> int:
    """Recompute and compare every hash and link of an ordered list of entries; the number that pass.

    The hot loop of verification by re-encoding (entries without stored canonical bytes), for the
    benchmark (benchmarks/bench_ledger.py).
    """
    ok, prev, hash_of = 0, GENESIS_HASH, entry_hash
    for entry in entries:
        get = entry.get
        stored = get(HASH_FIELD)
        if get("prevHash") == prev and hash_of(entry) == stored:
            ok += 1
        prev = stored
    return ok


def verify_stored_bytes_in_memory(entries: Sequence[Mapping[str, Any]]) -> int:
    """The hot loop of verification over stored canonical bytes: per entry one SHA-256 of prevHash ‖
    bytes, one JSON parse and one dict comparison (the fields must be what the bytes decode to); the
    number that pass. For the benchmark (benchmarks/bench_ledger.py)."""
    ok, prev, sha, parse = 0, GENESIS_HASH, _sha256, decode_json
    for entry in entries:
        text = entry[CANONICAL_FIELD]
        stored = entry[HASH_FIELD]
        decoded = parse(text)
        if decoded["prevHash"] == prev and sha((prev + text).encode()).hexdigest() == stored:
            decoded[HASH_FIELD] = stored
            decoded[CANONICAL_FIELD] = text
            if decoded == entry or decode_entry(entry) == entry:
                ok += 1
        prev = stored
    return ok

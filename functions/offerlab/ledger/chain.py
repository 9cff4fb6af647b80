"""The hash chain (docs/ledger.md §4–5): sealing entries and verifying a chain as read back.

    hash = SHA-256( ASCII(prevHash) ‖ canonical(entry without "hash") )   as 64 lowercase hex digits
    prevHash of sequence 1 = GENESIS_HASH (64 zeros); of sequence n > 1 = hash of sequence n − 1

Every field of the stored entry except ``hash`` is covered, so adding, removing or changing any field
changes the hash. Entry ``n`` of chain ``c`` lives at document id ``entry_doc_id(c, n)``, and the chain's
head document records the last sequence, its hash and the count: together they make deletions,
insertions, reorderings and a truncated tail detectable (``verify_chain``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from json.encoder import c_encode_basestring as _escape  # type: ignore[attr-defined]

from offerlab.ledger.canonical import MAX_SAFE_INTEGER, CanonicalizationError, canonical_str, canonicalize

GENESIS_HASH = "0" * 64
HASH_FIELD = "hash"

# The fields of a stored entry (docs/ledger.md §2). ``experimentId`` is the chain id: an experiment id,
# or ``cohort:<cohortId>`` for a holdout cohort's chain.
ENTRY_FIELDS = ("experimentId", "sequence", "eventType", "actor", "sourceKind", "sourceDocument",
                "payload", "snapshotDigest", "recordedAt", "prevHash", "hash")
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
# ``canonicalize``. Anything unusual (a missing or extra field, an unexpected type) takes the generic
# path, and tests/unit/test_ledger_chain.py checks the frame against the reference encoder.
_FRAME = ('{"actor":%s,"eventType":%s,"experimentId":%s,"payload":%s,"prevHash":%s,"recordedAt":%s,'
          '"sequence":%d,"snapshotDigest":%s,"sourceDocument":%s,"sourceKind":%s}')
_FRAMED_KEYS = frozenset(ENTRY_FIELDS)
_STRING_FIELDS = ("actor", "eventType", "experimentId", "prevHash", "recordedAt", "sourceDocument", "sourceKind")


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """``canonicalize(entry without "hash")``, fast for well-formed entries."""
    if entry.keys() == _FRAMED_KEYS or entry.keys() == _FRAMED_KEYS - {HASH_FIELD}:
        g = entry.get
        actor, event, chain, prev, recorded, source, kind = (g(f) for f in _STRING_FIELDS)
        sequence, snapshot, payload = g("sequence"), g("snapshotDigest"), g("payload")
        if (type(actor) is str and type(event) is str and type(chain) is str and type(prev) is str
                and type(recorded) is str and type(source) is str and type(kind) is str
                and type(sequence) is int and 0 <= sequence <= MAX_SAFE_INTEGER
                and (snapshot is None or type(snapshot) is str) and type(payload) is dict):
            esc = _escape
            text = _FRAME % (esc(actor), esc(event), esc(chain), canonical_str(payload), esc(prev),
                             esc(recorded), sequence, "null" if snapshot is None else esc(snapshot), esc(source),
                             esc(kind))
            try:
                return text.encode("utf-8")
            except UnicodeEncodeError:
                raise CanonicalizationError("input contains a lone surrogate") from None
    body = dict(entry)
    body.pop(HASH_FIELD, None)
    return canonicalize(body)


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash an entry must carry: over its ``prevHash`` and every field but ``hash``."""
    prev = entry.get("prevHash")
    prefix = prev.encode("utf-8") if isinstance(prev, str) else b""
    return hashlib.sha256(prefix + canonical_entry(entry)).hexdigest()


def seal(chain_id: str, drafts: Iterable[Mapping[str, Any]], last_sequence: int, head_hash: str) -> list[dict[str, Any]]:
    """Number and hash drafts after the chain's current head; returns the sealed entries in order."""
    sealed = []
    prev, sequence = head_hash, last_sequence
    for draft in drafts:
        sequence += 1
        entry = {name: draft.get(name) for name in DRAFT_FIELDS}
        entry.update(experimentId=chain_id, sequence=sequence, prevHash=prev)
        entry[HASH_FIELD] = prev = entry_hash(entry)
        sealed.append(entry)
    return sealed


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

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "entriesChecked": self.entries_checked, "headHash": self.head_hash,
                "firstBadSequence": self.first_bad_sequence, "errors": [e.to_json() for e in self.errors]}


def _sort_key(item: tuple[str, Mapping[str, Any]]) -> tuple[int, str]:
    sequence = item[1].get("sequence")
    return (sequence if type(sequence) is int else 1 << 62, item[0])


def verify_chain(chain_id: str, entries: Sequence[tuple[str, Mapping[str, Any]]],
                 head: Mapping[str, Any] | None) -> Verification:
    """Check a chain as read: ``entries`` are (document id, data) in any order, ``head`` the chain's head
    document (``lastSequence``, ``headHash``, ``count``) or None.

    Detects (codes in docs/ledger.md §5): a changed field (HASH_MISMATCH), a changed hash (HASH_MISMATCH,
    then PREV_HASH_MISMATCH on the next entry), a deleted entry (MISSING_ENTRY), an inserted one
    (DUPLICATE_SEQUENCE, ENTRY_ID_MISMATCH or BEYOND_HEAD), reordered entries (ENTRY_ID_MISMATCH /
    HASH_MISMATCH / PREV_HASH_MISMATCH) and a truncated tail (TRUNCATED, against the head).
    """
    errors: list[ChainError] = []
    prev_hash, expected, checked, last_sequence = GENESIS_HASH, 1, 0, 0
    for doc_id, data in sorted(entries, key=_sort_key):
        sequence = data.get("sequence")
        if type(sequence) is not int or sequence < 1:
            errors.append(ChainError(None, "BAD_SEQUENCE", f"entry {doc_id} has no valid sequence number"))
            continue
        checked += 1
        if doc_id != entry_doc_id(chain_id, sequence):
            errors.append(ChainError(sequence, "ENTRY_ID_MISMATCH",
                                     f"entry {doc_id} claims sequence {sequence} of this chain"))
        if data.get("experimentId") != chain_id:
            errors.append(ChainError(sequence, "WRONG_CHAIN", f"entry {sequence} names another chain"))
        if sequence < expected:
            errors.append(ChainError(sequence, "DUPLICATE_SEQUENCE", f"a second entry claims sequence {sequence}"))
            continue
        if sequence > expected:
            gap = f"entry {expected} is" if sequence == expected + 1 else f"entries {expected}..{sequence - 1} are"
            errors.append(ChainError(expected, "MISSING_ENTRY", f"{gap} missing"))
        if data.get("prevHash") != prev_hash:
            errors.append(ChainError(sequence, "PREV_HASH_MISMATCH",
                                     f"entry {sequence} does not link to the hash of the entry before it"))
        try:
            recomputed = entry_hash(data)
        except CanonicalizationError:
            recomputed = None
        if recomputed is None:
            errors.append(ChainError(sequence, "UNENCODABLE", f"entry {sequence} holds a value the ledger cannot hold"))
        elif recomputed != data.get(HASH_FIELD):
            errors.append(ChainError(sequence, "HASH_MISMATCH", f"entry {sequence} does not match its hash"))
        stored = data.get(HASH_FIELD)
        prev_hash = stored if isinstance(stored, str) else ""
        expected = sequence + 1
        last_sequence = sequence
    head_hash = prev_hash
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
        if type(recorded_count) is int and recorded_count != checked and not any(
                e.code in ("TRUNCATED", "BEYOND_HEAD") for e in errors):
            errors.append(ChainError(None, "COUNT_MISMATCH",
                                     f"the head records {recorded_count} entries; {checked} were found"))
    numbered = [e.sequence for e in errors if e.sequence is not None]
    first_bad = min(numbered) if numbered else (1 if errors else None)
    return Verification(valid=not errors, entries_checked=checked, head_hash=head_hash,
                        first_bad_sequence=first_bad, errors=errors)


def verify_entries_in_memory(entries: Sequence[Mapping[str, Any]]) -> int:
    """Recompute and compare every hash and link of an ordered list of entries; the number that pass.

    The hot loop of verification without the bookkeeping, for the benchmark (benchmarks/bench_ledger.py).
    """
    ok, prev = 0, GENESIS_HASH
    for entry in entries:
        if entry.get("prevHash") == prev and entry_hash(entry) == entry.get(HASH_FIELD):
            ok += 1
        prev = entry.get(HASH_FIELD)
    return ok

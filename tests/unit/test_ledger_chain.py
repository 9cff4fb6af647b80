"""The hash chain: sealing, the entry frame's byte-identity with RFC 8785, and verification properties."""
import hashlib
import json

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.ledger.canonical import MAX_SAFE_INTEGER
from offerlab.ledger import merkle
from offerlab.ledger.chain import (
    CANONICAL_FIELD, ENTRY_FIELDS, GENESIS_HASH, STORED_FIELDS, canonical_entry, decode_entry, decode_json,
    decode_exact, entry_doc_id, entry_hash, fields_match, leaf_data, seal, verify_chain, verify_entries_in_memory,
    verify_stored_bytes_in_memory,
)

TEXT = st.text(max_size=12)
PAYLOAD = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
              st.floats(allow_nan=False, allow_infinity=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=5)), max_leaves=20)
ENTRY = st.fixed_dictionaries({
    "experimentId": TEXT, "sequence": st.integers(1, MAX_SAFE_INTEGER), "eventType": TEXT, "actor": TEXT,
    "sourceKind": TEXT, "sourceDocument": TEXT, "payload": st.dictionaries(TEXT, PAYLOAD, max_size=6),
    "snapshotDigest": st.one_of(st.none(), TEXT), "recordedAt": TEXT, "prevHash": TEXT, "hash": TEXT,
})
# Entries as an attacker may leave them: fields missing or added, odd types.
ODD_ENTRY = st.dictionaries(st.sampled_from(list(ENTRY_FIELDS) + ["extra"]), PAYLOAD, max_size=12)


@settings(max_examples=600, deadline=None)
@given(ENTRY)
def test_the_entry_frame_is_byte_identical_to_the_reference(entry):
    body = {k: v for k, v in entry.items() if k != "hash"}
    assert canonical_entry(entry) == rfc8785.dumps(body)
    assert entry_hash(entry) == hashlib.sha256(entry["prevHash"].encode() + rfc8785.dumps(body)).hexdigest()


@settings(max_examples=400, deadline=None)
@given(ODD_ENTRY)
def test_odd_entries_take_the_generic_path_and_still_match(entry):
    body = {k: v for k, v in entry.items() if k != "hash"}
    try:
        expected = rfc8785.dumps(body)
    except Exception:
        return  # unencodable for the reference too (verification reports UNENCODABLE)
    assert canonical_entry(entry) == expected


DRAFT = st.fixed_dictionaries({"eventType": TEXT, "actor": TEXT, "sourceKind": TEXT, "sourceDocument": TEXT,
                               "payload": st.dictionaries(TEXT, PAYLOAD, max_size=4),
                               "snapshotDigest": st.one_of(st.none(), TEXT), "recordedAt": TEXT})


def _docs_and_head(entries):
    docs = [(entry_doc_id("c-1", e["sequence"]), e) for e in entries]
    head = {"lastSequence": len(entries), "headHash": entries[-1]["hash"], "count": len(entries)}
    return docs, head


@settings(max_examples=150, deadline=None)
@given(st.lists(DRAFT, min_size=1, max_size=8), st.data())
def test_a_sealed_chain_verifies_and_any_single_edit_is_caught_at_that_entry(drafts, data):
    entries = seal("c-1", drafts, 0, GENESIS_HASH)
    docs, head = _docs_and_head(entries)
    assert verify_chain("c-1", docs, head).valid
    assert verify_entries_in_memory(entries) == len(entries) == verify_stored_bytes_in_memory(entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["eventType", "actor", "payload", "recordedAt", "snapshotDigest"]))
    where = data.draw(st.sampled_from(["fields", "bytes", "both", "legacy"]))
    original = entries[index]
    value = {"tampered": True} if field == "payload" else "tampered-value"
    if original[field] == value:
        return
    tampered = dict(original)
    if where in ("fields", "both", "legacy"):
        tampered[field] = value
    if where in ("bytes", "both"):  # the stored canonical text edited (re-encoded with the new value)
        body = decode_exact(original[CANONICAL_FIELD])
        body[field] = value
        tampered[CANONICAL_FIELD] = rfc8785.dumps(body).decode()
    if where == "legacy":  # an entry sealed before the canonical text was stored: verified by re-encoding
        for doc in docs:
            doc[1].pop(CANONICAL_FIELD, None)
        tampered.pop(CANONICAL_FIELD)
    docs[index] = (docs[index][0], tampered)
    result = verify_chain("c-1", docs, head)
    assert not result.valid and result.first_bad_sequence == index + 1
    expected = {"fields": ["FIELDS_MISMATCH"], "bytes": ["FIELDS_MISMATCH", "HASH_MISMATCH"],
                "both": ["HASH_MISMATCH"], "legacy": ["HASH_MISMATCH"]}[where]
    assert sorted(e.code for e in result.errors) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(DRAFT, min_size=1, max_size=8))
def test_stored_bytes_decode_to_the_fields_and_are_the_reference_encoding(drafts):
    for entry in seal("c-1", drafts, 0, GENESIS_HASH):
        body = {k: v for k, v in entry.items() if k not in ("hash", CANONICAL_FIELD)}
        assert entry[CANONICAL_FIELD].encode() == rfc8785.dumps(body) == leaf_data(entry)
        assert fields_match(entry) and decode_entry(entry) == entry
        # the fast parser reads canonical JSON exactly as the standard one (types included)
        assert repr(decode_json(entry[CANONICAL_FIELD])) == repr(json.loads(entry[CANONICAL_FIELD]))
        assert decode_exact(entry[CANONICAL_FIELD]) == body


@settings(max_examples=80, deadline=None)
@given(st.lists(DRAFT, min_size=1, max_size=12), st.data())
def test_a_consistent_rewrite_is_caught_only_by_the_checkpoint_and_named(drafts, data):
    entries = seal("c-1", drafts, 0, GENESIS_HASH)
    size = data.draw(st.integers(1, len(entries)))
    checkpoint = (size, merkle.root(merkle.leaf_hash(leaf_data(e)) for e in entries[:size]))
    docs, head = _docs_and_head(entries)
    assert verify_chain("c-1", docs, head, [checkpoint]).valid
    # Rewrite entry `index` and re-seal everything after it, head included: self-consistent.
    index = data.draw(st.integers(0, len(entries) - 1))
    forged_drafts = [dict(e) for e in entries]
    forged_drafts[index]["actor"] = forged_drafts[index]["actor"] + "-forged"
    forged = seal("c-1", forged_drafts, 0, GENESIS_HASH)
    fdocs, fhead = _docs_and_head(forged)
    assert verify_chain("c-1", fdocs, fhead).valid           # the database alone cannot tell
    result = verify_chain("c-1", fdocs, fhead, [checkpoint])
    if index < size:
        assert [e.code for e in result.errors] == ["CONSISTENT_REWRITE"]
    else:  # entries the checkpoint does not cover: not detectable by it (the next checkpoint covers them)
        assert result.valid
    truncated = verify_chain("c-1", docs[:size - 1], {**head, "lastSequence": size - 1,
                                                        "headHash": entries[size - 2]["hash"] if size > 1 else GENESIS_HASH,
                                                        "count": size - 1}, [checkpoint])
    assert "BEHIND_CHECKPOINT" in [e.code for e in truncated.errors]


def test_a_swapped_boolean_compares_equal_as_json_which_is_why_reads_decode_the_bytes():
    entry = seal("c-1", [{"eventType": "E", "payload": {"flag": True}}], 0, GENESIS_HASH)[0]
    stored = dict(entry, payload={"flag": 1})
    assert fields_match(stored)                       # Python: True == 1 (documented in chain.fields_match)
    assert decode_entry(stored)["payload"]["flag"] is True   # what is served comes from the bytes


def test_seal_links_each_entry_to_the_one_before():
    entries = seal("c-2", [{"eventType": "A"}, {"eventType": "B"}], 4, "ab" * 32)
    assert [e["sequence"] for e in entries] == [5, 6]
    assert entries[0]["prevHash"] == "ab" * 32 and entries[1]["prevHash"] == entries[0]["hash"]
    assert all(e["experimentId"] == "c-2" and e["hash"] == entry_hash(e) for e in entries)
    assert set(entries[0]) == set(STORED_FIELDS) == set(ENTRY_FIELDS) | {CANONICAL_FIELD}


def test_an_empty_chain_without_head_is_valid_and_a_head_without_entries_is_truncated():
    assert verify_chain("c-3", [], None).valid
    result = verify_chain("c-3", [], {"lastSequence": 2, "headHash": "x", "count": 2})
    assert not result.valid and result.first_bad_sequence == 1 and result.errors[0].code == "TRUNCATED"

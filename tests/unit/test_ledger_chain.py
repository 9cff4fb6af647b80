"""The hash chain: sealing, the entry frame's byte-identity with RFC 8785, and verification properties."""
import hashlib

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.ledger.canonical import MAX_SAFE_INTEGER
from offerlab.ledger.chain import (
    ENTRY_FIELDS, GENESIS_HASH, canonical_entry, entry_doc_id, entry_hash, seal, verify_chain, verify_entries_in_memory,
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


@settings(max_examples=150, deadline=None)
@given(st.lists(DRAFT, min_size=1, max_size=8), st.data())
def test_a_sealed_chain_verifies_and_any_single_edit_is_caught_at_that_entry(drafts, data):
    entries = seal("c-1", drafts, 0, GENESIS_HASH)
    docs = [(entry_doc_id("c-1", e["sequence"]), e) for e in entries]
    head = {"lastSequence": len(entries), "headHash": entries[-1]["hash"], "count": len(entries)}
    assert verify_chain("c-1", docs, head).valid
    assert verify_entries_in_memory(entries) == len(entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["eventType", "actor", "payload", "recordedAt", "snapshotDigest"]))
    tampered = dict(entries[index])
    tampered[field] = {"tampered": True} if field == "payload" else "tampered-value"
    if tampered[field] == entries[index][field]:
        return
    docs[index] = (docs[index][0], tampered)
    result = verify_chain("c-1", docs, head)
    assert not result.valid and result.first_bad_sequence == index + 1
    assert [e.code for e in result.errors] == ["HASH_MISMATCH"]


def test_seal_links_each_entry_to_the_one_before():
    entries = seal("c-2", [{"eventType": "A"}, {"eventType": "B"}], 4, "ab" * 32)
    assert [e["sequence"] for e in entries] == [5, 6]
    assert entries[0]["prevHash"] == "ab" * 32 and entries[1]["prevHash"] == entries[0]["hash"]
    assert all(e["experimentId"] == "c-2" and e["hash"] == entry_hash(e) for e in entries)
    assert set(entries[0]) == set(ENTRY_FIELDS)


def test_an_empty_chain_without_head_is_valid_and_a_head_without_entries_is_truncated():
    assert verify_chain("c-3", [], None).valid
    result = verify_chain("c-3", [], {"lastSequence": 2, "headHash": "x", "count": 2})
    assert not result.valid and result.first_bad_sequence == 1 and result.errors[0].code == "TRUNCATED"

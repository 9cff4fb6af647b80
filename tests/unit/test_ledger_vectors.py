"""Golden vectors of the ledger format (docs/ledger.md §10): one valid chain and each kind of tampering.

The vectors live in tests/unit/data/ledger-vectors.json so that another implementation (an auditor's
script, a future TypeScript client) can check itself against them. They are produced by ``build_vectors``
below; regenerate (only when the format deliberately changes) with

    functions/venv/bin/python tests/unit/test_ledger_vectors.py --write

The tests check the file is exactly what the builder produces, that the valid chain's hashes follow
from the *reference* RFC 8785 encoder and hashlib alone, and that verification names each tampering.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from pathlib import Path

import pytest
import rfc8785

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "functions")]

from offerlab.ledger.chain import GENESIS_HASH, canonical_entry, entry_doc_id, seal, verify_chain  # noqa: E402

VECTORS = Path(__file__).resolve().parent / "data" / "ledger-vectors.json"
CHAIN = "exp-golden-0001"


def _drafts() -> list[dict]:
    base = {"sourceKind": "EXPERIMENT_EVENT", "snapshotDigest": None}
    return [
        {**base, "eventType": "EXPERIMENT_CREATED", "actor": "pm@company.com", "recordedAt": "2026-11-25T09:00:00.000001Z",
         "sourceDocument": f"experimentEvents/{CHAIN}_1",
         "payload": {"toStatus": "DRAFT", "version": 1, "offerConfig": {"newPrice": 12.99, "currency": "EUR"},
                     "hypothesis": {"statement": "Prix à 12,99 € augmente la LTV de 15 %", "expectedImpact": "+15% net LTV"}}},
        {**base, "eventType": "EXPERIMENT_SUBMITTED", "actor": "pm@company.com", "recordedAt": "2026-11-25T09:05:00.000000Z",
         "sourceDocument": f"experimentEvents/{CHAIN}_2", "payload": {"fromStatus": "DRAFT", "toStatus": "PENDING_APPROVAL", "version": 2}},
        {**base, "eventType": "EXPERIMENT_APPROVED", "actor": "ceo@company.com", "recordedAt": "2026-11-25T10:00:00.250000Z",
         "sourceDocument": f"experimentEvents/{CHAIN}_3",
         "payload": {"fromStatus": "PENDING_APPROVAL", "toStatus": "APPROVED", "version": 3, "payload": {"comment": "ok \U0001f44d"}}},
        {**base, "eventType": "ROLLOUT_STAGE_ENTERED", "actor": "system", "sourceKind": "ROLLOUT_EVENT",
         "recordedAt": "2026-11-25T11:00:00.000000Z", "sourceDocument": f"rolloutEvents/{CHAIN}_1",
         "payload": {"fromStage": None, "toStage": 1, "ratio": 1e-7, "big": 1e21}},
        {**base, "eventType": "ANALYSIS_RECORDED", "actor": "analyst@company.com", "sourceKind": "ANALYSIS",
         "recordedAt": "2026-11-26T08:00:00.000000Z", "sourceDocument": "experimentAnalyses/an-1",
         "snapshotDigest": hashlib.sha256(b"analysis").hexdigest(),
         "payload": {"pValue": 0.0123, "confidenceInterval": [-0.5, 3.25], "rawPercentChange": 4.0, "n": 9007199254740991}},
        {**base, "eventType": "UNAUTHORISED_CHANGE", "actor": "unattributed", "sourceKind": "EXPERIMENT_DOCUMENT",
         "recordedAt": "2026-11-26T09:30:00.000000Z", "sourceDocument": f"offerExperiments/{CHAIN}",
         "payload": {"changedFields": ["offerConfig.newPrice"], "problems": ["fields changed without the version changing"],
                     "changes": [{"path": "offerConfig.newPrice", "before": 12.99, "after": 9.99}], "\ue000": 1, "\U0001f600": 2}},
    ]


def _as_docs(entries: list[dict]) -> list[dict]:
    return [{"id": entry_doc_id(CHAIN, e["sequence"]), "data": e} for e in entries]


def _head(entries: list[dict]) -> dict:
    return {"lastSequence": entries[-1]["sequence"], "headHash": entries[-1]["hash"], "count": len(entries)}


def _rehash(data: dict) -> None:
    """What a forger with database access does after editing an entry: re-encode and re-hash it."""
    data["canonical"] = canonical_entry(data).decode()
    data["hash"] = hashlib.sha256((data["prevHash"] + data["canonical"]).encode()).hexdigest()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written out recursively here so the vectors do not depend on merkle.py."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def build_vectors() -> dict:
    valid = seal(CHAIN, _drafts(), 0, GENESIS_HASH)
    head = _head(valid)
    docs = _as_docs(valid)
    root = base64.b64encode(_mth([e["canonical"].encode() for e in valid])).decode()

    def variant(name, description, docs_, head_, first_bad, codes, checkpoints=()):
        return {"name": name, "description": description, "entries": docs_, "head": head_,
                "checkpoints": [list(c) for c in checkpoints],
                "expect": {"valid": False, "firstBadSequence": first_bad, "codes": codes}}

    tampered = []
    d = copy.deepcopy(docs)
    d[2]["data"]["payload"]["payload"]["comment"] = "ok"
    tampered.append(variant("modified-payload", "entry 3's payload field edited, its canonical bytes and hash left as "
                            "they were", d, head, 3, ["FIELDS_MISMATCH"]))

    d = copy.deepcopy(docs)
    d[2]["data"]["canonical"] = d[2]["data"]["canonical"].replace('"comment":"ok ', '"comment":"OK ')
    tampered.append(variant("modified-bytes", "entry 3's canonical bytes edited, fields and hash left as they were",
                            d, head, 3, ["FIELDS_MISMATCH", "HASH_MISMATCH"]))

    d = copy.deepcopy(docs)
    d[2]["data"]["actor"] = "cfo@company.com"
    _rehash(d[2]["data"])
    tampered.append(variant("modified-payload-rehashed", "entry 3 edited, re-encoded and re-hashed: entry 4 no longer "
                            "links to it", d, head, 4, ["PREV_HASH_MISMATCH"]))

    d = copy.deepcopy(docs)
    d[2]["data"]["hash"] = hashlib.sha256(b"forged").hexdigest()
    tampered.append(variant("modified-hash", "entry 3's hash replaced", d, head, 3, ["HASH_MISMATCH", "PREV_HASH_MISMATCH"]))

    d = copy.deepcopy(docs)
    del d[2]
    tampered.append(variant("deleted-entry", "entry 3 deleted", d, head, 3,
                            ["MISSING_ENTRY", "PREV_HASH_MISMATCH", "COUNT_MISMATCH"]))

    d = copy.deepcopy(docs)
    extra = seal(CHAIN, [_drafts()[1]], 6, valid[-1]["hash"])[0]
    d.append({"id": entry_doc_id(CHAIN, 7), "data": extra})
    tampered.append(variant("inserted-entry-after-head", "a well-formed entry 7 appended behind the recorded head",
                            d, head, 7, ["BEYOND_HEAD"]))

    d = copy.deepcopy(docs)
    forged = seal(CHAIN, [_drafts()[2]], 2, valid[1]["hash"])[0]
    shifted = []
    for doc in d[2:]:
        data = dict(doc["data"], sequence=doc["data"]["sequence"] + 1)
        shifted.append({"id": entry_doc_id(CHAIN, data["sequence"]), "data": data})
    d = d[:2] + [{"id": entry_doc_id(CHAIN, 3), "data": forged}] + shifted
    tampered.append(variant("inserted-entry-middle", "a forged entry 3 linked to entry 2; the rest renumbered",
                            d, head, 4, ["PREV_HASH_MISMATCH", "FIELDS_MISMATCH", "BEYOND_HEAD"]))

    d = copy.deepcopy(docs)
    d.append({"id": entry_doc_id(CHAIN, 3) + "-copy", "data": copy.deepcopy(docs[2]["data"])})
    tampered.append(variant("inserted-duplicate", "a copy of entry 3 stored under another id", d, head, 3,
                            ["ENTRY_ID_MISMATCH", "DUPLICATE_SEQUENCE", "COUNT_MISMATCH"]))

    d = copy.deepcopy(docs)
    d[2]["data"], d[3]["data"] = d[3]["data"], d[2]["data"]
    tampered.append(variant("reordered-documents", "the documents of entries 3 and 4 swapped", d, head, 3,
                            ["ENTRY_ID_MISMATCH"]))

    d = copy.deepcopy(docs)
    a, b = dict(d[2]["data"]), dict(d[3]["data"])
    a["sequence"], b["sequence"] = 4, 3
    d[2]["data"], d[3]["data"] = b, a
    tampered.append(variant("reordered-renumbered", "entries 3 and 4 swapped and renumbered to fit their ids", d, head, 3,
                            ["PREV_HASH_MISMATCH", "FIELDS_MISMATCH"]))

    d = copy.deepcopy(docs)[:4]
    tampered.append(variant("truncated-tail", "entries 5 and 6 deleted; the head still records 6", d, head, 5, ["TRUNCATED"]))

    tampered.append(variant("head-missing", "the chain's head record deleted", copy.deepcopy(docs), None, 1, ["HEAD_MISSING"]))

    forged_drafts = copy.deepcopy(valid)
    forged_drafts[2]["actor"] = "cfo@company.com"
    forged = seal(CHAIN, forged_drafts, 0, GENESIS_HASH)
    tampered.append(variant("consistent-rewrite", "entry 3 edited and every entry after it re-sealed, head included: "
                            "self-consistent, caught only by the checkpoint published at size 6",
                            _as_docs(forged), _head(forged), 1, ["CONSISTENT_REWRITE"], [(6, root)]))

    tampered.append(variant("truncated-head-rewritten", "entries 5 and 6 deleted and the head rewritten to match: "
                            "caught by the checkpoint published at size 6", copy.deepcopy(docs)[:4], _head(valid[:4]),
                            5, ["BEHIND_CHECKPOINT"], [(6, root)]))

    return {
        "description": "offerlab ledger golden vectors (docs/ledger.md). canonical = RFC8785(entry without 'hash' and "
                       "'canonical'); hash = SHA-256(ASCII(prevHash) || UTF-8(canonical)), hex; genesis prevHash = 64 "
                       "zeros; Merkle leaf = UTF-8(canonical), RFC 9162 tree; checkpoints = [tree size, base64 root].",
        "chainId": CHAIN,
        "genesisHash": GENESIS_HASH,
        "valid": {"entries": docs, "head": head, "rootHash": root,
                  "canonical": [rfc8785.dumps({k: v for k, v in e.items() if k not in ("hash", "canonical")}).decode()
                                for e in valid]},
        "tampered": tampered,
    }


def _dump(vectors: dict) -> str:
    return json.dumps(vectors, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def _load() -> dict:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


def test_the_vectors_file_is_what_the_builder_produces():
    assert VECTORS.read_text(encoding="utf-8") == _dump(build_vectors())


def test_valid_chain_hashes_follow_from_the_reference_encoder_alone():
    vectors = _load()
    prev = vectors["genesisHash"]
    for doc, canonical in zip(vectors["valid"]["entries"], vectors["valid"]["canonical"]):
        data = doc["data"]
        body = {k: v for k, v in data.items() if k not in ("hash", "canonical")}
        assert rfc8785.dumps(body).decode() == canonical == data["canonical"]
        assert data["prevHash"] == prev
        assert hashlib.sha256(prev.encode() + rfc8785.dumps(body)).hexdigest() == data["hash"]
        prev = data["hash"]
    assert vectors["valid"]["head"]["headHash"] == prev
    leaves = [c.encode() for c in vectors["valid"]["canonical"]]
    assert base64.b64encode(_mth(leaves)).decode() == vectors["valid"]["rootHash"]


def test_the_valid_chain_verifies():
    vectors = _load()
    root = base64.b64decode(vectors["valid"]["rootHash"])
    result = verify_chain(vectors["chainId"], [(d["id"], d["data"]) for d in vectors["valid"]["entries"]],
                          vectors["valid"]["head"], [(6, root)])
    assert result.valid and result.errors == [] and result.entries_checked == 6
    assert result.head_hash == vectors["valid"]["head"]["headHash"]
    assert result.root_hash == vectors["valid"]["rootHash"] and result.tree_size == 6


@pytest.mark.parametrize("name", [v["name"] for v in build_vectors()["tampered"]])
def test_each_tampering_is_detected_at_the_expected_sequence(name):
    vectors = _load()
    case = next(v for v in vectors["tampered"] if v["name"] == name)
    checkpoints = [(size, base64.b64decode(root)) for size, root in case["checkpoints"]]
    result = verify_chain(vectors["chainId"], [(d["id"], d["data"]) for d in case["entries"]], case["head"], checkpoints)
    assert result.valid is case["expect"]["valid"]
    assert result.first_bad_sequence == case["expect"]["firstBadSequence"]
    assert {e.code for e in result.errors} == set(case["expect"]["codes"])


if __name__ == "__main__":
    if "--write" in sys.argv:
        VECTORS.write_text(_dump(build_vectors()), encoding="utf-8")
        print(f"wrote {VECTORS}")
    else:
        print(_dump(build_vectors()))

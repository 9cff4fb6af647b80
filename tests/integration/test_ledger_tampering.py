"""Each kind of tampering, done directly in Firestore, is detected by verify_ledger with the first bad
sequence named (docs/ledger.md §5) — including a consistent rewrite of every entry, the tree and the
head, which only the checkpoint published in the Storage emulator reveals (§11). Chains are built
through the service (record + sequence) on the real emulators, each test on a fresh chain, with a
checkpoint of the whole chain published."""
from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timezone

import pytest

from offerlab.ledger import merkle, note
from offerlab.ledger.chain import canonical_entry, entry_doc_id
from offerlab.ledger.checkpoint import Checkpoint
from offerlab.ledger.drafts import SourceEvent, SourceKind
from offerlab.ledger.head import grow, new_head_state
from offerlab.ledger.values import rfc3339
from offerlab.service import ledger as svc
from offerlab.store import collections as C
from offerlab.store.ledger import LEDGER_TREE_NODES, node_doc_id
from tests.integration.ledger_support import emulator_ledger

L = emulator_ledger()
repo = L.repo
N = 6


@pytest.fixture
def chain(firestore_db) -> str:
    chain_id = f"tamper-{uuid.uuid4().hex[:12]}"
    for version in range(1, N + 1):
        source = SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"{C.EXPERIMENT_EVENTS}/{chain_id}_{version}",
                             before=None, recorded_at=rfc3339(datetime.now(timezone.utc)),
                             after={"experimentId": chain_id, "eventType": f"EVENT_{version}", "actor": "pm@company.com",
                                    "version": version, "payload": {"price": 9.99 + version, "note": "é"}})
        svc.record_source_event(L, source, f"tamper|{chain_id}|{version}")
    published = svc.issue_checkpoint(L, chain_id)
    assert published["treeSize"] == N
    result = svc.verify_ledger(L, chain_id)
    assert result["valid"] is True and result["checkpoint"]["treeSize"] == N and result["checkpoint"]["signatureVerified"]
    return chain_id


def _ref(firestore_db, chain_id, sequence, suffix=""):
    return firestore_db.collection(C.EXPERIMENT_LEDGER).document(entry_doc_id(chain_id, sequence) + suffix)


def _rehash(data: dict) -> dict:
    """What a forger with database access does after editing an entry: re-encode and re-hash it."""
    data["canonical"] = canonical_entry(data).decode()
    data["hash"] = hashlib.sha256((data["prevHash"] + data["canonical"]).encode()).hexdigest()
    return data


def _verdict(chain_id):
    result = svc.verify_ledger(L, chain_id)
    assert result["valid"] is False
    return result["firstBadSequence"], {e["code"] for e in result["errors"]}


def test_a_modified_field_is_detected(firestore_db, chain):
    _ref(firestore_db, chain, 3).update({"payload.price": 0.99})
    first, codes = _verdict(chain)
    assert first == 3 and codes == {"FIELDS_MISMATCH"}


def test_modified_bytes_are_detected_and_break_the_checkpoint(firestore_db, chain):
    ref = _ref(firestore_db, chain, 3)
    data = ref.get().to_dict()
    ref.update({"canonical": data["canonical"].replace('"note":"é"', '"note":"e"')})
    first, codes = _verdict(chain)
    assert first == 3 and codes == {"FIELDS_MISMATCH", "HASH_MISMATCH", "HEAD_ROOT_MISMATCH", "CHECKPOINT_MISMATCH"}


def test_a_modified_hash_is_detected(firestore_db, chain):
    _ref(firestore_db, chain, 4).update({"hash": "f" * 64})
    first, codes = _verdict(chain)
    assert first == 4 and codes == {"HASH_MISMATCH", "PREV_HASH_MISMATCH"}


def test_a_modified_and_rehashed_entry_is_detected_at_the_next_link(firestore_db, chain):
    ref = _ref(firestore_db, chain, 2)
    data = ref.get().to_dict()
    data["actor"] = "someone-else@company.com"
    ref.set(_rehash(data))
    first, codes = _verdict(chain)
    assert first == 3 and "PREV_HASH_MISMATCH" in codes and "CHECKPOINT_MISMATCH" in codes


def test_a_deleted_entry_is_detected(firestore_db, chain):
    _ref(firestore_db, chain, 3).delete()
    first, codes = _verdict(chain)
    assert first == 3 and {"MISSING_ENTRY", "BEHIND_CHECKPOINT"} <= codes


def test_an_inserted_entry_is_detected(firestore_db, chain):
    copy = _ref(firestore_db, chain, 2).get().to_dict()
    _ref(firestore_db, chain, 2, "-forged").set(copy)
    first, codes = _verdict(chain)
    assert first == 2 and {"DUPLICATE_SEQUENCE", "ENTRY_ID_MISMATCH"} <= codes


def test_an_entry_appended_behind_the_head_is_detected(firestore_db, chain):
    last = _ref(firestore_db, chain, N).get().to_dict()
    forged = _rehash({**last, "sequence": N + 1, "prevHash": last["hash"], "eventType": "FORGED"})
    _ref(firestore_db, chain, N + 1).set(forged)
    first, codes = _verdict(chain)
    assert first == N + 1 and codes == {"BEYOND_HEAD"}


def test_reordered_entries_are_detected(firestore_db, chain):
    a, b = _ref(firestore_db, chain, 3), _ref(firestore_db, chain, 4)
    data_a, data_b = a.get().to_dict(), b.get().to_dict()
    a.set(data_b)
    b.set(data_a)
    first, codes = _verdict(chain)
    assert first == 3 and "ENTRY_ID_MISMATCH" in codes


def test_a_truncated_tail_is_detected_against_the_head_and_the_checkpoint(firestore_db, chain):
    _ref(firestore_db, chain, N).delete()
    _ref(firestore_db, chain, N - 1).delete()
    first, codes = _verdict(chain)
    assert first == N - 1 and codes == {"TRUNCATED", "BEHIND_CHECKPOINT"}


def _rewrite_everything(firestore_db, chain_id: str, keep: int | None = None) -> None:
    """Rewrite the chain as an insider with full database access would: entry 2 edited, every entry
    re-sealed, every tree node and the head replaced (the Storage bucket they cannot touch)."""
    entries = [_ref(firestore_db, chain_id, s).get().to_dict() for s in range(1, N + 1)][:keep]
    entries[1]["payload"] = {**entries[1]["payload"], "price": 0.01}
    sealed, nodes, head = grow(chain_id, new_head_state(), entries)
    for s in range(1, N + 1):
        _ref(firestore_db, chain_id, s).delete()
    for entry in sealed:
        _ref(firestore_db, chain_id, entry["sequence"]).set(entry)
    head_ref = firestore_db.collection(C.LEDGER_HEADS).document(chain_id)
    for snap in head_ref.collection(LEDGER_TREE_NODES).stream():
        snap.reference.delete()
    for level, index, value in nodes:
        head_ref.collection(LEDGER_TREE_NODES).document(node_doc_id(level, index)).set(
            {"level": level, "index": index, "hash": base64.b64encode(value).decode()})
    head_ref.set({**head, "checkpointSize": 0, "checkpointDue": False})


def test_a_consistent_rewrite_of_every_entry_and_the_head_is_detected_and_named(firestore_db, chain):
    _rewrite_everything(firestore_db, chain)
    result = svc.verify_ledger(L, chain)
    assert result["valid"] is False and [e["code"] for e in result["errors"]] == ["CONSISTENT_REWRITE"]
    assert "rewritten together with the head" in result["errors"][0]["message"]
    # and the log refuses to sign the rewritten tree: it does not extend the published checkpoint
    with pytest.raises(svc.LedgerIntegrityError):
        svc.issue_checkpoint(L, chain)


def test_a_truncation_with_the_head_rewritten_is_detected_by_the_checkpoint(firestore_db, chain):
    _rewrite_everything(firestore_db, chain, keep=4)
    first, codes = _verdict(chain)
    assert codes == {"BEHIND_CHECKPOINT"} and first == 5


def test_the_published_checkpoint_cannot_be_overwritten(chain):
    from offerlab.store.checkpoints import CheckpointConflict

    text = L.publisher.read(chain, N)
    opened = note.open_note(text, [L.signer.verifier])
    forged = note.sign(Checkpoint(Checkpoint.parse(opened.text).origin, N, merkle.EMPTY_ROOT).text(), [L.signer])
    with pytest.raises(CheckpointConflict):
        L.publisher.publish(chain, N, forged)  # ifGenerationMatch=0: the Storage emulator answers 412
    assert L.publisher.read(chain, N) == text


def test_verification_names_no_error_on_an_untouched_chain(chain):
    result = svc.verify_ledger(L, chain)
    assert result["valid"] is True and result["entriesChecked"] == N and result["firstBadSequence"] is None
    assert result["headHash"] == repo.read_head(chain)["headHash"]


def test_a_replaced_head_is_never_overwritten_and_is_reported(firestore_db, chain):
    head = firestore_db.collection(C.LEDGER_HEADS).document(chain)
    head.set({"note": "replaced by hand"})
    source = SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"{C.EXPERIMENT_EVENTS}/{chain}_99", before=None,
                         recorded_at=rfc3339(datetime.now(timezone.utc)),
                         after={"experimentId": chain, "eventType": "LATE", "actor": "pm@company.com"})
    svc.record_source_event(L, source, f"tamper|{chain}|late")
    assert head.get().to_dict() == {"note": "replaced by hand"}  # the evidence is left as found
    result = svc.verify_ledger(L, chain)
    assert result["valid"] is False and result["pendingEntries"] == 1
    assert {e["code"] for e in result["errors"]} == {"HEAD_INVALID"} and result["firstBadSequence"] == 1

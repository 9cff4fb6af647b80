"""Each kind of tampering, done directly in Firestore, is detected by verify_ledger with the first bad
sequence named (docs/ledger.md §5). Chains are built through the service (record + sequence) on the
real Firestore emulator, each test on a fresh chain."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from offerlab.ledger.chain import entry_doc_id, entry_hash
from offerlab.ledger.drafts import SourceEvent, SourceKind
from offerlab.ledger.values import rfc3339
from offerlab.service import ledger as svc
from offerlab.store import collections as C
from offerlab.store import ledger as repo

N = 6


@pytest.fixture
def chain(firestore_db) -> str:
    chain_id = f"tamper-{uuid.uuid4().hex[:12]}"
    for version in range(1, N + 1):
        source = SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"{C.EXPERIMENT_EVENTS}/{chain_id}_{version}",
                             before=None, recorded_at=rfc3339(datetime.now(timezone.utc)),
                             after={"experimentId": chain_id, "eventType": f"EVENT_{version}", "actor": "pm@company.com",
                                    "version": version, "payload": {"price": 9.99 + version, "note": "é"}})
        svc.record_source_event(source, f"tamper|{chain_id}|{version}")
    assert svc.verify_ledger(chain_id)["valid"] is True
    return chain_id


def _ref(firestore_db, chain_id, sequence, suffix=""):
    return firestore_db.collection(C.EXPERIMENT_LEDGER).document(entry_doc_id(chain_id, sequence) + suffix)


def _verdict(chain_id):
    result = svc.verify_ledger(chain_id)
    assert result["valid"] is False
    return result["firstBadSequence"], {e["code"] for e in result["errors"]}


def test_a_modified_payload_is_detected(firestore_db, chain):
    _ref(firestore_db, chain, 3).update({"payload.price": 0.99})
    first, codes = _verdict(chain)
    assert first == 3 and codes == {"HASH_MISMATCH"}


def test_a_modified_hash_is_detected(firestore_db, chain):
    _ref(firestore_db, chain, 4).update({"hash": "f" * 64})
    first, codes = _verdict(chain)
    assert first == 4 and codes == {"HASH_MISMATCH", "PREV_HASH_MISMATCH"}


def test_a_modified_and_rehashed_entry_is_detected_at_the_next_link(firestore_db, chain):
    ref = _ref(firestore_db, chain, 2)
    data = ref.get().to_dict()
    data["actor"] = "someone-else@company.com"
    data["hash"] = entry_hash(data)
    ref.set(data)
    first, codes = _verdict(chain)
    assert first == 3 and codes == {"PREV_HASH_MISMATCH"}


def test_a_deleted_entry_is_detected(firestore_db, chain):
    _ref(firestore_db, chain, 3).delete()
    first, codes = _verdict(chain)
    assert first == 3 and "MISSING_ENTRY" in codes


def test_an_inserted_entry_is_detected(firestore_db, chain):
    copy = _ref(firestore_db, chain, 2).get().to_dict()
    _ref(firestore_db, chain, 2, "-forged").set(copy)
    first, codes = _verdict(chain)
    assert first == 2 and {"DUPLICATE_SEQUENCE", "ENTRY_ID_MISMATCH"} <= codes


def test_an_entry_appended_behind_the_head_is_detected(firestore_db, chain):
    last = _ref(firestore_db, chain, N).get().to_dict()
    forged = {**last, "sequence": N + 1, "prevHash": last["hash"], "eventType": "FORGED"}
    forged["hash"] = entry_hash(forged)
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


def test_a_truncated_tail_is_detected_against_the_head(firestore_db, chain):
    _ref(firestore_db, chain, N).delete()
    _ref(firestore_db, chain, N - 1).delete()
    first, codes = _verdict(chain)
    assert first == N - 1 and codes == {"TRUNCATED"}


def test_verification_names_no_error_on_an_untouched_chain(chain):
    result = svc.verify_ledger(chain)
    assert result["valid"] is True and result["entriesChecked"] == N and result["firstBadSequence"] is None
    assert result["headHash"] == repo.read_head(chain)["headHash"]


def test_a_replaced_head_is_never_overwritten_and_is_reported(firestore_db, chain):
    head = firestore_db.collection(C.LEDGER_HEADS).document(chain)
    head.set({"note": "replaced by hand"})
    source = SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"{C.EXPERIMENT_EVENTS}/{chain}_99", before=None,
                         recorded_at=rfc3339(datetime.now(timezone.utc)),
                         after={"experimentId": chain, "eventType": "LATE", "actor": "pm@company.com"})
    svc.record_source_event(source, f"tamper|{chain}|late")
    assert head.get().to_dict() == {"note": "replaced by hand"}  # the evidence is left as found
    result = svc.verify_ledger(chain)
    assert result["valid"] is False and result["pendingEntries"] == 1
    assert {e["code"] for e in result["errors"]} == {"HEAD_INVALID"} and result["firstBadSequence"] == 1

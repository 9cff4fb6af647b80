"""apply_once on the real Firestore emulator: the marker and the effect commit together or not at all."""
import uuid

import pytest

from offerlab.store.idempotency import already_processed, apply_once


def _counter(firestore_db):
    return firestore_db.collection("idempotencyTestCounters").document(uuid.uuid4().hex)


def _increment(ref):
    def effect(transaction):
        snap = ref.get(transaction=transaction)
        count = (snap.to_dict() or {}).get("count", 0) if snap.exists else 0
        transaction.set(ref, {"count": count + 1})
    return effect


def test_a_redelivered_event_has_no_second_effect(firestore_db):
    ref, event_id = _counter(firestore_db), f"evt-{uuid.uuid4()}"
    assert apply_once("test", event_id, _increment(ref)) is True
    assert apply_once("test", event_id, _increment(ref)) is False
    assert apply_once("test", event_id, _increment(ref)) is False
    assert ref.get().to_dict() == {"count": 1}
    assert already_processed("test", event_id)


def test_scopes_are_independent(firestore_db):
    ref, event_id = _counter(firestore_db), f"evt-{uuid.uuid4()}"
    apply_once("scope-a", event_id, _increment(ref))
    apply_once("scope-b", event_id, _increment(ref))
    assert ref.get().to_dict() == {"count": 2}


def test_a_crash_inside_the_effect_leaves_neither_effect_nor_marker(firestore_db):
    ref, event_id = _counter(firestore_db), f"evt-{uuid.uuid4()}"

    def crashing(transaction):
        transaction.set(ref, {"count": 99})
        raise RuntimeError("crash after the first write")

    with pytest.raises(RuntimeError):
        apply_once("test", event_id, crashing)
    assert not ref.get().exists and not already_processed("test", event_id)
    assert apply_once("test", event_id, _increment(ref)) is True  # the retry then applies once
    assert ref.get().to_dict() == {"count": 1}

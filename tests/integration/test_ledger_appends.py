"""The append triggers on the real emulators: every source collection appends to the right chain, exactly
once; 50 concurrent events all land in a valid chain; a hand edit is an unauthorised change with an alert.

Documents are written directly with the admin client (as the other areas' services would), so the
triggers in the functions emulator do the appending; tests poll, since triggers run asynchronously.
"""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from offerlab.ledger.drafts import SourceEvent, SourceKind
from offerlab.ledger.values import rfc3339
from offerlab.service import ledger as svc
from offerlab.store import collections as C
from tests.integration.ledger_support import emulator_ledger

L = emulator_ledger()
repo = L.repo

TIMEOUT = 60.0


def _fresh(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def wait_for(predicate, timeout: float = TIMEOUT, interval: float = 0.25):
    """Poll until predicate() is truthy; return its value (fail with the last value otherwise)."""
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting (last value: {value!r})")


@pytest.fixture(scope="module", autouse=True)
def triggers_loaded(clients):
    """Wait until the functions emulator has loaded the functions (triggers included: one load serves
    them all); a document written before that would fire no trigger."""
    wait_for(lambda: _pings(clients), timeout=180, interval=1.0)


def _pings(clients) -> bool:
    try:
        return clients.analyst().get_ledger_statistics()["totalEntries"] >= 0
    except Exception:  # not loaded yet (connection refused, 404 while loading)
        return False


def _entries(chain_id: str) -> list[dict]:
    return repo.read_entries(chain_id, 0, 1000)


def _entries_of(chain_id: str, count: int) -> list[dict]:
    return wait_for(lambda: (lambda e: e if len(e) >= count else None)(_entries(chain_id)))


def _event(firestore_db, experiment_id: str, version: int, event_type: str = "EXPERIMENT_SUBMITTED", **extra):
    doc = {"experimentId": experiment_id, "eventType": event_type, "actor": "pm@company.com",
           "fromStatus": "DRAFT", "toStatus": "PENDING_APPROVAL", "version": version, "payload": {},
           "occurredAt": _now(), **extra}
    firestore_db.collection(C.EXPERIMENT_EVENTS).document(f"{experiment_id}_{version}").set(doc)
    return doc


def _experiment_doc(experiment_id: str, version: int = 1, action: str = "EXPERIMENT_CREATED", **fields) -> dict:
    doc = {"experimentId": experiment_id, "name": "Premium price", "status": "DRAFT",
           "offerConfig": {"newPrice": 12.99}, "version": version,
           "lastChange": {"action": action, "actor": "pm@company.com", "at": _now(), "version": version}}
    doc.update(fields)
    return doc


def test_a_lifecycle_event_is_appended_to_its_experiments_chain(firestore_db):
    experiment_id = _fresh()
    _event(firestore_db, experiment_id, 1, "EXPERIMENT_SUBMITTED")
    [entry] = _entries_of(experiment_id, 1)
    assert entry["sequence"] == 1 and entry["eventType"] == "EXPERIMENT_SUBMITTED"
    assert entry["actor"] == "pm@company.com" and entry["sourceKind"] == "EXPERIMENT_EVENT"
    assert entry["sourceDocument"] == f"{C.EXPERIMENT_EVENTS}/{experiment_id}_1"
    assert entry["payload"]["occurredAt"].endswith("Z") and len(entry["recordedAt"]) == len("2026-01-01T00:00:00.000000Z")
    head = repo.read_head(experiment_id)
    assert head["lastSequence"] == 1 and head["count"] == 1 and head["headHash"] == entry["hash"]
    assert svc.verify_ledger(L, experiment_id)["valid"] is True


def test_rollout_events_analyses_and_spillover_violations_are_appended(firestore_db):
    experiment_id, cohort_a, cohort_b = _fresh(), _fresh("coh"), _fresh("coh")
    firestore_db.collection(C.ROLLOUT_EVENTS).document(f"{experiment_id}_1").set(
        {"experimentId": experiment_id, "eventType": "ROLLOUT_STARTED", "actor": "pm@company.com",
         "fromStage": None, "toStage": 1.0, "version": 1, "occurredAt": _now()})
    analysis_id = _fresh("an")
    firestore_db.collection(C.EXPERIMENT_ANALYSES).document(analysis_id).set(
        {"analysisId": analysis_id, "experimentId": experiment_id, "metric": "net_ltv", "pValue": 0.03,
         "inputsDigest": "ab" * 32, "createdBy": "analyst@company.com", "createdAt": _now()})
    spill = firestore_db.collection(C.HOLDOUT_SPILLOVER_EVENTS)
    spill.document().set({"violation": True, "experimentId": experiment_id, "cohortIds": [cohort_a],
                          "fromUserId": "u1", "toUserId": "u2", "channel": "gift", "action": "BLOCK",
                          "reason": "r", "actor": "backend", "recordedAt": _now()})
    spill.document().set({"violation": True, "cohortIds": [cohort_a, cohort_b], "fromUserId": "u3",
                          "toUserId": "u4", "channel": "referral", "action": "FLAG", "reason": "r",
                          "actor": "backend", "recordedAt": _now()})
    spill.document().set({"violation": False, "cohortIds": [cohort_b], "fromUserId": "u5", "toUserId": "u6",
                          "channel": "gift", "action": "ALLOW", "reason": "r", "actor": "backend", "recordedAt": _now()})
    entries = _entries_of(experiment_id, 3)
    assert sorted(e["eventType"] for e in entries) == ["ANALYSIS_RECORDED", "ROLLOUT_STARTED", "SPILLOVER_VIOLATION"]
    analysis = next(e for e in entries if e["eventType"] == "ANALYSIS_RECORDED")
    assert analysis["actor"] == "analyst@company.com" and len(analysis["snapshotDigest"]) == 64
    [a] = _entries_of(f"cohort:{cohort_a}", 1)
    [b] = _entries_of(f"cohort:{cohort_b}", 1)
    assert a["payload"]["fromUserId"] == b["payload"]["fromUserId"] == "u3"  # the non-violation left no entry
    time.sleep(2)
    assert len(_entries(f"cohort:{cohort_b}")) == 1
    for chain in (experiment_id, f"cohort:{cohort_a}", f"cohort:{cohort_b}"):
        assert svc.verify_ledger(L, chain)["valid"] is True


def test_a_redelivered_event_adds_no_entry(firestore_db):
    chain = _fresh()
    source = SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"{C.EXPERIMENT_EVENTS}/{chain}_1", before=None,
                         after={"experimentId": chain, "eventType": "EXPERIMENT_SUBMITTED", "actor": "pm@company.com"},
                         recorded_at=rfc3339(_now()))
    key = f"EXPERIMENT_EVENT|{C.EXPERIMENT_EVENTS}/{chain}_1|2026-11-25T10:00:00.000001Z"
    assert svc.record_source_event(L, source, key) == [chain]
    for _ in range(3):  # three more deliveries of the same event, one with a later recordedAt
        svc.record_source_event(L, SourceEvent(**{**source.__dict__, "recorded_at": rfc3339(_now())}), key)
    assert [e["sequence"] for e in _entries(chain)] == [1]
    assert repo.read_head(chain)["count"] == 1 and repo.count_pending(chain) == 0


def test_fifty_concurrent_events_yield_fifty_entries_and_a_valid_chain(firestore_db):
    experiment_id = _fresh()
    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(lambda v: _event(firestore_db, experiment_id, v, f"EVENT_{v}"), range(1, 51)))
    # The triggers alone must seal all fifty (no reader runs the sequencer while we wait).
    head = wait_for(lambda: (lambda h: h if h and h.get("count") == 50 else None)(repo.read_head(experiment_id)),
                    timeout=180)
    entries = _entries(experiment_id)
    assert [e["sequence"] for e in entries] == list(range(1, 51))
    assert sorted(e["sourceDocument"] for e in entries) == sorted(
        f"{C.EXPERIMENT_EVENTS}/{experiment_id}_{v}" for v in range(1, 51))
    assert head["headHash"] == entries[-1]["hash"] and repo.count_pending(experiment_id) == 0
    result = svc.verify_ledger(L, experiment_id)
    assert result["valid"] is True and result["entriesChecked"] == 50 and result["errors"] == []


def test_authorised_changes_are_entries_and_a_hand_edit_raises_an_alert(firestore_db):
    experiment_id = _fresh()
    ref = firestore_db.collection(C.OFFER_EXPERIMENTS).document(experiment_id)
    ref.set(_experiment_doc(experiment_id))
    _entries_of(experiment_id, 1)
    ref.set(_experiment_doc(experiment_id, 2, "EXPERIMENT_SUBMITTED", status="PENDING_APPROVAL"))
    entries = _entries_of(experiment_id, 2)
    assert [e["eventType"] for e in entries] == ["EXPERIMENT_CHANGED", "EXPERIMENT_CHANGED"]
    assert entries[1]["payload"]["action"] == "EXPERIMENT_SUBMITTED" and entries[1]["actor"] == "pm@company.com"

    ref.update({"offerConfig.newPrice": 9.99})  # as if edited in the console: no version, no stamp
    entries = _entries_of(experiment_id, 3)
    unauthorised = entries[2]
    assert unauthorised["eventType"] == "UNAUTHORISED_CHANGE" and unauthorised["actor"] == "unattributed"
    assert unauthorised["payload"]["changedFields"] == ["offerConfig.newPrice"]
    assert unauthorised["payload"]["changes"] == [{"path": "offerConfig.newPrice", "before": 12.99, "after": 9.99}]
    [alert] = wait_for(lambda: repo.alerts_of_chain(experiment_id))
    assert alert["type"] == "UNAUTHORISED_CHANGE" and alert["experimentId"] == experiment_id
    assert alert["changedFields"] == ["offerConfig.newPrice"] and alert["acknowledged"] is False
    # Nothing was written back into the experiment (that would re-trigger the ledger).
    after = ref.get().to_dict()
    assert after["version"] == 2 and after["offerConfig"] == {"newPrice": 9.99} and set(after) == set(_experiment_doc(experiment_id))
    time.sleep(2)
    assert len(_entries(experiment_id)) == 3
    assert svc.verify_ledger(L, experiment_id)["valid"] is True


def test_cohort_changes_go_to_the_cohort_chain_and_a_deletion_is_unauthorised(firestore_db):
    cohort_id = _fresh("coh")
    ref = firestore_db.collection(C.HOLDOUT_COHORTS).document(cohort_id)
    ref.set({"cohortId": cohort_id, "status": "DRAFT", "percentage": 10.0, "version": 1,
             "lastChange": {"action": "COHORT_CREATED", "actor": "pm@company.com", "at": _now(), "version": 1}})
    _entries_of(f"cohort:{cohort_id}", 1)
    ref.delete()
    entries = _entries_of(f"cohort:{cohort_id}", 2)
    assert [e["eventType"] for e in entries] == ["COHORT_CHANGED", "UNAUTHORISED_CHANGE"]
    assert entries[1]["payload"]["operation"] == "delete"
    [alert] = wait_for(lambda: repo.alerts_of_chain(f"cohort:{cohort_id}"))
    assert alert["cohortId"] == cohort_id


def test_the_sweep_seals_what_was_left_pending(firestore_db):
    chain = _fresh()
    source = SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"{C.EXPERIMENT_EVENTS}/{chain}_1", before=None,
                         after={"experimentId": chain, "eventType": "X", "actor": "a"}, recorded_at=rfc3339(_now()))
    from offerlab.ledger.drafts import drafts_for

    [draft] = drafts_for(source)
    assert repo.record_once("ledger-test", f"left-pending|{chain}", [(chain, "left-pending", draft.entry, None)])
    assert repo.count_pending(chain) == 1 and repo.read_head(chain) is None
    wait_for(lambda: svc.sweep(L)["chains"] >= 0 and repo.count_pending(chain) == 0, timeout=30)
    assert [e["sequence"] for e in _entries(chain)] == [1]

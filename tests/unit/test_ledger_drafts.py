"""What each source event becomes in the ledger, and how an unauthorised change is told apart (pure)."""
from datetime import datetime, timezone

import pytest

from offerlab.ledger.chain import digest
from offerlab.ledger.drafts import (
    UNATTRIBUTED_CHAIN, UNAUTHORISED_CHANGE, SourceEvent, SourceKind, authorisation_problems, changed_paths,
    drafts_for,
)
from offerlab.ledger.values import rfc3339, to_ledger_value

NOW = "2026-11-25T12:00:00.000000Z"
T = datetime(2026, 11, 25, 11, 0, 0, 123456, tzinfo=timezone.utc)


def _experiment(version=1, action="EXPERIMENT_CREATED", **fields):
    doc = {"experimentId": "exp-1", "name": "Premium price", "status": "DRAFT", "offerConfig": {"newPrice": 12.99},
           "version": version, "lastChange": {"action": action, "actor": "pm@company.com", "at": T, "version": version}}
    doc.update(fields)
    return doc


def _src(kind, before=None, after=None, document="offerExperiments/exp-1"):
    return SourceEvent(kind=kind, document=document, before=before, after=after, recorded_at=NOW)


def test_values_timestamps_become_rfc3339_microsecond_strings():
    assert rfc3339(T) == "2026-11-25T11:00:00.123456Z"
    assert to_ledger_value({"a": T, "b": 2**60, "c": float("nan"), "d": b"\x00\x01", "e": (1, 2.5)}) == {
        "a": "2026-11-25T11:00:00.123456Z", "b": str(2**60), "c": "NaN", "d": "base64:AAE=", "e": [1, 2.5]}


def test_a_lifecycle_event_goes_to_its_experiments_chain():
    event = {"experimentId": "exp-1", "eventType": "EXPERIMENT_APPROVED", "actor": "ceo@company.com",
             "fromStatus": "PENDING_APPROVAL", "toStatus": "APPROVED", "version": 3, "payload": {}, "occurredAt": T}
    [draft] = drafts_for(_src(SourceKind.EXPERIMENT_EVENT, after=event, document="experimentEvents/exp-1_3"))
    assert draft.chain_id == "exp-1" and draft.alert is None
    assert draft.entry["eventType"] == "EXPERIMENT_APPROVED" and draft.entry["actor"] == "ceo@company.com"
    assert draft.entry["payload"]["occurredAt"] == "2026-11-25T11:00:00.123456Z"
    assert draft.entry["snapshotDigest"] == digest(to_ledger_value(event))
    assert draft.entry["sourceDocument"] == "experimentEvents/exp-1_3" and draft.entry["recordedAt"] == NOW


def test_an_event_missing_fields_is_still_recorded_from_what_is_there():
    [draft] = drafts_for(_src(SourceKind.ROLLOUT_EVENT, after={"odd": 1}, document="rolloutEvents/exp-9_4"))
    assert draft.chain_id == "exp-9" and draft.entry["eventType"] == "ROLLOUT_EVENT"
    assert draft.entry["actor"] == "unknown" and draft.entry["payload"] == {"odd": 1}
    [orphan] = drafts_for(_src(SourceKind.ANALYSIS, after={}, document="experimentAnalyses/a1"))
    assert orphan.chain_id == UNATTRIBUTED_CHAIN


def test_spillover_only_violations_and_their_chains():
    base = {"fromUserId": "u1", "toUserId": "u2", "channel": "gift", "cohortIds": ["c2", "c1"], "actor": "backend"}
    assert drafts_for(_src(SourceKind.SPILLOVER_VIOLATION, after={**base, "violation": False})) == []
    cohorts = drafts_for(_src(SourceKind.SPILLOVER_VIOLATION, after={**base, "violation": True}))
    assert [d.chain_id for d in cohorts] == ["cohort:c1", "cohort:c2"]
    [one] = drafts_for(_src(SourceKind.SPILLOVER_VIOLATION, after={**base, "violation": True, "experimentId": "exp-1"}))
    assert one.chain_id == "exp-1" and one.entry["eventType"] == "SPILLOVER_VIOLATION"


def test_a_service_write_is_an_authorised_change():
    before, after = _experiment(1), _experiment(2, "EXPERIMENT_SUBMITTED", status="PENDING_APPROVAL")
    [draft] = drafts_for(_src(SourceKind.EXPERIMENT_DOCUMENT, before, after))
    assert draft.alert is None and draft.entry["eventType"] == "EXPERIMENT_CHANGED"
    assert draft.entry["actor"] == "pm@company.com" and draft.entry["payload"]["action"] == "EXPERIMENT_SUBMITTED"
    assert "status" in draft.entry["payload"]["changedFields"]


def test_a_console_price_edit_is_an_unauthorised_change_with_an_alert():
    before = _experiment(5, "EXPERIMENT_STARTED", status="RUNNING")
    after = {**before, "offerConfig": {"newPrice": 9.99}}  # edited by hand: version and stamp untouched
    [draft] = drafts_for(_src(SourceKind.EXPERIMENT_DOCUMENT, before, after))
    assert draft.entry["eventType"] == UNAUTHORISED_CHANGE and draft.entry["actor"] == "unattributed"
    assert draft.entry["payload"]["changedFields"] == ["offerConfig.newPrice"]
    assert draft.entry["payload"]["changes"] == [{"path": "offerConfig.newPrice", "before": 12.99, "after": 9.99}]
    assert draft.alert["type"] == UNAUTHORISED_CHANGE and draft.alert["experimentId"] == "exp-1"
    assert draft.alert["changedFields"] == ["offerConfig.newPrice"]


@pytest.mark.parametrize("before, after, problem", [
    (_experiment(1), _experiment(3), "the version did not advance by exactly one"),
    (_experiment(1), {**_experiment(2), "lastChange": _experiment(1)["lastChange"]},
     "lastChange.version does not equal the document's version"),
    (_experiment(2), {**_experiment(2), "name": "x"}, "fields changed without the version changing"),
    (None, {"seed": True}, "the document has no integer version"),
    (None, _experiment(4), "a new document must start at version 1"),
    (_experiment(2), None, "the document was deleted (the functions never delete it)"),
])
def test_each_rule_of_unauthorised_change(before, after, problem):
    changed = changed_paths(before or {}, after or {})
    assert problem in authorisation_problems(before, after, changed)
    [draft] = drafts_for(_src(SourceKind.EXPERIMENT_DOCUMENT, before, after))
    assert draft.entry["eventType"] == UNAUTHORISED_CHANGE and draft.alert is not None


def test_a_cohort_change_goes_to_the_cohort_chain():
    cohort = {"cohortId": "c1", "status": "DRAFT", "version": 1,
              "lastChange": {"action": "COHORT_CREATED", "actor": "pm@company.com", "at": T, "version": 1}}
    [draft] = drafts_for(_src(SourceKind.COHORT_DOCUMENT, None, cohort, document="holdoutCohorts/c1"))
    assert draft.chain_id == "cohort:c1" and draft.entry["eventType"] == "COHORT_CHANGED" and draft.alert is None
    edited = {**cohort, "percentage": 40}
    [bad] = drafts_for(_src(SourceKind.COHORT_DOCUMENT, cohort, edited, document="holdoutCohorts/c1"))
    assert bad.alert["cohortId"] == "c1" and bad.alert["experimentId"] is None


def test_a_write_that_changes_nothing_is_not_recorded():
    assert drafts_for(_src(SourceKind.EXPERIMENT_DOCUMENT, _experiment(2), _experiment(2))) == []


def test_a_huge_payload_is_replaced_by_its_digest():
    event = {"experimentId": "exp-1", "eventType": "X", "blob": "x" * 300_000}
    [draft] = drafts_for(_src(SourceKind.EXPERIMENT_EVENT, after=event, document="experimentEvents/exp-1_1"))
    assert draft.entry["payload"]["truncated"] is True
    assert draft.entry["payload"]["digest"] == draft.entry["snapshotDigest"] == digest(event)


@pytest.mark.parametrize("bad", ["a/b", ".", "..", "__reserved__", "x" * 201, "tab\there"])
def test_an_unusable_experiment_id_goes_to_the_unattributed_chain(bad):
    [draft] = drafts_for(_src(SourceKind.ANALYSIS, after={"experimentId": bad}, document="experimentAnalyses/a1"))
    assert draft.chain_id == UNATTRIBUTED_CHAIN

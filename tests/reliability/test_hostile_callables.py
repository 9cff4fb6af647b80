"""Hostile input against every callable of the catalog, over HTTP on the real emulators (issue 9 §2).

Whatever the payload (wrong types, huge strings and lists, deep nesting, unicode, missing and extra
fields, numbers out of range, NaN/Infinity tokens, non-JSON bodies, wrong content type), a callable
answers with a documented code of API.md §9 below HTTP 500, never INTERNAL, never a stack trace, and a
refused call writes nothing: the collections only callables create keep their document counts, and
no cohort or experiment bearing the run's marker name exists afterwards.

Already covered elsewhere (not repeated): tests/e2e/test_callable_plumbing.py (no token, forged
header, non-object payload, one oversized payload, error wire shape).
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter
from hypothesis import HealthCheck, given, settings, strategies as st

from offerlab.api.ledger import MAX_TRAIL_PAGE
from tests.reliability._strategies import always_invalid, deep, json_values, unicode_text
from tests.reliability._wire import assert_documented_refusal, call, callables, post_raw, token

MARKER = f"fuzz-{uuid.uuid4().hex[:10]}"
UNKNOWN = f"nope-{uuid.uuid4().hex[:10]}"
ADMIN = token("fuzz-admin", "fuzz-admin@company.com", ("admin",))  # admin passes every role check

# A well-formed payload per callable (ids that do not exist): each hostile example mutates one of them,
# so refusals exercise validation of every real field rather than only the "not an object" path.
_EXPERIMENT = {
    "name": MARKER, "description": "d",
    "hypothesis": {"statement": "s", "expectedImpact": "e", "risksIdentified": ["r"], "successCriteria": ["c"]},
    "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
    "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}],
    "holdoutCohortId": UNKNOWN, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
    "offerConfig": {"price": 12.99}, "plannedStartDate": "2030-01-01T00:00:00Z",
    "plannedEndDate": "2030-02-01T00:00:00Z", "approvers": ["ceo@company.com"],
}
_REF = {"experimentId": UNKNOWN}
_REASON = {"experimentId": UNKNOWN, "reason": "because"}
SKELETONS: dict[str, dict] = {
    "analyze_experiment": {"experimentId": UNKNOWN, "metric": "net_ltv", "treatmentUserIds": ["a"], "controlUserIds": ["b"]},
    "check_guardrails": _REF, "monitor_experiment": _REF,
    "create_experiment": _EXPERIMENT, "update_experiment": {**_EXPERIMENT, "experimentId": UNKNOWN},
    "submit_for_approval": _REF, "approve_experiment": {"experimentId": UNKNOWN, "comment": "ok"},
    "reject_experiment": _REASON, "start_experiment": _REF, "get_launch_checklist": _REF, "pause_experiment": _REASON,
    "resume_experiment": _REF, "complete_experiment": _REF, "kill_experiment": _REASON,
    "create_holdout_cohort": {"name": MARKER, "percentage": 10, "description": "d",
                              "spilloverPolicy": {"referral": "BLOCK"}},
    "update_holdout_cohort": {"cohortId": UNKNOWN, "name": MARKER, "percentage": 10, "description": "d"},
    "freeze_holdout_cohort": {"cohortId": UNKNOWN}, "retire_holdout_cohort": {"cohortId": UNKNOWN, "reason": "r"},
    "is_user_in_holdout": {"userId": "u1"},
    "check_spillover": {"fromUserId": "u1", "toUserId": "u2", "channel": "gift", "experimentId": UNKNOWN},
    "get_holdout_health": {"cohortId": UNKNOWN},
    "get_audit_trail": {"experimentId": UNKNOWN, "afterSequence": 0, "limit": 10},
    "verify_ledger": _REF, "get_audit_report": _REF, "get_ledger_statistics": {},
    "get_checkpoint": _REF, "get_inclusion_proof": {"experimentId": UNKNOWN, "sequence": 1},
    "get_consistency_proof": {"experimentId": UNKNOWN, "fromSize": 1, "toSize": 2},
    "get_offer": {"userId": "u1", "experimentId": UNKNOWN},
    "create_rollout_plan": {"experimentId": UNKNOWN, "stages": [1, 5, 50], "autoProgress": False,
                            "pauseOnViolation": True, "rollbackOnFailure": True},
    "start_rollout": _REF, "check_stage_progress": _REF, "progress_rollout": _REF,
    "pause_rollout": _REASON, "rollback_rollout": _REASON, "abort_rollout": _REASON,
    "ping": {"echo": "hi"},
    # A program of experiments (API.md §10)
    "ship_experiment": {"experimentId": UNKNOWN, "arm": "TREATMENT", "reason": "r"},
    "unship_experiment": _REASON, "analyze_holdout": {"cohortId": UNKNOWN, "metric": "net_ltv"},
    # Monitoring at any scale (API.md §11)
    "acknowledge_alert": {"experimentId": UNKNOWN, "alertId": "alert-1", "comment": "seen"},
    # Regions and money (API.md §13)
    "set_exchange_rates": {"date": "2026-03-09", "base": "EUR", "rates": {"USD": 1.1}},
}
# Callables that may legitimately succeed on an arbitrary object (no required field): reads, and
# check_spillover, which records every call by contract. Everything else must refuse every example.
MAY_SUCCEED_ON_ARBITRARY = {"ping", "get_offer", "is_user_in_holdout", "get_ledger_statistics"}

# Collections that only callables create documents in (no trigger or schedule adds to them), so
# their counts are stable while this module runs (store names via the store layer, not spelled here).
def _counted_collections() -> list[str]:
    from offerlab.store import collections as c

    return [c.HOLDOUT_COHORTS, c.OFFER_EXPERIMENTS, c.ROLLOUT_PLANS, c.EXPERIMENT_ANALYSES]


def _counts(db) -> dict[str, int]:
    return {name: db.collection(name).count().get()[0][0].value for name in _counted_collections()}


def _marked(db) -> int:
    from offerlab.store import collections as c

    return sum(db.collection(name).where(filter=FieldFilter("name", "==", MARKER)).count().get()[0][0].value
               for name in (c.HOLDOUT_COHORTS, c.OFFER_EXPERIMENTS))


# Numbers out of range, per numeric field: percentages outside [0, 100] or finer than 0.01 (cohorts:
# 0 < p <= 50), a negative or fractional sequence, a page size outside [1, MAX_TRAIL_PAGE].
_fraction = st.floats(min_value=0.001, max_value=1e6).filter(lambda x: x != int(x) and abs(x * 100 - round(x * 100)) > 1e-3)
_bad_percentage = st.one_of(st.floats(max_value=-0.01), st.floats(min_value=100.01, allow_infinity=False),
                            st.sampled_from([0.001, 12.345, 1e308, -1e308, 10**30]), _fraction)
BAD_NUMBERS = {
    "percentage": _bad_percentage, "treatmentPercentage": _bad_percentage,
    "afterSequence": st.one_of(st.integers(max_value=-1), _fraction),
    "limit": st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_TRAIL_PAGE + 1), _fraction),
}
NUMERIC_FIELDS = set(BAD_NUMBERS)


@st.composite
def invalid_payloads(draw, skeleton: dict):
    """One guaranteed-invalid mutation of ``skeleton``: a field replaced, an extra field, or a field dropped."""
    payload = dict(skeleton)
    fields = sorted(skeleton)
    kinds = ["extra"] + (["replace"] if fields else []) + \
        (["number"] if NUMERIC_FIELDS & set(fields) else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "replace":
        payload[draw(st.sampled_from(fields))] = draw(always_invalid)
    elif kind == "number":
        field = draw(st.sampled_from(sorted(NUMERIC_FIELDS & set(fields))))
        payload[field] = draw(BAD_NUMBERS[field])
    else:  # extra="forbid": an unknown key is refused, whatever its value
        payload["zz" + draw(unicode_text)] = draw(json_values)
    if kind == "extra" and fields and draw(st.booleans()):  # and sometimes a missing field on top
        payload.pop(draw(st.sampled_from(fields)))
    return payload


FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def http() -> requests.Session:
    return requests.Session()


@pytest.mark.parametrize("name", callables())
def test_every_hostile_payload_is_refused_as_invalid_and_writes_nothing(name, functions_url, http, firestore_db):
    before = _counts(firestore_db)
    seen: list[str] = []

    @FUZZ
    @given(payload=invalid_payloads(SKELETONS[name]))
    def hostile(payload):
        outcome = call(http, functions_url, name, payload, ADMIN)
        assert_documented_refusal(outcome, {"INVALID_ARGUMENT"})
        seen.append(outcome.status)

    hostile()
    assert len(seen) >= 15
    assert _counts(firestore_db) == before
    assert _marked(firestore_db) == 0


@pytest.mark.parametrize("name", callables())
def test_arbitrary_json_data_never_reaches_internal(name, functions_url, http, firestore_db):
    before = _counts(firestore_db)
    outcomes: list[str] = []

    @FUZZ
    @given(data=json_values)
    def arbitrary(data):
        outcome = call(http, functions_url, name, data, ADMIN)
        if outcome.status == "OK":
            assert name in MAY_SUCCEED_ON_ARBITRARY, outcome
        else:
            assert_documented_refusal(outcome)
        outcomes.append(outcome.status)

    arbitrary()
    assert outcomes
    assert _counts(firestore_db) == before


RAW_BODIES = [
    ("NaN", "application/json"), ("Infinity", "application/json"), ('{"data": NaN}', "application/json"),
    ('{"data": {"percentage": Infinity, "name": "x"}}', "application/json"),
    ('{"data": -Infinity}', "application/json"), ("not json at all", "application/json"),
    ("", "application/json"), ('{"data": {"name": ', "application/json"), ("[]", "application/json"),
    ('{"nodata": 1}', "application/json"), ('{"data": {}}', "text/plain"),
    ("data=1", "application/x-www-form-urlencoded"), ("\xff\xfe\x00garbage", "application/json"),
    (json.dumps({"data": deep(200, "k")}), "application/json"),
]


@pytest.mark.parametrize("name", ["create_holdout_cohort", "create_experiment", "check_spillover",
                                  "get_offer", "kill_experiment", "create_rollout_plan", "get_ledger_statistics"])
def test_raw_non_json_and_non_finite_bodies_get_a_documented_refusal(name, functions_url, http, firestore_db):
    before = _counts(firestore_db)
    for body, content_type in RAW_BODIES:
        outcome = post_raw(http, functions_url, name, body.encode("utf-8", "surrogatepass"), ADMIN, content_type)
        if outcome.status == "OK":  # `{"data": {}}` and `{"nodata": 1}` read as an empty payload
            assert name in MAY_SUCCEED_ON_ARBITRARY, (body, outcome)
        else:
            assert_documented_refusal(outcome)
    assert _counts(firestore_db) == before

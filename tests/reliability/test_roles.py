"""Role enforcement for every callable, as a table derived from API.md §1 (issue 9 §3).

For each callable, each role that API.md §1 does not grant is refused with PERMISSION_DENIED and no
token at all is UNAUTHENTICATED, whatever the payload (the role check runs before validation). The
payloads are the well-formed skeletons of the fuzz test, so a role is the only reason to refuse.
Also: end users never see another user's assignment nor experiment internals, and an approver cannot
approve their own experiment by any path.

Already covered (not repeated): tests/integration/test_rules.py (every collection × operation ×
role for direct Firestore access), tests/e2e/test_callable_plumbing.py (one wrong role writes nothing),
tests/e2e/test_get_offer.py::test_who_may_ask_for_whom, tests/integration/test_experiment_transitions.py
(author as approver at creation, only listed approvers approve).
"""
from __future__ import annotations

import uuid

import pytest
import requests

from offerlab_client import FailedPrecondition, InvalidArgument, PermissionDenied
from tests.e2e.test_experiment_lifecycle import experiment_body, frozen_cohort, running_experiment
from tests.reliability._wire import assert_documented_refusal, call, callables, token
from tests.reliability.test_hostile_callables import SKELETONS

ROLES = ("end_user", "experimenter", "approver", "analyst", "service")
EVERYONE = set(ROLES)
EXP, APPR, ANA, SVC = "experimenter", "approver", "analyst", "service"

# Who may call what (admin may call everything: API.md §1 "everything above"). The get_offer and
# is_user_in_holdout skeletons name user "u1", i.e. someone else's assignment: only the service
# backend may ask that. Any signed-in caller may ask about their own uid (tested below) and ping.
ALLOWED: dict[str, set[str]] = {
    "ping": EVERYONE, "get_offer": {SVC}, "is_user_in_holdout": {SVC},
    # experiments: the author's lifecycle; approvals; admin-only kill
    "create_experiment": {EXP}, "update_experiment": {EXP}, "submit_for_approval": {EXP},
    "start_experiment": {EXP}, "pause_experiment": {EXP}, "resume_experiment": {EXP},
    "get_launch_checklist": {EXP, APPR, ANA},
    "complete_experiment": {EXP}, "approve_experiment": {APPR}, "reject_experiment": {APPR},
    "kill_experiment": set(),
    # holdouts: experimenters create/edit/freeze; admins retire; service checks spillover
    "create_holdout_cohort": {EXP}, "update_holdout_cohort": {EXP}, "freeze_holdout_cohort": {EXP},
    "retire_holdout_cohort": set(), "check_spillover": {SVC}, "get_holdout_health": {EXP, ANA},
    # analyses and monitoring
    "analyze_experiment": {EXP, ANA}, "check_guardrails": {EXP, ANA}, "monitor_experiment": {EXP, ANA},
    # rollouts of their experiments; admin-only abort; analysts may read progress
    "create_rollout_plan": {EXP}, "start_rollout": {EXP}, "progress_rollout": {EXP},
    "pause_rollout": {EXP}, "rollback_rollout": {EXP}, "abort_rollout": set(),
    "check_stage_progress": {EXP, ANA},
    # ledger: audit trail and verification for analysts (and approvers, who sign off on it);
    # reports and statistics also for experimenters
    "get_audit_trail": {ANA, APPR}, "verify_ledger": {ANA, APPR},
    "get_audit_report": {ANA, APPR, EXP}, "get_ledger_statistics": {ANA, APPR, EXP},
    "get_checkpoint": {ANA, APPR}, "get_inclusion_proof": {ANA, APPR}, "get_consistency_proof": {ANA, APPR},
    # a program of experiments: the author ships, admins unship, read-outs like analyses
    "ship_experiment": {EXP}, "unship_experiment": set(), "analyze_holdout": {EXP, ANA},
    # monitoring: the author (or an admin) acknowledges an alert
    "acknowledge_alert": {EXP},
    # money: admins set exchange rates
    "set_exchange_rates": set(),
}

_TOKENS = {
    "end_user": token("role-user", None, ()),
    "experimenter": token("role-pm", "role-pm@company.com", (EXP,)),
    "approver": token("role-ceo", "role-ceo@company.com", (APPR,)),
    "analyst": token("role-analyst", "role-analyst@company.com", (ANA,)),
    "service": token("role-backend", None, (SVC,)),
}


def test_the_table_names_every_callable():
    assert set(ALLOWED) == set(callables()) == set(SKELETONS)


@pytest.fixture(scope="module")
def http() -> requests.Session:
    return requests.Session()


@pytest.mark.parametrize("name", callables())
def test_every_refused_role_is_permission_denied_and_no_token_unauthenticated(name, functions_url, http):
    payload = SKELETONS[name]
    assert_documented_refusal(call(http, functions_url, name, payload, None), {"UNAUTHENTICATED"})
    refused = [r for r in ROLES if r not in ALLOWED[name]]
    for role in refused:
        assert_documented_refusal(call(http, functions_url, name, payload, _TOKENS[role]), {"PERMISSION_DENIED"})
    # And a granted role gets past the role check (to validation/NOT_FOUND/a result), so the table is not vacuous.
    for role in sorted(ALLOWED[name] - {"end_user"}):
        outcome = call(http, functions_url, name, payload, _TOKENS[role])
        assert outcome.status not in ("PERMISSION_DENIED", "UNAUTHENTICATED", "INTERNAL"), (role, outcome)


def test_end_users_never_see_another_users_assignment_or_experiment_internals(clients):
    exp, _ = running_experiment(clients, stages=(100,))
    eid = exp["experimentId"]
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    me = clients.end_user(alice)
    for ask in (lambda: me.get_offer(user_id=bob, experiment_id=eid), lambda: me.get_offer(user_id=bob),
                lambda: me.is_user_in_holdout(user_id=bob)):
        with pytest.raises(PermissionDenied):
            ask()
    # Staff roles other than service and admin are not backends: they cannot read a user's assignment either.
    for staff in (clients.experimenter(), clients.analyst(), clients.approver()):
        with pytest.raises(PermissionDenied):
            staff.get_offer(user_id=bob, experiment_id=eid)
    # Their own answer carries the offer and nothing else: no salt, cohort, coverage, config of the other arm.
    mine = me.get_offer(experiment_id=eid)
    # (placement and the rule's reason name the app's own surface, never another user's or the salts)
    assert set(mine) - {"reason"} == {"userId", "arm", "experimentId", "offerConfig", "placement"}
    assert exp["salt"] not in repr(mine)
    holdout = me.is_user_in_holdout()
    assert set(holdout) <= {"userId", "inHoldout", "cohortIds"} and holdout["userId"] == alice


def test_an_approver_cannot_approve_their_own_experiment_by_any_path(clients):
    both = clients.as_("both-uid", "Both@Company.com", (EXP, APPR))  # one person holding both roles
    cohort = frozen_cohort(clients)
    # 1. listing oneself at creation (in any letter case) is refused and writes nothing
    for me in ("both@company.com", "BOTH@company.com", " both@company.com "):
        with pytest.raises((InvalidArgument, FailedPrecondition, PermissionDenied)):
            both.call("create_experiment", experiment_body(cohort["cohortId"], approvers=["ceo@company.com", me]))
    # 2. adding oneself later by an update is refused and leaves the approvers unchanged
    exp = both.call("create_experiment", experiment_body(cohort["cohortId"], approvers=["ceo@company.com"]))
    eid = exp["experimentId"]
    with pytest.raises((InvalidArgument, FailedPrecondition, PermissionDenied)):
        both.update_experiment(eid, approvers=["ceo@company.com", "both@company.com"])
    # 3. approving it directly (approver role + author) is refused, before and after submission
    with pytest.raises((PermissionDenied, FailedPrecondition)):
        both.approve_experiment(eid)
    both.submit_for_approval(eid)
    with pytest.raises(PermissionDenied):
        both.approve_experiment(eid)
    # 4. an admin who authored an experiment cannot approve it either ("never one they authored")
    admin = clients.as_("adm-author", "adm-author@company.com", ("admin",))
    own = admin.call("create_experiment", experiment_body(cohort["cohortId"], approvers=["ceo@company.com"]))
    admin.submit_for_approval(own["experimentId"])
    with pytest.raises(PermissionDenied):
        admin.approve_experiment(own["experimentId"])
    # None of these refusals approved anything: the listed approver's approval is still needed.
    report = clients.approver("ceo").approve_experiment(eid)
    assert report["status"] == "APPROVED"
    approvals = report.get("approvals") or {}
    assert "both@company.com" not in repr(approvals).lower()

"""The transition table and its guards (domain/lifecycle.py), exhaustively: pure, no Firestore."""
import itertools

import pytest

from offerlab.domain.actors import Actor
from offerlab.domain.errors import FailedPrecondition, PermissionDenied
from offerlab.domain.lifecycle import (
    APPROVAL_RECORDED, EVENT_TYPES, NON_TERMINAL, SHIP_APPROVAL_RECORDED, SHIP_EVENT_TYPES, TERMINAL, TRANSITIONS,
    Command, check_actor, check_not_already_approved, plan_transition,
)
from offerlab.domain.types import ExperimentStatus as S

# The lifecycle of API.md §3, written out independently of the table under test.
EXPECTED = {
    (Command.UPDATE, S.DRAFT): S.DRAFT, (Command.UPDATE, S.PENDING_APPROVAL): S.DRAFT,
    (Command.UPDATE, S.APPROVED): S.DRAFT,
    (Command.SUBMIT, S.DRAFT): S.PENDING_APPROVAL,
    (Command.APPROVE, S.PENDING_APPROVAL): S.APPROVED,
    (Command.REJECT, S.PENDING_APPROVAL): S.DRAFT, (Command.REJECT, S.APPROVED): S.DRAFT,
    (Command.START, S.APPROVED): S.RUNNING,
    (Command.PAUSE, S.RUNNING): S.PAUSED, (Command.RESUME, S.PAUSED): S.RUNNING,
    (Command.COMPLETE, S.RUNNING): S.COMPLETED, (Command.COMPLETE, S.PAUSED): S.COMPLETED,
    **{(Command.KILL, s): S.KILLED for s in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.RUNNING, S.PAUSED)},
    # Shipping (API.md §10): COMPLETED → SHIP_PENDING_APPROVAL → SHIPPED → COMPLETED; a rejection → COMPLETED.
    (Command.SHIP, S.COMPLETED): S.SHIP_PENDING_APPROVAL,
    (Command.APPROVE, S.SHIP_PENDING_APPROVAL): S.SHIPPED,
    (Command.REJECT, S.SHIP_PENDING_APPROVAL): S.COMPLETED,
    (Command.UNSHIP, S.SHIPPED): S.COMPLETED,
    **{(Command.ACKNOWLEDGE_ALERT, s): s for s in (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.RUNNING, S.PAUSED)},
}
SHIP_EVENTS = {(Command.APPROVE, S.SHIP_PENDING_APPROVAL): "EXPERIMENT_SHIPPED",
               (Command.REJECT, S.SHIP_PENDING_APPROVAL): "EXPERIMENT_SHIP_REJECTED"}

COMMANDS = [c for c in Command if c not in (Command.CREATE, Command.MOVE_STAGE)]


@pytest.mark.parametrize("command,status", list(itertools.product(COMMANDS, list(S))))
def test_every_pair_follows_the_lifecycle(command, status):
    if (command, status) in EXPECTED:
        transition = plan_transition(command, status)
        assert transition.to_status == EXPECTED[(command, status)]
        assert transition.event_type == SHIP_EVENTS.get((command, status), EVENT_TYPES.get(command))
        assert transition.from_status == status
    else:
        with pytest.raises(FailedPrecondition) as err:
            plan_transition(command, status)
        assert err.value.details == {"status": status.value, "command": command.value}


@pytest.mark.parametrize("status", list(S))
def test_the_rollout_moves_the_coverage_only_while_the_experiment_is_live(status):
    if status in (S.RUNNING, S.PAUSED):
        move = plan_transition(Command.MOVE_STAGE, status, event_type="ROLLOUT_PROGRESSED")
        assert (move.from_status, move.to_status, move.event_type) == (status, status, "ROLLOUT_PROGRESSED")
        with pytest.raises(ValueError):
            plan_transition(Command.MOVE_STAGE, status)  # a move must say which rollout event moved it
    else:
        with pytest.raises(FailedPrecondition):
            plan_transition(Command.MOVE_STAGE, status, event_type="ROLLOUT_PROGRESSED")


def test_a_finished_run_never_runs_again_and_only_shipping_leaves_completed():
    assert TERMINAL == {S.COMPLETED, S.KILLED, S.SHIP_PENDING_APPROVAL, S.SHIPPED}
    assert NON_TERMINAL == set(S) - TERMINAL
    for command, targets in TRANSITIONS.items():
        for source, target in targets.items():
            if source in TERMINAL:  # the ship lifecycle stays among the finished states; KILLED has no way out
                assert command in (Command.SHIP, Command.APPROVE, Command.REJECT, Command.UNSHIP)
                assert target in TERMINAL and source is not S.KILLED


def test_event_types_are_past_tense_and_unique():
    names = list(EVENT_TYPES.values()) + list(SHIP_EVENT_TYPES.values()) + [APPROVAL_RECORDED, SHIP_APPROVAL_RECORDED]
    assert len(set(names)) == len(names)
    assert all(n.startswith("EXPERIMENT_") and n.endswith("ED") for n in names)


def test_approval_completes_only_when_every_approver_approved():
    approvers = ["ceo@x.com", "cfo@x.com"]
    partial = plan_transition(Command.APPROVE, S.PENDING_APPROVAL, approvals_after={"ceo@x.com"}, approvers=approvers)
    assert (partial.to_status, partial.event_type) == (S.PENDING_APPROVAL, APPROVAL_RECORDED)
    full = plan_transition(Command.APPROVE, S.PENDING_APPROVAL, approvals_after=set(approvers), approvers=approvers)
    assert (full.to_status, full.event_type) == (S.APPROVED, "EXPERIMENT_APPROVED")
    partial = plan_transition(Command.APPROVE, S.SHIP_PENDING_APPROVAL, approvals_after={"cfo@x.com"}, approvers=approvers)
    assert (partial.to_status, partial.event_type) == (S.SHIP_PENDING_APPROVAL, SHIP_APPROVAL_RECORDED)


def test_the_author_or_an_admin_ships_and_only_an_admin_unships():
    check_actor(Command.SHIP, Actor("pm", AUTHOR), author=AUTHOR, approvers=APPROVERS)
    check_actor(Command.SHIP, Actor("root", "root@x.com", is_admin=True), author=AUTHOR, approvers=APPROVERS)
    check_actor(Command.UNSHIP, Actor("root", "root@x.com", is_admin=True), author=AUTHOR, approvers=APPROVERS)
    for command, actor in ((Command.SHIP, Actor("ceo", "ceo@x.com", is_approver=True)),
                           (Command.UNSHIP, Actor("pm", AUTHOR)),
                           (Command.SHIP, Actor("sweep", None, is_system=True)),
                           (Command.UNSHIP, Actor("sweep", None, is_system=True))):
        with pytest.raises(PermissionDenied):
            check_actor(command, actor, author=AUTHOR, approvers=APPROVERS)


AUTHOR = "pm@x.com"
APPROVERS = ["ceo@x.com", "cfo@x.com"]


@pytest.mark.parametrize("command", [Command.UPDATE, Command.SUBMIT, Command.START, Command.PAUSE,
                                     Command.RESUME, Command.COMPLETE])
def test_author_commands_need_the_author_or_an_admin(command):
    check_actor(command, Actor("pm", AUTHOR), author=AUTHOR, approvers=APPROVERS)
    check_actor(command, Actor("root", "root@x.com", is_admin=True), author=AUTHOR, approvers=APPROVERS)
    for other in (Actor("x", "other@x.com"), Actor("y", None), Actor("ceo", "ceo@x.com", is_approver=True)):
        with pytest.raises(PermissionDenied):
            check_actor(command, other, author=AUTHOR, approvers=APPROVERS)


@pytest.mark.parametrize("command", [Command.APPROVE, Command.REJECT])
def test_approvals_need_a_listed_approver_with_the_role_who_is_not_the_author(command):
    check_actor(command, Actor("ceo", "ceo@x.com", is_approver=True), author=AUTHOR, approvers=APPROVERS)
    refused = [
        Actor("other", "other@x.com", is_approver=True),      # not listed
        Actor("ceo", "ceo@x.com"),                            # listed, but without the approver role
        Actor("pm", AUTHOR, is_approver=True),               # the author (even if listed)
        Actor("anon", None, is_approver=True),                # no email in the token
    ]
    for actor in refused:
        with pytest.raises(PermissionDenied):
            check_actor(command, actor, author=AUTHOR, approvers=APPROVERS + [AUTHOR])


def test_kill_needs_an_admin_or_the_kill_switch():
    check_actor(Command.KILL, Actor("root", "root@x.com", is_admin=True), author=AUTHOR, approvers=APPROVERS)
    check_actor(Command.KILL, Actor("ops (via topic)", None, is_system=True), author=AUTHOR, approvers=APPROVERS)
    with pytest.raises(PermissionDenied):
        check_actor(Command.KILL, Actor("pm", AUTHOR), author=AUTHOR, approvers=APPROVERS)
    system = Actor("guardrail_sweep", None, is_system=True)
    check_actor(Command.PAUSE, system, author=AUTHOR, approvers=APPROVERS)  # a guardrail's PAUSE action
    for command in (Command.START, Command.RESUME, Command.APPROVE, Command.UPDATE, Command.COMPLETE):
        with pytest.raises(PermissionDenied):  # automation does nothing else
            check_actor(command, system, author=AUTHOR, approvers=APPROVERS)


def test_an_approver_approves_once():
    check_not_already_approved("ceo@x.com", {"cfo@x.com"})
    with pytest.raises(FailedPrecondition):
        check_not_already_approved("ceo@x.com", {"ceo@x.com"})

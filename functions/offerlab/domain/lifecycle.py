"""The experiment lifecycle of API.md §3 as one transition table, next to the guards that allow each step.

    DRAFT → PENDING_APPROVAL → APPROVED → RUNNING ⇄ PAUSED → COMPLETED
    KILLED from any non-terminal state; a rejection or an edit returns it to DRAFT.
    COMPLETED → SHIP_PENDING_APPROVAL → SHIPPED → COMPLETED (API.md §10: shipping an arm, four eyes again;
    a rejected ship returns to COMPLETED, an unship too).

Pure: no Firebase, no store. The service layer reads the experiment inside a transaction, asks
``plan_transition`` what the next state is (or gets the refusal), and writes the new state, a new version
and one ``experimentEvents`` document in the same transaction (docs/lifecycle.md).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from offerlab.domain.actors import Actor
from offerlab.domain.errors import FailedPrecondition, PermissionDenied
from offerlab.domain.types import ExperimentStatus as S


class Command(str, enum.Enum):
    """What a caller (or the kill-switch) asks for; the imperative twin of each event type."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    SUBMIT = "SUBMIT"
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    START = "START"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    COMPLETE = "COMPLETE"
    KILL = "KILL"
    MOVE_STAGE = "MOVE_STAGE"  # the rollout moves the coverage; the status stays (domain/rollout_plan.py)
    SHIP = "SHIP"              # ask to make a COMPLETED experiment's arm the placement's offer
    UNSHIP = "UNSHIP"          # withdraw a shipped offer: everyone back on the status quo
    ACKNOWLEDGE_ALERT = "ACKNOWLEDGE_ALERT"  # an alert stops blocking the rollout; the status stays (API.md §11)


class ExperimentEventType(str, enum.Enum):
    """Events are past tense (STYLE.md); the ledger's drafts and the audit report read these names."""

    EXPERIMENT_CREATED = "EXPERIMENT_CREATED"
    EXPERIMENT_UPDATED = "EXPERIMENT_UPDATED"
    EXPERIMENT_SUBMITTED = "EXPERIMENT_SUBMITTED"
    EXPERIMENT_APPROVED = "EXPERIMENT_APPROVED"
    # One approval out of several: the experiment stays PENDING_APPROVAL, the event still goes to the ledger.
    EXPERIMENT_APPROVAL_RECORDED = "EXPERIMENT_APPROVAL_RECORDED"
    EXPERIMENT_REJECTED = "EXPERIMENT_REJECTED"
    EXPERIMENT_STARTED = "EXPERIMENT_STARTED"
    EXPERIMENT_PAUSED = "EXPERIMENT_PAUSED"
    EXPERIMENT_RESUMED = "EXPERIMENT_RESUMED"
    EXPERIMENT_COMPLETED = "EXPERIMENT_COMPLETED"
    EXPERIMENT_KILLED = "EXPERIMENT_KILLED"
    EXPERIMENT_SHIP_REQUESTED = "EXPERIMENT_SHIP_REQUESTED"
    # One ship approval out of several: still SHIP_PENDING_APPROVAL, the event still goes to the ledger.
    EXPERIMENT_SHIP_APPROVAL_RECORDED = "EXPERIMENT_SHIP_APPROVAL_RECORDED"
    EXPERIMENT_SHIPPED = "EXPERIMENT_SHIPPED"
    EXPERIMENT_SHIP_REJECTED = "EXPERIMENT_SHIP_REJECTED"
    EXPERIMENT_UNSHIPPED = "EXPERIMENT_UNSHIPPED"
    EXPERIMENT_ALERT_ACKNOWLEDGED = "EXPERIMENT_ALERT_ACKNOWLEDGED"


E = ExperimentEventType
EVENT_TYPES: dict[Command, ExperimentEventType] = {
    Command.CREATE: E.EXPERIMENT_CREATED,
    Command.UPDATE: E.EXPERIMENT_UPDATED,
    Command.SUBMIT: E.EXPERIMENT_SUBMITTED,
    Command.APPROVE: E.EXPERIMENT_APPROVED,
    Command.REJECT: E.EXPERIMENT_REJECTED,
    Command.START: E.EXPERIMENT_STARTED,
    Command.PAUSE: E.EXPERIMENT_PAUSED,
    Command.RESUME: E.EXPERIMENT_RESUMED,
    Command.COMPLETE: E.EXPERIMENT_COMPLETED,
    Command.KILL: E.EXPERIMENT_KILLED,
    Command.SHIP: E.EXPERIMENT_SHIP_REQUESTED,
    Command.UNSHIP: E.EXPERIMENT_UNSHIPPED,
    Command.ACKNOWLEDGE_ALERT: E.EXPERIMENT_ALERT_ACKNOWLEDGED,
}
# Approving or rejecting a ship request reuses APPROVE/REJECT (API.md §10) but names its own events.
SHIP_EVENT_TYPES: dict[Command, ExperimentEventType] = {
    Command.APPROVE: E.EXPERIMENT_SHIPPED,
    Command.REJECT: E.EXPERIMENT_SHIP_REJECTED,
}
APPROVAL_RECORDED = E.EXPERIMENT_APPROVAL_RECORDED
SHIP_APPROVAL_RECORDED = E.EXPERIMENT_SHIP_APPROVAL_RECORDED

# The run is over in these states (no kill, no rollout, no edits); COMPLETED may still be shipped.
TERMINAL = frozenset({S.COMPLETED, S.KILLED, S.SHIP_PENDING_APPROVAL, S.SHIPPED})
NON_TERMINAL = frozenset(S) - TERMINAL
# The offer and the arms never change while these hold (API.md §3).
LIVE = frozenset({S.RUNNING, S.PAUSED})
# A ship request or a shipped offer: its config (the shipped arm's) is fixed until unshipped.
SHIPPING = frozenset({S.SHIP_PENDING_APPROVAL, S.SHIPPED})

# The table: command → {from status → to status}. APPROVE's target depends on whether the approval is the
# last one missing (see ``plan_transition``); the table lists where the *last* approval leads.
TRANSITIONS: dict[Command, dict[S, S]] = {
    Command.UPDATE: {S.DRAFT: S.DRAFT, S.PENDING_APPROVAL: S.DRAFT, S.APPROVED: S.DRAFT},
    Command.SUBMIT: {S.DRAFT: S.PENDING_APPROVAL},
    Command.APPROVE: {S.PENDING_APPROVAL: S.APPROVED, S.SHIP_PENDING_APPROVAL: S.SHIPPED},
    # An approver may withdraw consent until the experiment starts; a rejected ship stays COMPLETED.
    Command.REJECT: {S.PENDING_APPROVAL: S.DRAFT, S.APPROVED: S.DRAFT, S.SHIP_PENDING_APPROVAL: S.COMPLETED},
    Command.START: {S.APPROVED: S.RUNNING},
    Command.PAUSE: {S.RUNNING: S.PAUSED},
    Command.RESUME: {S.PAUSED: S.RUNNING},
    Command.COMPLETE: {S.RUNNING: S.COMPLETED, S.PAUSED: S.COMPLETED},
    Command.KILL: {status: S.KILLED for status in NON_TERMINAL},
    # Coverage changes only while the experiment is live; the arms never change (API.md §2).
    Command.MOVE_STAGE: {S.RUNNING: S.RUNNING, S.PAUSED: S.PAUSED},
    # Only a run that ended normally is shipped: a KILLED run's evidence is what made it stop.
    Command.SHIP: {S.COMPLETED: S.SHIP_PENDING_APPROVAL},
    Command.UNSHIP: {S.SHIPPED: S.COMPLETED},
    # Alerts (guardrails, the planned end, unauthorised changes) are acknowledged while the experiment lives;
    # a finished experiment has no rollout left to unblock, and terminal states have no way out.
    Command.ACKNOWLEDGE_ALERT: {status: status for status in NON_TERMINAL},
}


@dataclass(frozen=True)
class Transition:
    command: Command
    from_status: S
    to_status: S
    event_type: str  # an ExperimentEventType, or the rollout's event when only the coverage moves

    @property
    def ends(self) -> bool:
        """The experiment reaches a terminal state: its rollout plan closes in the same transaction."""
        return self.to_status in TERMINAL and self.from_status not in TERMINAL


def plan_transition(command: Command, status: S, *, approvals_after: Iterable[str] = (),
                                    approvers: Iterable[str] = (), event_type: str | None = None) -> Transition:
    """The transition ``command`` makes from ``status``, or FAILED_PRECONDITION when the table has none.

    For APPROVE, ``approvals_after`` is the set of approvers who will have approved once this approval
    counts: the experiment becomes APPROVED only when it covers every listed approver. ``event_type``
    names the event of a MOVE_STAGE (the rollout's event: ROLLOUT_PROGRESSED, ...).
    """
    targets = TRANSITIONS.get(command, {})
    if status not in targets:
        allowed = ", ".join(s.value for s in targets) or "none"
        raise FailedPrecondition(
            f"Cannot {command.value.lower()} an experiment that is {status.value} (allowed from: {allowed}).",
            {"status": status.value, "command": command.value})
    shipping = status is S.SHIP_PENDING_APPROVAL
    if command is Command.APPROVE and not set(approvers) <= set(approvals_after):
        return Transition(command, status, status, SHIP_APPROVAL_RECORDED if shipping else APPROVAL_RECORDED)
    if command is Command.MOVE_STAGE:
        if event_type is None:
            raise ValueError("a stage move is named by the rollout event that moves it")
        return Transition(command, status, targets[status], event_type)
    if shipping and command in SHIP_EVENT_TYPES:
        return Transition(command, status, targets[status], SHIP_EVENT_TYPES[command])
    return Transition(command, status, targets[status], EVENT_TYPES[command])


# --- guards on who may act ---------------------------------------------------------------------------

# What automation may do without a token: the kill-switch topic kills, guardrail and rollout sweeps pause or
# kill (a guardrail's violationAction). Nothing automated starts, resumes or approves anything.
SYSTEM_COMMANDS = frozenset({Command.PAUSE, Command.KILL})

AUTHOR_COMMANDS = frozenset({Command.UPDATE, Command.SUBMIT, Command.START, Command.PAUSE, Command.RESUME,
                             Command.COMPLETE, Command.ACKNOWLEDGE_ALERT})


def check_actor(command: Command, actor: Actor, *, author: str, approvers: Iterable[str]) -> None:
    """PERMISSION_DENIED unless ``actor`` may issue ``command`` on an experiment by ``author`` (API.md §1).

    Role membership itself (experimenter, approver, admin) is checked by the api layer before this runs;
    these are the per-experiment rules that need the stored experiment.
    """
    if actor.is_system:
        if command not in SYSTEM_COMMANDS:
            raise PermissionDenied("Automated actors may only pause or kill experiments.")
        return
    if command in AUTHOR_COMMANDS:
        if not (actor.is_admin or (actor.email is not None and actor.email == author)):
            raise PermissionDenied("Only the experiment's author (or an admin) may do this.")
    elif command in (Command.APPROVE, Command.REJECT):
        if actor.email is None or actor.email not in set(approvers):
            raise PermissionDenied("You are not listed as an approver of this experiment.")
        if actor.email == author:
            raise PermissionDenied("An author never approves or rejects their own experiment.")
        if not (actor.is_approver or actor.is_admin):
            raise PermissionDenied("Approving requires the approver role.")
    elif command is Command.KILL:
        if not actor.is_admin:
            raise PermissionDenied("Only an admin may kill an experiment.")
    elif command is Command.SHIP:
        if not (actor.is_admin or (actor.email is not None and actor.email == author)):
            raise PermissionDenied("Only the experiment's author (or an admin) may ship it.")
    elif command is Command.UNSHIP:
        if not actor.is_admin:
            raise PermissionDenied("Only an admin may unship an experiment.")


def check_not_already_approved(actor_email: str, approvals: Iterable[str]) -> None:
    if actor_email in set(approvals):
        raise FailedPrecondition("You have already approved this experiment.")

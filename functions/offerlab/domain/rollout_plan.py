"""The rollout plan's state machine: one table of transitions, next to the guards that allow each step.

    PLANNED ──START──▶ ACTIVE ──PAUSE──▶ PAUSED ──RESUME──▶ ACTIVE
                       ACTIVE ──PROGRESS──▶ ACTIVE (stage + 1)
                       ACTIVE/PAUSED ──ROLLBACK──▶ PAUSED (stage − 1)
                       ACTIVE/PAUSED ──ABORT──▶ ABORTED (coverage 0, the experiment KILLED)
    PLANNED/ACTIVE/PAUSED ──CLOSE──▶ COMPLETED or ABORTED (the experiment ended)

Pure, like domain/lifecycle.py for the experiment. The stage is the experiment's coverage (API.md §2),
so a transition that moves the stage index also moves the experiment's coverage, in the same
transaction (service/transitions.py writes both). ``plan_step`` returns the transition or raises
FAILED_PRECONDITION with a sentence a product manager understands; nothing is written on a refusal.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.lifecycle import TERMINAL
from offerlab.domain.rollout import Readiness
from offerlab.domain.types import ExperimentStatus
from offerlab.domain.types import RolloutStatus as R


class PlanCommand(str, enum.Enum):
    CREATE = "CREATE"
    REPLACE = "REPLACE"
    START = "START"          # the experiment starts: the plan enters its first stage
    PROGRESS = "PROGRESS"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    ROLLBACK = "ROLLBACK"
    ABORT = "ABORT"
    CLOSE = "CLOSE"          # the experiment ended (completed or killed)


class RolloutEventType(str, enum.Enum):
    """What the plan's events (rolloutEvents) and the experiment's coverage events are called."""

    ROLLOUT_PLAN_CREATED = "ROLLOUT_PLAN_CREATED"
    ROLLOUT_PLAN_REPLACED = "ROLLOUT_PLAN_REPLACED"
    ROLLOUT_STARTED = "ROLLOUT_STARTED"
    ROLLOUT_PROGRESSED = "ROLLOUT_PROGRESSED"
    ROLLOUT_PAUSED = "ROLLOUT_PAUSED"
    ROLLOUT_RESUMED = "ROLLOUT_RESUMED"
    ROLLOUT_ROLLED_BACK = "ROLLOUT_ROLLED_BACK"
    ROLLOUT_ABORTED = "ROLLOUT_ABORTED"
    ROLLOUT_CLOSED = "ROLLOUT_CLOSED"


EVENT_TYPES: dict[PlanCommand, RolloutEventType] = {
    PlanCommand.CREATE: RolloutEventType.ROLLOUT_PLAN_CREATED,
    PlanCommand.REPLACE: RolloutEventType.ROLLOUT_PLAN_REPLACED,
    PlanCommand.START: RolloutEventType.ROLLOUT_STARTED,
    PlanCommand.PROGRESS: RolloutEventType.ROLLOUT_PROGRESSED,
    PlanCommand.PAUSE: RolloutEventType.ROLLOUT_PAUSED,
    PlanCommand.RESUME: RolloutEventType.ROLLOUT_RESUMED,
    PlanCommand.ROLLBACK: RolloutEventType.ROLLOUT_ROLLED_BACK,
    PlanCommand.ABORT: RolloutEventType.ROLLOUT_ABORTED,
    PlanCommand.CLOSE: RolloutEventType.ROLLOUT_CLOSED,
}

OPEN = frozenset({R.PLANNED, R.ACTIVE, R.PAUSED})
FINISHED = frozenset({R.COMPLETED, R.ABORTED})

# command → {from status → to status}. CLOSE's target depends on how the experiment ended (``plan_step``).
TRANSITIONS: dict[PlanCommand, dict[R, R]] = {
    PlanCommand.REPLACE: {R.PLANNED: R.PLANNED},
    PlanCommand.START: {R.PLANNED: R.ACTIVE},
    PlanCommand.PROGRESS: {R.ACTIVE: R.ACTIVE},
    PlanCommand.PAUSE: {R.ACTIVE: R.PAUSED},
    PlanCommand.RESUME: {R.PAUSED: R.ACTIVE},
    PlanCommand.ROLLBACK: {R.ACTIVE: R.PAUSED, R.PAUSED: R.PAUSED},
    PlanCommand.ABORT: {R.ACTIVE: R.ABORTED, R.PAUSED: R.ABORTED},
    PlanCommand.CLOSE: {R.PLANNED: R.COMPLETED, R.ACTIVE: R.COMPLETED, R.PAUSED: R.COMPLETED},
}

# Commands a person (or the sweep) gives to a running rollout; START and CLOSE follow the experiment.
_OPERATOR_COMMANDS = frozenset({PlanCommand.PROGRESS, PlanCommand.PAUSE, PlanCommand.RESUME, PlanCommand.ROLLBACK,
                                PlanCommand.ABORT})


@dataclass(frozen=True)
class PlanTransition:
    command: PlanCommand
    from_status: R
    to_status: R
    from_index: int | None
    to_index: int | None
    event_type: RolloutEventType

    @property
    def moves_stage(self) -> bool:
        return self.to_index != self.from_index


def _refuse_if_finished(status: R, experiment_status: ExperimentStatus) -> None:
    if status in FINISHED:
        raise FailedPrecondition(f"The rollout is {status.value}: it can no longer change.",
                                 {"rolloutStatus": status.value})
    if experiment_status in TERMINAL:
        raise FailedPrecondition(f"The experiment is {experiment_status.value}: its rollout is over.",
                                 {"experimentStatus": experiment_status.value})


def _operator_guards(command: PlanCommand, status: R, index: int | None, experiment_status: ExperimentStatus,
                     readiness: Readiness | None) -> None:
    """The refusals of the rollout callables, in the order a person reads them."""
    _refuse_if_finished(status, experiment_status)
    if command is PlanCommand.PROGRESS:
        if status is not R.ACTIVE:
            raise FailedPrecondition(f"The rollout is {status.value}; resume it with start_rollout first.")
        if experiment_status is not ExperimentStatus.RUNNING:
            raise FailedPrecondition(f"The experiment is {experiment_status.value}, not RUNNING.")
        if readiness is not None and not readiness.ready:
            raise FailedPrecondition("The current stage has not met its requirements.",
                                     {"blocking": readiness.blocking, "met": readiness.met})
    elif command is PlanCommand.RESUME:
        if status is R.PLANNED:
            raise FailedPrecondition("The rollout starts with the experiment: call start_experiment.")
        if status is R.ACTIVE:
            raise FailedPrecondition("The rollout is already ACTIVE.")
        if experiment_status is not ExperimentStatus.RUNNING:
            raise FailedPrecondition(f"The experiment is {experiment_status.value}; resume the experiment first.")
    elif command is PlanCommand.PAUSE:
        if status is not R.ACTIVE:
            raise FailedPrecondition(f"Only an ACTIVE rollout can be paused; it is {status.value}.")
    elif command is PlanCommand.ROLLBACK:
        if status not in (R.ACTIVE, R.PAUSED) or index is None:
            raise FailedPrecondition(f"The rollout is {status.value}: there is no stage to roll back.")
        if index == 0:
            raise FailedPrecondition("The rollout is at its first stage: there is no earlier stage. Pause it, or "
                                     "ask an admin to abort it.")
    elif command is PlanCommand.ABORT:
        if status is R.PLANNED:
            raise FailedPrecondition("The rollout has not started; nothing to abort.")


def plan_step(command: PlanCommand, status: R, index: int | None, stage_count: int, *,
              experiment_status: ExperimentStatus, readiness: Readiness | None = None,
              experiment_completed: bool = False) -> PlanTransition:
    """The transition ``command`` makes from (``status``, stage ``index``), or FAILED_PRECONDITION.

    ``readiness`` (PROGRESS by a person): the current stage's requirements, refused unless all are met.
    ``experiment_completed`` (CLOSE): the plan COMPLETES with a completed experiment, else it is ABORTED.
    """
    if command in _OPERATOR_COMMANDS:
        _operator_guards(command, status, index, experiment_status, readiness)
    elif command is PlanCommand.START and status is not R.PLANNED:
        raise FailedPrecondition(f"The rollout plan is {status.value}, not PLANNED.")
    elif command is PlanCommand.REPLACE and status is not R.PLANNED:
        raise FailedPrecondition(f"The rollout plan is {status.value}; it can no longer be replaced.")
    targets = TRANSITIONS.get(command, {})
    if status not in targets:
        raise FailedPrecondition(f"The rollout is {status.value}: it cannot {command.value.lower()}.",
                                 {"rolloutStatus": status.value, "command": command.value})
    to_status = targets[status]
    if command is PlanCommand.CLOSE and not experiment_completed:
        to_status = R.ABORTED
    to_index = index
    if command is PlanCommand.START:
        to_index = 0
    elif command is PlanCommand.PROGRESS:
        if index is None or index + 1 >= stage_count:
            raise FailedPrecondition("The rollout is at its final stage: there is no next stage.")
        to_index = index + 1
    elif command is PlanCommand.ROLLBACK:
        to_index = index - 1  # the guards made sure index > 0
    return PlanTransition(command, status, to_status, index, to_index, EVENT_TYPES[command])


def is_open(status: R) -> bool:
    """Whether the plan still governs its experiment (closing it is the experiment's end's job)."""
    return status in OPEN

"""The rollout plan's state machine (domain/rollout_plan.py), exhaustively: pure, no Firestore."""
import itertools

import pytest

from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.rollout import Check, Gate, Readiness
from offerlab.domain.rollout_plan import EVENT_TYPES, FINISHED, PlanCommand, RolloutEventType, plan_step
from offerlab.domain.types import ExperimentStatus as E
from offerlab.domain.types import RolloutStatus as R

STAGES = 3

# The plan lifecycle of docs/rollout.md, written out independently of the table under test:
# (command, status, stage index) -> (to status, to index), for a RUNNING experiment.
EXPECTED = {
    (PlanCommand.START, R.PLANNED, None): (R.ACTIVE, 0),
    (PlanCommand.PROGRESS, R.ACTIVE, 0): (R.ACTIVE, 1),
    (PlanCommand.PROGRESS, R.ACTIVE, 1): (R.ACTIVE, 2),
    **{(PlanCommand.PAUSE, R.ACTIVE, i): (R.PAUSED, i) for i in range(STAGES)},
    **{(PlanCommand.RESUME, R.PAUSED, i): (R.ACTIVE, i) for i in range(STAGES)},
    **{(PlanCommand.ROLLBACK, s, i): (R.PAUSED, i - 1) for s in (R.ACTIVE, R.PAUSED) for i in (1, 2)},
    **{(PlanCommand.ABORT, s, i): (R.ABORTED, i) for s in (R.ACTIVE, R.PAUSED) for i in range(STAGES)},
    (PlanCommand.REPLACE, R.PLANNED, None): (R.PLANNED, None),
}
INDEX = {R.PLANNED: [None], R.ACTIVE: list(range(STAGES)), R.PAUSED: list(range(STAGES)),
         R.COMPLETED: [0], R.ABORTED: [0]}
COMMANDS = [c for c in PlanCommand if c not in (PlanCommand.CREATE, PlanCommand.CLOSE)]
CASES = [(c, s, i) for c, s in itertools.product(COMMANDS, list(R)) for i in INDEX[s]]


@pytest.mark.parametrize("command,status,index", CASES)
def test_every_command_from_every_state_follows_the_plan_lifecycle(command, status, index):
    if (command, status, index) in EXPECTED:
        step = plan_step(command, status, index, STAGES, experiment_status=E.RUNNING)
        assert (step.to_status, step.to_index) == EXPECTED[(command, status, index)]
        assert step.event_type is EVENT_TYPES[command] and step.from_index == index
        assert step.moves_stage == (step.to_index != index)
    else:
        with pytest.raises(FailedPrecondition):
            plan_step(command, status, index, STAGES, experiment_status=E.RUNNING)


@pytest.mark.parametrize("status", [R.PLANNED, R.ACTIVE, R.PAUSED])
@pytest.mark.parametrize("completed", [True, False])
def test_an_open_plan_closes_with_its_experiment(status, completed):
    index = None if status is R.PLANNED else 1
    step = plan_step(PlanCommand.CLOSE, status, index, STAGES, experiment_status=E.RUNNING,
                     experiment_completed=completed)
    assert step.to_status is (R.COMPLETED if completed else R.ABORTED)
    assert step.to_index == index and not step.moves_stage
    assert step.event_type is RolloutEventType.ROLLOUT_CLOSED


@pytest.mark.parametrize("status", sorted(FINISHED))
def test_a_finished_plan_refuses_every_operator_command_and_says_why(status):
    for command in (PlanCommand.PROGRESS, PlanCommand.PAUSE, PlanCommand.RESUME, PlanCommand.ROLLBACK,
                    PlanCommand.ABORT):
        with pytest.raises(FailedPrecondition) as err:
            plan_step(command, status, 0, STAGES, experiment_status=E.RUNNING)
        assert err.value.details == {"rolloutStatus": status.value}


@pytest.mark.parametrize("experiment", [E.COMPLETED, E.KILLED])
def test_the_rollout_of_an_ended_experiment_is_over(experiment):
    with pytest.raises(FailedPrecondition) as err:
        plan_step(PlanCommand.PAUSE, R.ACTIVE, 0, STAGES, experiment_status=experiment)
    assert err.value.details == {"experimentStatus": experiment.value}


def test_progress_needs_a_running_experiment_a_met_stage_and_a_next_stage():
    with pytest.raises(FailedPrecondition, match="not RUNNING"):
        plan_step(PlanCommand.PROGRESS, R.ACTIVE, 0, STAGES, experiment_status=E.PAUSED)
    blocked = Readiness(ready=False, checks=(Check(Gate.EXPOSURES, False, "Not enough users"),))
    with pytest.raises(FailedPrecondition) as err:
        plan_step(PlanCommand.PROGRESS, R.ACTIVE, 0, STAGES, experiment_status=E.RUNNING, readiness=blocked)
    assert err.value.details == {"blocking": ["Not enough users"], "met": []}
    with pytest.raises(FailedPrecondition, match="final stage"):
        plan_step(PlanCommand.PROGRESS, R.ACTIVE, STAGES - 1, STAGES, experiment_status=E.RUNNING)


def test_the_refusals_read_like_sentences_for_a_product_manager():
    messages = {}
    for command, status, index in [(PlanCommand.RESUME, R.PLANNED, None), (PlanCommand.RESUME, R.ACTIVE, 0),
                                   (PlanCommand.PAUSE, R.PAUSED, 0), (PlanCommand.ROLLBACK, R.ACTIVE, 0),
                                   (PlanCommand.ABORT, R.PLANNED, None), (PlanCommand.START, R.ACTIVE, 0)]:
        with pytest.raises(FailedPrecondition) as err:
            plan_step(command, status, index, STAGES, experiment_status=E.RUNNING)
        messages[command, status] = err.value.message
    assert messages[PlanCommand.RESUME, R.PLANNED] == "The rollout starts with the experiment: call start_experiment."
    assert messages[PlanCommand.RESUME, R.ACTIVE] == "The rollout is already ACTIVE."
    assert messages[PlanCommand.PAUSE, R.PAUSED] == "Only an ACTIVE rollout can be paused; it is PAUSED."
    assert messages[PlanCommand.ROLLBACK, R.ACTIVE].startswith("The rollout is at its first stage")
    assert messages[PlanCommand.ABORT, R.PLANNED] == "The rollout has not started; nothing to abort."
    assert messages[PlanCommand.START, R.ACTIVE] == "The rollout plan is ACTIVE, not PLANNED."


def test_event_types_are_past_tense_and_unique():
    names = [e.value for e in EVENT_TYPES.values()]
    assert len(set(names)) == len(names)
    assert all(n.startswith("ROLLOUT_") and (n.endswith("ED") or n.endswith("_ROLLED_BACK")) for n in names)

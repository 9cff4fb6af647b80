"""The ``experiment-kill-switch`` topic (API.md §5): ``{experimentId | "*", reason, actor}``.

One experiment: killed from any non-terminal state (like kill_experiment). ``"*"``: every RUNNING or
PAUSED experiment that obeys the kill-switch (``killSwitch.enabled``). Each kill is the ordinary KILL
transition (EXPERIMENT_KILLED with the actor and reason in the ledger) run inside
``apply_once("kill-switch", f"{messageId}:{experimentId}")``: a redelivered message kills nothing twice,
and one experiment failing does not stop the others.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from offerlab.domain.actors import system_actor
from offerlab.domain.errors import Aborted, OfferlabError
from offerlab.domain.ids import DocumentId
from offerlab.domain.lifecycle import Command
from offerlab.domain.types import ExperimentStatus
from offerlab.service.experiments import KILL_SWITCH_SOURCE, kill_change
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import transition_experiment

log = logging.getLogger("offerlab.killswitch")

ALL = "*"
KILL_SWITCH_SCOPE = "kill-switch"  # apply_once scope: one kill per (message, experiment)
KILLABLE_BY_ALL = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.PAUSED})


class KillSwitchMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    experiment_id: DocumentId = Field(alias="experimentId")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    actor: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]


@dataclass
class KillReport:
    rejected: str = ""
    killed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # experimentId -> why (already processed, terminal…)


def handle_kill_switch(store: Store, data: Any, message_id: str) -> KillReport:
    try:
        if not isinstance(data, dict):
            raise ValueError("the message is not a JSON object")
        message = KillSwitchMessage.model_validate(data)
    except ValueError as err:
        return KillReport(rejected=str(err)[:500])
    actor = system_actor(f"{message.actor} (via {KILL_SWITCH_SOURCE})")
    if message.experiment_id == ALL:
        targets = store.experiments.ids_with_status(KILLABLE_BY_ALL)
        allowed = KILLABLE_BY_ALL
    else:
        targets, allowed = [message.experiment_id], None
    report = KillReport()
    for experiment_id in targets:
        def effect(uow: UnitOfWork, experiment_id: str = experiment_id) -> None:
            experiment = uow.experiments.get(experiment_id)
            if experiment.kill_switch is not None and not experiment.kill_switch.enabled:
                raise _Skip("the experiment does not obey the kill-switch")
            transition_experiment(uow, experiment_id, Command.KILL, actor,
                                  kill_change(message.reason, KILL_SWITCH_SOURCE, message_id), allowed_from=allowed)
        try:
            if store.apply_once(KILL_SWITCH_SCOPE, f"{message_id}:{experiment_id}", effect):
                report.killed.append(experiment_id)
            else:
                report.skipped[experiment_id] = "message already processed"
        except Aborted:
            raise  # contention with a concurrent transition: transient, let the delivery be retried
        except _Skip as why:
            report.skipped[experiment_id] = str(why)
        except OfferlabError as err:  # NOT_FOUND, already terminal: nothing to do, never retried
            report.skipped[experiment_id] = err.message
    return report


class _Skip(Exception):
    pass

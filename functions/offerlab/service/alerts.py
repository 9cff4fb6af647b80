"""acknowledge_alert (API.md §11): an acknowledged alert stops blocking the rollout; ledgered.

One transaction: read the alert and the experiment, then write (1) the experiment's next version through
the lifecycle's one write path (service/transitions.py, command ACKNOWLEDGE_ALERT: the status stays), whose
``experimentEvents`` document ``EXPERIMENT_ALERT_ACKNOWLEDGED {alertId, alertType, comment}`` the ledger
records, and (2) the alert's ``acknowledged: true`` with who, when and why. Only the experiment's author or
an admin may acknowledge (domain/lifecycle.py). An unknown alert, or one of another experiment, is
NOT_FOUND; acknowledging twice is FAILED_PRECONDITION; both write nothing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from offerlab.domain.actors import Caller, actor_of
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import FailedPrecondition, NotFound
from offerlab.domain.lifecycle import Command, Transition
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import transition_experiment
from offerlab.store.documents import OfferExperiment


def acknowledge_alert(store: Store, caller: Caller, experiment_id: str, alert_id: str, comment: str) -> dict[str, Any]:
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> dict[str, Any]:
        alert = uow.alerts.get(alert_id)
        if alert is None or alert.get("experimentId") != experiment_id:
            raise NotFound("No such alert for this experiment.")
        if alert.get("acknowledged") is True:
            raise FailedPrecondition("The alert is already acknowledged.",
                                     {"acknowledgedBy": alert.get("acknowledgedBy"), "alertId": alert_id})
        now = utcnow()

        def change(experiment: OfferExperiment, transition: Transition, at: datetime):
            return {}, {"alertId": alert_id, "alertType": alert.get("type"), "comment": comment}

        saved = transition_experiment(uow, experiment_id, Command.ACKNOWLEDGE_ALERT, actor, change, now=now)
        fields = {"acknowledged": True, "acknowledgedBy": actor.name, "acknowledgedAt": now,
                  "acknowledgementComment": comment, "acknowledgedInVersion": saved.version}
        uow.alerts.acknowledge(alert_id, fields)
        return {**alert, **fields}

    acknowledged = store.transaction(body)
    return {"experimentId": experiment_id, "alertId": alert_id, "acknowledged": True,
            "acknowledgedBy": acknowledged["acknowledgedBy"], "acknowledgedAt": acknowledged["acknowledgedAt"],
            "comment": comment, "type": acknowledged.get("type")}

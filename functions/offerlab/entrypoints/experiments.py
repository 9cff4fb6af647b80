"""Experiment lifecycle callables (API.md §3, Experiments). Roles per API.md §1; the per-experiment rules
(author, listed approver) are checked inside each transaction (domain/lifecycle.py)."""
from __future__ import annotations

__all__ = [
    "create_experiment", "update_experiment", "submit_for_approval", "approve_experiment", "reject_experiment",
    "start_experiment", "pause_experiment", "resume_experiment", "kill_experiment", "complete_experiment",
    "ship_experiment", "unship_experiment", "get_launch_checklist",
]

from firebase_functions import https_fn

from offerlab.api import experiments as m
from offerlab.domain.actors import Role
from offerlab.api.callable import handle
from offerlab.api.models import ExperimentRef
from offerlab.service import experiments as svc
from offerlab.service import program
from offerlab.store.firestore_store import firestore_store as store

EXPERIMENTER = [Role.EXPERIMENTER]


@https_fn.on_call()
def create_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CreateExperiment, lambda c, p: svc.create_experiment(store(), c, p), roles=EXPERIMENTER)


@https_fn.on_call()
def update_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.UpdateExperiment, lambda c, p: svc.update_experiment(store(), c, p), roles=EXPERIMENTER)


@https_fn.on_call()
def submit_for_approval(req: https_fn.CallableRequest) -> dict:
    return handle(req, ExperimentRef, lambda c, p: svc.submit_for_approval(store(), c, p.experiment_id), roles=EXPERIMENTER)


@https_fn.on_call()
def approve_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.ApproveExperiment, lambda c, p: svc.approve_experiment(store(), c, p.experiment_id, p.comment),
                  roles=[Role.APPROVER])


@https_fn.on_call()
def reject_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.ExperimentWithReason, lambda c, p: svc.reject_experiment(store(), c, p.experiment_id, p.reason),
                  roles=[Role.APPROVER])


@https_fn.on_call()
def start_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, ExperimentRef, lambda c, p: svc.start_experiment(store(), c, p.experiment_id), roles=EXPERIMENTER)


@https_fn.on_call()
def get_launch_checklist(req: https_fn.CallableRequest) -> dict:
    """Read-only: ``{experimentId, status, ready, checklist[], warnings[]}`` as start_experiment would decide
    now; experimenters, approvers, analysts and admins (an approver sees what they sign off)."""
    return handle(req, ExperimentRef, lambda c, p: svc.get_launch_checklist(store(), c, p.experiment_id),
                  roles=[Role.EXPERIMENTER, Role.APPROVER, Role.ANALYST])


@https_fn.on_call()
def pause_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.ExperimentWithReason, lambda c, p: svc.pause_experiment(store(), c, p.experiment_id, p.reason),
                  roles=EXPERIMENTER)


@https_fn.on_call()
def resume_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, ExperimentRef, lambda c, p: svc.resume_experiment(store(), c, p.experiment_id), roles=EXPERIMENTER)


@https_fn.on_call()
def complete_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, ExperimentRef, lambda c, p: svc.complete_experiment(store(), c, p.experiment_id), roles=EXPERIMENTER)


@https_fn.on_call()
def kill_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.ExperimentWithReason, lambda c, p: svc.kill_experiment(store(), c, p.experiment_id, p.reason),
                  roles=[Role.ADMIN])


@https_fn.on_call()
def ship_experiment(req: https_fn.CallableRequest) -> dict:
    """API.md §10: the author (or an admin) asks to ship an arm of a COMPLETED experiment."""
    return handle(req, m.ShipExperiment, lambda c, p: program.ship_experiment(store(), c, p.experiment_id, p.arm.value,
                                                                              p.reason), roles=EXPERIMENTER)


@https_fn.on_call()
def unship_experiment(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.UnshipExperiment, lambda c, p: program.unship_experiment(store(), c, p.experiment_id, p.reason),
                  roles=[Role.ADMIN])

"""Holdout callables (API.md §3, Holdouts)."""
from __future__ import annotations

__all__ = ["create_holdout_cohort", "freeze_holdout_cohort"]

from firebase_functions import https_fn

from offerlab.api import holdouts as m
from offerlab.api.auth import Role
from offerlab.api.callable import handle
from offerlab.service import holdouts as svc


@https_fn.on_call()
def create_holdout_cohort(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CreateHoldoutCohort, lambda caller, p: svc.create_holdout_cohort(
        caller, p.name, p.percentage, p.description, p.spillover_policy), roles=[Role.EXPERIMENTER])


@https_fn.on_call()
def freeze_holdout_cohort(req: https_fn.CallableRequest) -> dict:
    return handle(req, m.CohortRef, lambda caller, p: svc.freeze_holdout_cohort(caller, p.cohort_id),
                  roles=[Role.EXPERIMENTER])

"""Shared set-ups for the use-case tests on the in-memory store (tests/unit/fakes.py).

The same callers, experiment definition and "approved / running" set-ups the emulator tests build, driven
through the service functions on an ``InMemoryStore``; ``refused`` checks that a refusal raises AND writes
nothing anywhere (the whole database compared before and after).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.user_rows import UserRow
from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service import rollout_plans
from tests.placements import next_placement, scoped
from tests.unit.fakes import InMemoryStore

PM = Caller("pm-uid", "pm@company.com", frozenset({Role.EXPERIMENTER}))
OTHER_PM = Caller("pm2-uid", "pm2@company.com", frozenset({Role.EXPERIMENTER}))
CEO = Caller("ceo-uid", "ceo@company.com", frozenset({Role.APPROVER}))
CFO = Caller("cfo-uid", "cfo@company.com", frozenset({Role.APPROVER}))
ADMIN = Caller("admin-uid", "admin@company.com", frozenset({Role.ADMIN}))
ANALYST = Caller("analyst-uid", "analyst@company.com", frozenset({Role.ANALYST}))
BACKEND = Caller("backend", None, frozenset({Role.SERVICE}))

REFUND_ALERT = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "ALERT"}]
REFUND_PAUSE = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "PAUSE"}]
REFUND_KILL = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}]




def definition(cohort_id: str, **over: Any) -> m.CreateExperiment:
    now = datetime.now(timezone.utc)
    body = {
        "placement": next_placement(cohort_id),
        "name": f"price test {uuid.uuid4().hex[:6]}", "description": "9.99 vs 12.99",
        "hypothesis": {"statement": "A higher price raises net LTV", "expectedImpact": "+15% LTV",
                       "risksIdentified": ["churn"], "successCriteria": ["LTV +10%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": REFUND_ALERT,
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"price": 12.99, "productId": "pro_1299"}, "controlConfig": {"price": 9.99, "productId": "pro_999"},
        "plannedStartDate": now.isoformat(), "plannedEndDate": (now + timedelta(days=30)).isoformat(),
        "approvers": ["ceo@company.com", "cfo@company.com"],
    }
    body.update(over)
    return m.CreateExperiment.model_validate(body)


def frozen_cohort(store: InMemoryStore, pct: float = 10.0, policy: dict | None = None):
    """A FROZEN cohort scoped to placements of its own: a global one would cover every experiment of the test
    (and could not be frozen while one of them runs, docs/program.md)."""
    cohort = scoped(holdouts_svc.create_holdout_cohort, store, PM, f"holdout {uuid.uuid4().hex[:6]}", pct, "", policy)
    return holdouts_svc.freeze_holdout_cohort(store, PM, cohort.cohort_id)


def approved(store: InMemoryStore, cohort_id: str, stages: list | None = None, guardrails: list | None = None,
             **flags: Any):
    """An APPROVED experiment with a rollout plan (``stages``, plan ``flags`` in the API's camelCase)."""
    over = {"guardrails": guardrails} if guardrails is not None else {}
    e = svc.create_experiment(store, PM, definition(cohort_id, **over))
    plan = {"experimentId": e.experiment_id, **flags}
    if stages is not None:
        plan["stages"] = stages
    rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan.model_validate(plan))
    svc.submit_for_approval(store, PM, e.experiment_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    return svc.approve_experiment(store, CFO, e.experiment_id, None)


FAST_STAGES = [{"percentage": p, "minHoursAtStage": 1, "minExposuresPerArm": 0} for p in (1, 5, 10, 25, 50)]


def running(store: InMemoryStore, cohort_id: str, stages: list | None = None, guardrails: list | None = None,
            **flags: Any):
    """A RUNNING experiment at its plan's first stage; stages need 1 hour and no exposures by default."""
    e = approved(store, cohort_id, stages if stages is not None else FAST_STAGES, guardrails, **flags)
    return svc.start_experiment(store, PM, e.experiment_id)


def assert_chain(store: InMemoryStore, experiment_id: str):
    """Events 1..version, contiguous, each starting where the previous ended, matching the document."""
    doc = store.experiments.get(experiment_id)
    events = store.events_of(experiment_id)
    assert [e["version"] for e in events] == list(range(1, doc.version + 1))
    for prev, nxt in zip(events, events[1:]):
        assert nxt["fromStatus"] == prev["toStatus"]
    assert events[-1]["toStatus"] == doc.status.value
    assert doc.last_change.version == doc.version and doc.last_change.action == events[-1]["eventType"]
    return doc, events


def refused(store: InMemoryStore, exc: type[BaseException], call: Callable[[], Any]):
    """``call`` raises ``exc`` and the database is exactly as before (nothing written anywhere)."""
    before = store.db.snapshot()
    with pytest.raises(exc) as err:
        call()
    assert store.db.snapshot() == before
    return err


def unchanged(store: InMemoryStore, call: Callable[[], Any]) -> Any:
    """Run ``call``; it must write nothing anywhere. Returns what it returned."""
    before = store.db.snapshot()
    result = call()
    assert store.db.snapshot() == before
    return result


def tick(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def seed(store: InMemoryStore, experiment_id: str, rows: list[UserRow]) -> None:
    """Users of a running experiment, as monitoring and analyses see them: each row exposed (get_offer's
    record, counted into the streamed exposures) and its totals streamed through the per-arm sums exactly
    as metric ingestion streams them (service/aggregation.py spec, domain/aggregates.py change); the same
    rows are what analyses read (``store.rows``)."""
    from offerlab.domain.aggregates import UserChange  # noqa: PLC0415
    from offerlab.domain.clock import utcnow  # noqa: PLC0415
    from offerlab.domain.metrics import TotalsDelta  # noqa: PLC0415
    from offerlab.service.aggregation import spec_for  # noqa: PLC0415
    from offerlab.store.documents import ExperimentExposure  # noqa: PLC0415

    experiment = store.experiments.get(experiment_id)
    spec = spec_for(experiment)
    at = (experiment.started_at or utcnow())
    for row in rows:
        store.exposures.record_first(ExperimentExposure(
            experiment_id=experiment_id, user_id=row.user_id, arm=row.arm, first_exposed_at=at,
            coverage=experiment.coverage, stage_index=experiment.stage_index, experiment_version=experiment.version))
        increments = {f"counts.{k}": v for k, v in row.counts.items() if v}
        increments.update({f"amounts.{k}": v for k, v in row.amounts.items() if v})
        if not increments:
            continue
        change = UserChange(experiment_id=experiment_id, user_id=row.user_id, arm=row.arm,
                            identity={"experimentId": experiment_id, "userId": row.user_id, "arm": row.arm,
                                      "firstExposedAt": at, "updatedAt": at},
                            delta=TotalsDelta(increments), spec=spec)
        store.metric_totals.apply_once(f"seed-{experiment_id}-{row.user_id}", [change])
    store.rows[experiment_id] = store.rows.get(experiment_id, []) + list(rows)


def buyers(arm: str, n: int, refund_every: int | None, prefix: str = "u") -> list[UserRow]:
    """``n`` users of ``arm`` who bought once; every ``refund_every``-th refunded (None: nobody)."""
    return [UserRow(f"{prefix}-{arm[0]}{i}", arm,
                    counts={"purchase": 1, "refund": int(refund_every is not None and i % refund_every == 0)},
                    amounts={"purchase": 9.99}) for i in range(n)]


def three_in_four_refund(n: int = 120, prefix: str = "r") -> list[UserRow]:
    """Treatment users who bought, three in four of them refunded (what the emulator tests seed as totals):
    the guardrail test needs >= 100 treatment users before it calls a breach."""
    return [UserRow(f"{prefix}{i}", "TREATMENT", counts={"purchase": 1, "refund": 1 if i % 4 else 0},
                    amounts={"purchase": 12.99, "refund": 12.99 * (1 if i % 4 else 0)}) for i in range(n)]

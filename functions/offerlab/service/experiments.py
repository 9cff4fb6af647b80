"""Experiment lifecycle use cases (OfferExperimentOrchestrator): one transaction each, on the store given.

Every use case reads the experiment inside ``store.transaction``, checks the guards of
``domain.lifecycle`` (who may act, and the transition table), then writes through the one write path
(service/transitions.py): the experiment with ``version + 1`` and ``lastChange``, plus its
``experimentEvents`` document, which the ledger records. docs/lifecycle.md describes the table and guards.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from offerlab.domain import checklist
from offerlab.domain.actors import Caller, actor_of
from offerlab.domain.assignment import new_salt
from offerlab.domain.clock import utcnow
from offerlab.domain.eligibility import effective_audience
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from offerlab.domain.reference_price import served_price, shown_as_discount
from offerlab.domain.lifecycle import (
    EVENT_TYPES, Command, Transition, check_actor, check_not_already_approved, plan_transition,
)
from offerlab.domain.rollout_plan import PlanCommand, plan_step
from offerlab.domain.types import ExperimentStatus
from offerlab.service import program
from offerlab.service.planning import planned_by_definition
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import Change, transition_experiment, write_experiment, write_plan_step
from offerlab.store.documents import (
    Approval, Guardrail, Hypothesis, KillSwitch, Kpi, OfferExperiment, RegionRules, TrafficSegment,
)
from offerlab.store.experiment_cache import eligibility_of

# The kill-switch topic's actor: authorised by who may publish to the topic (IAM), named by the message.
KILL_SWITCH_SOURCE = "experiment-kill-switch"


def _run(store: Store, experiment_id: str, command: Command, caller: Caller, change: Change | None = None
         ) -> OfferExperiment:
    actor = actor_of(caller)
    return store.transaction(lambda uow: transition_experiment(uow, experiment_id, command, actor, change))


# --- create and edit ---------------------------------------------------------------------------------


def _definition(fields: dict[str, Any]) -> dict[str, Any]:
    """Request fields (snake_case, api models) as document field values."""
    out = dict(fields)
    if out.get("hypothesis") is not None:
        out["hypothesis"] = Hypothesis.model_validate(out["hypothesis"].model_dump(mode="json"))
    if out.get("kpis") is not None:
        out["kpis"] = [Kpi.model_validate(k.model_dump(mode="json")) for k in out["kpis"]]
    if out.get("guardrails") is not None:
        out["guardrails"] = [Guardrail.model_validate(g.model_dump(mode="json")) for g in out["guardrails"]]
    if out.get("regions") is not None:
        out["regions"] = RegionRules(allow=sorted(out["regions"].allow), deny=sorted(out["regions"].deny))
    if out.get("audience") is not None:
        out["audience"] = out["audience"].value
    return out


def _check_definition(author: str, approvers: list[str], start: datetime, end: datetime,
                      guardrails: list[Guardrail] | None = None, kpis: list[Kpi] | None = None,
                      treatment_percentage: float | None = None) -> None:
    problems = []
    if author in approvers:
        problems.append({"path": "approvers", "message": "the author cannot approve their own experiment"})
    if end <= start:
        problems.append({"path": "plannedEndDate", "message": "must be after plannedStartDate"})
    problems += comparison_problems(guardrails or [], kpis or [], treatment_percentage)
    if problems:
        raise InvalidArgument("The request is invalid.", {"fields": problems})


def comparison_problems(guardrails: list[Guardrail], kpis: list[Kpi], treatment_percentage: float | None
                        ) -> list[dict[str, str]]:
    """A relative guardrail and a GUARDRAIL KPI compare TREATMENT with CONTROL (API.md §11): without
    CONTROL traffic (every enrolled user in TREATMENT) there is nothing to compare with."""
    if treatment_percentage is None or treatment_percentage < 100:
        return []
    message = "compares TREATMENT with CONTROL, but the experiment sends no traffic to CONTROL"
    return ([{"path": f"guardrails.{i}.maxRelativeDelta", "message": message}
             for i, g in enumerate(guardrails) if g.max_relative_delta is not None]
            + [{"path": f"kpis.{i}.threshold", "message": message}
               for i, k in enumerate(kpis) if k.type == "GUARDRAIL"])


def _require_cohort(uow: UnitOfWork, cohort_id: str) -> None:
    try:
        uow.cohorts.get(cohort_id)
    except NotFound:
        raise InvalidArgument("The request is invalid.",
                              {"fields": [{"path": "holdoutCohortId", "message": "no such holdout cohort"}]}) from None


def create_experiment(store: Store, caller: Caller, request: Any) -> OfferExperiment:
    """A DRAFT experiment authored by the caller (their email); salt generated here, never changed."""
    if caller.email is None:
        raise InvalidArgument("An experiment's author is identified by email: the token has none.",
                              {"fields": [{"path": "(token).email", "message": "required"}]})
    fields = _definition({name: getattr(request, name) for name in type(request).model_fields})
    _check_definition(caller.email, fields["approvers"], fields["planned_start_date"], fields["planned_end_date"],
                      fields.get("guardrails"), fields.get("kpis"), fields.get("treatment_percentage"))
    experiment_id = store.experiments.new_id()
    actor = actor_of(caller)
    salt = new_salt()

    def body(uow: UnitOfWork) -> OfferExperiment:
        _require_cohort(uow, fields["holdout_cohort_id"])
        now = utcnow()
        experiment = OfferExperiment(
            experiment_id=experiment_id, author=caller.email, salt=salt, status=ExperimentStatus.DRAFT,
            created_at=now, version=0, kill_switch=KillSwitch(enabled=True, subscribed_at=now), **fields,
        )
        experiment = experiment.model_copy(update={"planning": planned_by_definition(experiment)})
        transition = Transition(Command.CREATE, ExperimentStatus.DRAFT, ExperimentStatus.DRAFT,
                                EVENT_TYPES[Command.CREATE])
        payload = {"name": experiment.name, "offerType": experiment.offer_type.value,
                   "holdoutCohortId": experiment.holdout_cohort_id,
                   "treatmentPercentage": experiment.treatment_percentage, "approvers": experiment.approvers,
                   "placement": experiment.placement, "trafficPercentage": experiment.traffic_percentage,
                   "regions": experiment.regions.to_firestore() if experiment.regions else None,
                   "audience": effective_audience(experiment.audience, experiment.offer_type).value}
        return write_experiment(uow, None, experiment, transition, actor.name, now, payload)

    return store.transaction(body)


def update_experiment(store: Store, caller: Caller, request: Any) -> OfferExperiment:
    """Edit before it runs; an edit after submission voids every approval and returns it to DRAFT."""
    changed = {name: getattr(request, name) for name in request.model_fields_set if name != "experiment_id"}
    fields = _definition(changed)
    actor = actor_of(caller)

    def change(experiment: OfferExperiment, transition: Transition, now: datetime):
        merged = experiment.model_copy(update=fields)
        _check_definition(experiment.author, merged.approvers, merged.planned_start_date, merged.planned_end_date,
                          merged.guardrails, merged.kpis, merged.treatment_percentage)
        voided = sorted(experiment.approvals)
        payload = {"changedFields": sorted(_camel(n) for n in fields), "approvalsVoided": voided}
        return {**fields, "approvals": {}, "status_reason": None, "planning": planned_by_definition(merged)}, payload

    def body(uow: UnitOfWork) -> OfferExperiment:
        if "holdout_cohort_id" in fields:
            _require_cohort(uow, fields["holdout_cohort_id"])
        return transition_experiment(uow, request.experiment_id, Command.UPDATE, actor, change)

    return store.transaction(body)


# --- approvals ---------------------------------------------------------------------------------------


def submit_for_approval(store: Store, caller: Caller, experiment_id: str) -> OfferExperiment:
    return _run(store, experiment_id, Command.SUBMIT, caller,
                lambda e, t, now: ({"status_reason": None}, {"approvers": e.approvers}))


def approve_experiment(store: Store, caller: Caller, experiment_id: str, comment: str | None) -> OfferExperiment:
    """Record the caller's approval; the experiment becomes APPROVED once every listed approver approved."""
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> OfferExperiment:
        experiment = uow.experiments.get(experiment_id)
        check_actor(Command.APPROVE, actor, author=experiment.author, approvers=experiment.approvers)
        plan_transition(Command.APPROVE, experiment.status)  # the state guard first: a clear refusal
        if experiment.status is ExperimentStatus.SHIP_PENDING_APPROVAL:
            return program.approve_ship(uow, experiment, actor, comment)
        check_not_already_approved(actor.email, experiment.approvals)
        approvals_after = set(experiment.approvals) | {actor.email}
        transition = plan_transition(Command.APPROVE, experiment.status, approvals_after=approvals_after,
                                     approvers=experiment.approvers)
        now = utcnow()
        approvals = {**experiment.approvals, actor.email: Approval(approver=actor.email, approved_at=now, comment=comment)}
        after = experiment.model_copy(update={"status": transition.to_status, "approvals": approvals})
        payload = {"approver": actor.email, "comment": comment,
                   "approved": sorted(approvals_after), "required": sorted(experiment.approvers)}
        return write_experiment(uow, experiment, after, transition, actor.name, now, payload)

    return store.transaction(body)


def reject_experiment(store: Store, caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    """Back to DRAFT (approvals voided); a rejected ship request back to COMPLETED (service/program.py)."""
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> OfferExperiment:
        experiment = uow.experiments.get(experiment_id)
        if experiment.status is ExperimentStatus.SHIP_PENDING_APPROVAL:
            return program.reject_ship(uow, experiment, actor, reason)
        return transition_experiment(uow, experiment_id, Command.REJECT, actor, lambda e, t, now: (
            {"approvals": {}, "status_reason": reason}, {"reason": reason, "approvalsVoided": sorted(e.approvals)}))

    return store.transaction(body)


# --- start: the launch checklist ---------------------------------------------------------------------


def launch_facts(uow: UnitOfWork, experiment: OfferExperiment) -> tuple[checklist.LaunchFacts, Any]:
    """Read what the checklist needs (inside the start transaction); also returns the rollout plan."""
    try:
        cohort = uow.cohorts.get(experiment.holdout_cohort_id)
    except NotFound:
        cohort = None
    scope = program.scope_of(cohort) if cohort else None
    plan = uow.plans.find(experiment.experiment_id)
    created = uow.experiments.event_recorded(experiment.experiment_id, 1)
    facts = checklist.LaunchFacts(
        cohort_status=cohort.status.value if cohort else None,
        cohort_spillover_policy={k.value: v.value for k, v in cohort.spillover_policy.items()} if cohort else {},
        hypothesis_statement=experiment.hypothesis.statement,
        success_criteria=tuple(experiment.hypothesis.success_criteria),
        kpi_types=tuple(k.type for k in experiment.kpis), guardrail_count=len(experiment.guardrails),
        approvers=tuple(experiment.approvers), approved_by=tuple(experiment.approvals),
        kill_switch_enabled=experiment.kill_switch is None or experiment.kill_switch.enabled,
        creation_event_recorded=created,
        rollout_plan_status=plan.status.value if plan else None,
        rollout_stage_count=len(plan.stages) if plan else 0,
        rollout_stage_percentages=tuple(s.percentage for s in plan.stages) if plan else (),
        cohort_scope_includes=scope is not None and scope.includes(experiment.placement, experiment.offer_type),
        cohort_scope=scope.describe() if scope else "none",
        **compliance_facts(experiment),
        power=(experiment.planning or planned_by_definition(experiment)),
    )
    return facts, plan


def _text(config: dict[str, Any], key: str) -> str | None:
    value = config.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def compliance_facts(experiment: OfferExperiment) -> dict[str, Any]:
    """The facts of the checklist's compliance item (domain/checklist.py), from the definition and the
    regional policy as get_offer applies it (store/experiment_cache.py eligibility_of)."""
    offer, control = experiment.offer_config or {}, experiment.control_config or {}
    served = eligibility_of(experiment).served_regions()
    rule = offer.get("referencePriceRule")
    return {
        "offer_type": experiment.offer_type.value,
        "offer_product_id": _text(offer, "productId"), "control_product_id": _text(control, "productId"),
        "display_as_discount": shown_as_discount(offer),
        "discount_price_named": served_price(offer, None) is not None,
        "reference_price_rule": rule if isinstance(rule, str) else (None if rule is None else repr(rule)),
        "served_regions": tuple(sorted(served)) if served is not None else None,
    }


@dataclass(frozen=True)
class LaunchEvaluation:
    """The launch checklist of one experiment now, with what the start needs of its reads."""

    facts: checklist.LaunchFacts
    plan: Any
    reads: Any
    capacity: Any
    items: list[checklist.ChecklistItem]

    def details(self) -> dict[str, Any]:
        """``{checklist[], warnings[]}``: warnings (the power plan) travel beside the checklist, never blocking."""
        return {"checklist": [i.as_dict() for i in self.items],
                "warnings": [w.as_dict() for w in checklist.warnings(self.facts)]}


def evaluate_launch(uow: UnitOfWork, experiment: OfferExperiment, now: datetime) -> LaunchEvaluation:
    """The checklist as the start evaluates it (reads only): the facts, the placement's room, the items."""
    facts, plan = launch_facts(uow, experiment)
    reads = program.allocation_reads(uow, experiment)  # placement, coverage lock, frozen cohorts
    capacity = program.plan_allocation(reads, experiment, now)
    facts = replace(facts, placement_capacity_ok=capacity.ok, placement_capacity_detail=capacity.detail())
    return LaunchEvaluation(facts, plan, reads, capacity, checklist.evaluate(facts))


def get_launch_checklist(store: Store, caller: Caller, experiment_id: str) -> dict[str, Any]:
    """Read-only: the launch checklist start_experiment would evaluate now, for everyone who decides on or
    watches an experiment (an approver cannot call start_experiment to see it). Writes nothing."""
    experiment = store.experiments.get(experiment_id)
    evaluation = evaluate_launch(store, experiment, utcnow())
    return {"experimentId": experiment_id, "status": experiment.status.value,
            "ready": checklist.is_ready(evaluation.items), **evaluation.details()}


def start_experiment(store: Store, caller: Caller, experiment_id: str) -> OfferExperiment:
    """APPROVED → RUNNING at the rollout plan's first stage, only when the whole checklist holds."""
    actor = actor_of(caller)

    def body(uow: UnitOfWork) -> OfferExperiment:
        experiment = uow.experiments.get(experiment_id)
        check_actor(Command.START, actor, author=experiment.author, approvers=experiment.approvers)
        now = utcnow()
        evaluation = evaluate_launch(uow, experiment, now)
        facts, plan, reads, capacity, items = (evaluation.facts, evaluation.plan, evaluation.reads,
                                               evaluation.capacity, evaluation.items)
        details = evaluation.details()
        if not checklist.is_ready(items):
            raise FailedPrecondition("The launch checklist is not complete.", details)
        try:
            transition = plan_transition(Command.START, experiment.status)
        except FailedPrecondition as err:
            raise FailedPrecondition(err.message, {**(err.details or {}), **details}) from None
        step = plan_step(PlanCommand.START, plan.status, plan.current_stage_index, len(plan.stages),
                         experiment_status=experiment.status)
        first = plan.stages[0].percentage
        covering = program.covering_cohort_ids(reads.frozen, experiment)
        segments = [TrafficSegment(start=s, end=e) for s, e in capacity.segments]
        after = experiment.model_copy(update={
            "status": transition.to_status, "coverage": first, "stage_index": 0, "started_at": now,
            "status_reason": None, "traffic_segments": segments, "covering_cohort_ids": covering,
        })
        saved = write_experiment(uow, experiment, after, transition, actor.name, now, {
            "coverage": first, "stageIndex": 0, "checklist": details["checklist"], "warnings": details["warnings"],
            "placement": experiment.placement,
            "trafficSegments": [{"start": s, "end": e} for s, e in capacity.segments], "coveringCohortIds": covering})
        write_plan_step(uow, plan, step, None, actor.name, now)  # the coverage moved with the START itself
        program.write_allocation(uow, reads, experiment, capacity, actor.name, now)
        return saved

    return store.transaction(body)


# --- running ------------------------------------------------------------------------------------------


def pause_experiment(store: Store, caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    return _run(store, experiment_id, Command.PAUSE, caller,
                lambda e, t, now: ({"status_reason": reason}, {"reason": reason}))


def resume_experiment(store: Store, caller: Caller, experiment_id: str) -> OfferExperiment:
    return _run(store, experiment_id, Command.RESUME, caller, lambda e, t, now: ({"status_reason": None}, {}))


def complete_experiment(store: Store, caller: Caller, experiment_id: str) -> OfferExperiment:
    return _run(store, experiment_id, Command.COMPLETE, caller, lambda e, t, now: ({"ended_at": now}, {}))


def kill_change(reason: str, source: str, message_id: str | None = None, **extra: Any) -> Change:
    """The KILL's field updates and event payload, whoever kills (a person, the kill switch, a guardrail)."""
    def change(experiment: OfferExperiment, transition: Transition, now: datetime):
        payload = {"reason": reason, "source": source, **extra}
        if message_id:
            payload["messageId"] = message_id
        return {"ended_at": now, "status_reason": reason}, payload
    return change


def kill_experiment(store: Store, caller: Caller, experiment_id: str, reason: str) -> OfferExperiment:
    return _run(store, experiment_id, Command.KILL, caller, kill_change(reason, "kill_experiment"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


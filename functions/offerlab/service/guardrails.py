"""Guardrails: check_guardrails, monitor_experiment, and the action a violation takes.

Every watched limit (API.md §11) is a one-sided always-valid sequential test on the experiment's STREAMED
per-arm sums of kept users (service/aggregation.py; a bounded read whatever the population): absolute
guardrails (``maxThreshold``/``minThreshold``: the TREATMENT arm's value), relative ones
(``maxRelativeDelta``: TREATMENT worse than CONTROL by more than that percent) and GUARDRAIL KPIs
(``threshold`` as a relative change against CONTROL on the side opposite ``direction``; MAINTAIN: both
sides). They are looked at every 5 minutes, and the mixture martingale keeps the chance of ever alarming
while a limit holds at or below alpha however many looks there are (a fixed-horizon test would not;
docs/statistics.md; the A/A simulation through the aggregation path is tests/unit/test_monitoring_aa.py).

A violation takes its ``violationAction`` — the strongest one when several are violated (KILL > PAUSE >
ALERT) — in ONE transaction:
  * PAUSE / KILL: the lifecycle's step (service/transitions.py; RUNNING → PAUSED, or → KILLED), which writes
    the experiment's next version and its ``experimentEvents`` document: the ledger records it.
  * every action also creates a ``GUARDRAIL_VIOLATION`` alert in experimentAlerts (for ALERT that alert
    is the whole effect).

Who may act: the sweep (the guardrail monitor), an admin, or the experiment's author calling
check_guardrails. Anyone else allowed to call it (an analyst, another experimenter) gets the report with
``dryRun: true`` and nothing written (analysts are read-only, API.md §1).
"""
from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from offerlab.domain import analysis_rules as rules
from offerlab.domain.actors import Actor, Caller, Role, system_actor
from offerlab.domain.clock import utcnow
from offerlab.domain.lifecycle import Command
from offerlab.domain.metrics import METRIC_KINDS, Metric, MetricKind
from offerlab.domain.types import ExperimentStatus, ViolationAction
from offerlab.domain.aggregates import AggregateSpec
from offerlab.service import aggregation
from offerlab.service.aggregation import Streamed
from offerlab.service import planning
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import transition_experiment
from offerlab.stats.sequential import (
    guardrail_test, kpi_guardrail_params, kpi_guardrail_test, relative_guardrail_test, sequential_srm,
)
from offerlab.stats.sufficient import MomentStats
from offerlab.store.documents import OfferExperiment

GUARDRAIL_ALPHA = 0.05
DEFAULT_KPI_ACTION = "PAUSE"  # a GUARDRAIL KPI without violationAction: stop the damage, keep the data
ALERT_TYPE = "GUARDRAIL_VIOLATION"
MONITOR_ACTOR = "guardrail-monitor"
_KIND = {MetricKind.MEAN: "mean", MetricKind.PROPORTION: "proportion", MetricKind.RATIO: "ratio"}


class CheckType(str, enum.Enum):
    ABSOLUTE = "absolute"    # maxThreshold / minThreshold on the TREATMENT arm's value
    RELATIVE = "relative"    # maxRelativeDelta: TREATMENT worse than CONTROL by more than that percent
    KPI = "kpi"              # a GUARDRAIL KPI: threshold as a relative change vs CONTROL, bad side by direction


@dataclass(frozen=True)
class GuardrailCheck:
    kpi_name: str
    metric: str
    threshold: float
    direction: str           # "max" (an upper limit) or "min" (a lower limit) on the monitored quantity
    action: str
    observed: float | None   # the monitored quantity: the treatment's value, or its relative change
    bound: float | None      # the always-valid one-sided confidence bound
    p_value: float
    breached: bool
    reason: str              # breached | within | insufficient_data
    n_treatment: int
    type: CheckType = CheckType.ABSOLUTE
    n_control: int = 0
    alpha: float = GUARDRAIL_ALPHA
    unit: str = "value"      # value | percent (relative guardrails) | fraction (GUARDRAIL KPIs)

    @property
    def point_beyond_threshold(self) -> bool:
        if self.observed is None:
            return False
        return self.observed > self.threshold if self.direction == "max" else self.observed < self.threshold

    def violation(self) -> dict[str, Any]:
        """API.md's violation item."""
        return {"kpiName": self.kpi_name, "metric": self.metric, "observed": self.observed,
                "threshold": self.threshold, "action": self.action}

    def as_dict(self) -> dict[str, Any]:
        return {**self.violation(), "type": self.type.value, "unit": self.unit, "direction": self.direction,
                "confidenceBound": self.bound, "pValue": self.p_value, "alpha": self.alpha,
                "breached": self.breached, "status": self.reason,
                "pointBeyondThreshold": self.point_beyond_threshold, "nTreatment": self.n_treatment,
                "nControl": self.n_control}


def _finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _known(metric: str) -> bool:
    return metric in Metric._value2member_map_


def guardrail_metrics(experiment: OfferExperiment) -> list[Metric]:
    """Every metric a guardrail or a GUARDRAIL KPI of the experiment watches."""
    names = {g.metric for g in experiment.guardrails} | {k.metric for k in experiment.kpis if k.type == "GUARDRAIL"}
    return sorted((Metric(n) for n in names if _known(n)), key=lambda m: m.value)


def _scaled(value: float, factor: float) -> float | None:
    v = _finite(value)
    return None if v is None else v * factor


def _check(name: str, metric: str, action: str, result: Any, check_type: CheckType, *, alpha: float,
           threshold: float, scale: float = 1.0, unit: str = "value") -> GuardrailCheck:
    return GuardrailCheck(
        kpi_name=name, metric=metric, threshold=threshold, direction=result.direction, action=action,
        observed=_scaled(result.estimate, scale), bound=_scaled(result.confidence_bound, scale),
        p_value=float(result.p_value), breached=bool(result.breached), reason=result.reason,
        n_treatment=int(result.n_treatment), type=check_type, n_control=int(result.n_control), alpha=alpha, unit=unit)


def _pending(name: str, metric: str, action: str, check_type: CheckType, threshold: float, direction: str,
             by_arm: dict[str, MomentStats], *, unit: str = "value", alpha: float = GUARDRAIL_ALPHA) -> GuardrailCheck:
    return GuardrailCheck(name, metric, threshold, direction, action, None, None, 1.0, False, "insufficient_data",
                          by_arm["TREATMENT"].n, check_type, by_arm["CONTROL"].n, alpha, unit)


def evaluate_guardrails(experiment: OfferExperiment, moments: dict[str, dict[str, MomentStats]],
                        spec: AggregateSpec | None = None, *, bounds: bool = True) -> list[GuardrailCheck]:
    """Every watched limit as a one-sided always-valid sequential test of the statistics engine (API.md §11;
    docs/statistics.md "API.md §11 mapping"), given the support of each metric's (capped) values and the
    design's allocation, so the engine uses its exact bounded e-process wherever a bound exists:

    * absolute guardrails: ``guardrail_test`` in mode ``treatment_value``, one per limit, at alpha;
    * relative guardrails (``maxRelativeDelta``): ``relative_guardrail_test``, the bad side being against
      the metric's desired direction (domain/analysis_rules.desired_direction), at alpha;
    * GUARDRAIL KPIs: ``kpi_guardrail_test`` (the relative change beyond ``threshold`` on the side opposite
      the KPI's direction; MAINTAIN: both sides at alpha/2 each), one check per side.

    ``bounds=False`` skips the always-valid confidence bounds (the decisions are the same; simulations
    that only count alarms use it).
    """
    spec = spec or aggregation.spec_for(experiment)
    allocation = experiment.treatment_percentage / 100.0

    def undefined(by_arm: dict[str, MomentStats], kind: str, compared: bool) -> bool:
        # A ratio with no denominator yet (no purchase, no trial) is undefined: the engine would divide by
        # zero (reported to the statistics engine); no test, like "insufficient_data".
        arms = ("CONTROL", "TREATMENT") if compared else ("TREATMENT",)
        return kind == "ratio" and any(not by_arm[a].total_x for a in arms)

    kpis = [k.model_dump() for k in experiment.kpis]
    checks = []
    for g in experiment.guardrails:
        if g.metric not in moments:
            continue
        by_arm = moments[g.metric]
        stream = spec.stream(g.metric)
        kind = _KIND[stream.kind]
        options: dict[str, Any] = {"support": stream.support} if stream.support is not None else {}
        if not bounds:
            options["_with_bound"] = False
        for direction, threshold in (("max", g.max_threshold), ("min", g.min_threshold)):
            if threshold is None:
                continue
            if undefined(by_arm, kind, False):
                checks.append(_pending(g.kpi_name, g.metric, g.violation_action, CheckType.ABSOLUTE, float(threshold),
                                       direction, by_arm))
                continue
            result = guardrail_test(by_arm.get("CONTROL"), by_arm["TREATMENT"], threshold=float(threshold),
                                    direction=direction, mode="treatment_value", kind=kind, alpha=GUARDRAIL_ALPHA,
                                    **options)
            checks.append(_check(g.kpi_name, g.metric, g.violation_action, result, CheckType.ABSOLUTE,
                                 alpha=GUARDRAIL_ALPHA, threshold=float(threshold)))
        if g.max_relative_delta is not None:
            bad = "lower" if rules.desired_direction(g.metric, kpis) == "INCREASE" else "higher"
            signed = float(g.max_relative_delta) * (1.0 if bad == "higher" else -1.0)
            if undefined(by_arm, kind, True):
                checks.append(_pending(g.kpi_name, g.metric, g.violation_action, CheckType.RELATIVE, signed,
                                       "max" if bad == "higher" else "min", by_arm, unit="percent"))
                continue
            result = relative_guardrail_test(by_arm["CONTROL"], by_arm["TREATMENT"],
                                             max_relative_delta=float(g.max_relative_delta), bad_direction=bad,
                                             kind=kind, alpha=GUARDRAIL_ALPHA, allocation=allocation, **options)
            checks.append(_check(g.kpi_name, g.metric, g.violation_action, result, CheckType.RELATIVE,
                                 alpha=GUARDRAIL_ALPHA, threshold=signed, scale=100.0, unit="percent"))
    for k in experiment.kpis:
        if k.type != "GUARDRAIL" or k.metric not in moments:
            continue
        by_arm = moments[k.metric]
        stream = spec.stream(k.metric)
        options = {"support": stream.support} if stream.support is not None else {}
        if not bounds:
            options["_with_bound"] = False
        threshold = float(k.threshold or 0.0)
        sides = kpi_guardrail_params(threshold, k.direction)
        if undefined(by_arm, _KIND[stream.kind], True):
            checks += [_pending(k.name, k.metric, k.violation_action or DEFAULT_KPI_ACTION, CheckType.KPI,
                                float(side["threshold"]), side["direction"], by_arm, unit="fraction",
                                alpha=GUARDRAIL_ALPHA * side["alpha_share"]) for side in sides]
            continue
        result = kpi_guardrail_test(by_arm["CONTROL"], by_arm["TREATMENT"], threshold=threshold,
                                    direction=k.direction, kind=_KIND[stream.kind], alpha=GUARDRAIL_ALPHA,
                                    allocation=allocation, **options)
        for side, test in zip(sides, result.tests):
            checks.append(_check(k.name, k.metric, k.violation_action or DEFAULT_KPI_ACTION, test, CheckType.KPI,
                                 alpha=GUARDRAIL_ALPHA * side["alpha_share"], threshold=float(side["threshold"]),
                                 unit="fraction"))
    return checks


def check_experiment(store: Store, experiment: OfferExperiment, streamed: Streamed | None = None) -> list[GuardrailCheck]:
    """The experiment's guardrail checks on its streamed, kept per-arm sums (a bounded read)."""
    metrics = guardrail_metrics(experiment)
    if not metrics:
        return []
    streamed = streamed or aggregation.streamed(store, experiment)
    return evaluate_guardrails(experiment, streamed.stats.arm_moments(streamed.spec, metrics), streamed.spec)


# --- acting on violations ------------------------------------------------------------------------------


def monitor_actor(via: str) -> Actor:
    """The guardrail monitor acts as a system actor: the lifecycle lets it PAUSE or KILL and nothing else
    (least privilege). Named so the ledger shows who acted."""
    return system_actor(f"{MONITOR_ACTOR} (via {via})")


def alert_id(experiment_id: str, key: str) -> str:
    return f"guardrail_{experiment_id}_{key}"


_COMMAND = {ViolationAction.PAUSE: Command.PAUSE, ViolationAction.KILL: Command.KILL}


def act_on_violations(uow: UnitOfWork, experiment_id: str, violations: Sequence[GuardrailCheck], *, via: str,
                      key: str, now: datetime | None = None) -> ViolationAction | None:
    """Inside ``uow``: take the strongest violationAction; returns the action taken, None when none was.

    Only a RUNNING experiment is paused or alerted on (a PAUSED one is already stopped; a KILL also
    stops a PAUSED one). Reads first (the experiment), then writes (transition + alert).
    """
    action = rules.strongest_action(v.action for v in violations)
    if action is None:
        return None
    experiment = uow.experiments.get(experiment_id)
    live = {ExperimentStatus.RUNNING} | ({ExperimentStatus.PAUSED} if action is ViolationAction.KILL else set())
    if experiment.status not in live:
        return None
    reason = "Guardrail breached: " + "; ".join(
        f"{v.kpi_name} ({v.metric}) {v.observed:.4g} {'>' if v.direction == 'max' else '<'} {v.threshold:g}"
        for v in violations if v.observed is not None)
    details = [v.as_dict() for v in violations]
    actor = monitor_actor(via)
    command = _COMMAND.get(action)
    if command is not None:
        def change(e: OfferExperiment, transition: Any, at: datetime):
            updates: dict[str, Any] = {"status_reason": reason}
            if command is Command.KILL:
                updates["ended_at"] = at
            return updates, {"reason": reason, "source": "guardrail", "via": via, "violations": details}

        transition_experiment(uow, experiment_id, command, actor, change)
    at = now or utcnow()
    uow.alerts.create(alert_id(experiment_id, key), {
        "alertId": alert_id(experiment_id, key), "type": ALERT_TYPE,
        "severity": "WARNING" if action is ViolationAction.ALERT else "CRITICAL", "chainId": experiment_id,
        "experimentId": experiment_id, "actionTaken": action.value, "violations": details, "reason": reason,
        "actor": actor.name, "detectedAt": at, "raisedAt": utcnow(), "acknowledged": False,
    })
    return action


def _may_act(caller: Caller, experiment: OfferExperiment) -> bool:
    return Role.ADMIN in caller.roles or (Role.EXPERIMENTER in caller.roles and caller.email == experiment.author)


NO_ACTION = "NONE"  # actionTaken when no violation acted (API.md check_guardrails)


def check_guardrails(store: Store, caller: Caller, experiment_id: str) -> dict[str, Any]:
    """API.md: ``{violations[{kpiName, metric, observed, threshold, action}], actionTaken}`` plus the details.
    Reads the experiment and its shards: a bounded number of documents (API.md §11)."""
    experiment = store.experiments.get(experiment_id)
    checks = check_experiment(store, experiment)
    violations = [c for c in checks if c.breached]
    dry_run = not _may_act(caller, experiment)
    action = None
    if violations and not dry_run:
        key = f"manual-{uuid.uuid4().hex[:16]}"
        action = store.transaction(lambda uow: act_on_violations(
            uow, experiment_id, violations, via=f"check_guardrails by {caller.actor}", key=key))
    return {"experimentId": experiment_id, "violations": [v.violation() for v in violations],
            "actionTaken": action.value if action else NO_ACTION, "dryRun": dry_run,
            "guardrails": [c.as_dict() for c in checks]}


# --- monitoring (read-only) ----------------------------------------------------------------------------

_NOT_STARTED = (ExperimentStatus.DRAFT, ExperimentStatus.PENDING_APPROVAL, ExperimentStatus.APPROVED)


def past_planned_end(experiment: OfferExperiment, now: datetime) -> bool:
    """API.md §11: a live experiment past its plannedEndDate enrolls nobody and is flagged until completed."""
    return experiment.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED) and now >= experiment.planned_end_date


def srm_p(exposures: dict[str, int], treatment_percentage: float) -> float | None:
    """Always-valid sample-ratio p-value of the CONTROL/TREATMENT exposures against the configured split
    (``stats.sequential.sequential_srm``, Lindon & Malek 2022): monitoring looks every few minutes, and a
    repeated fixed chi-square would alarm far above its level (docs/statistics.md)."""
    enrolled = [exposures.get("CONTROL", 0), exposures.get("TREATMENT", 0)]
    if not sum(enrolled):
        return None
    return sequential_srm(enrolled, [100.0 - treatment_percentage, treatment_percentage]).p_value


def monitor_experiment(store: Store, caller: Caller, experiment_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """API.md: ``{experimentId, status, health, issues[], stage, stageIndex, exposures, srmPValue, guardrails[]}``;
    also ``exclusions`` per arm and ``documentsRead``. Reads the experiment and its shards only."""
    experiment = store.experiments.get(experiment_id)
    data = aggregation.streamed(store, experiment)
    exposures = dict(data.stats.exposures)
    srm = srm_p(exposures, experiment.treatment_percentage)
    checks = check_experiment(store, experiment, data) if experiment.status not in _NOT_STARTED else []
    guardrails = [c.as_dict() for c in checks]
    health, issues = rules.monitor_health(srm, guardrails, exposures, experiment.status.value)
    refusals = store.eligibility.count_refusals(experiment_id)
    refused_events = sum(data.stats.refused.values())
    if refused_events:
        issues.append(f"{refused_events} metric event(s) refused (no exchange rate or an unknown currency): "
                      "counted, not summed (docs/regions.md §5)")
        health = "CRITICAL" if health == "CRITICAL" else "WARNING"
    if past_planned_end(experiment, now or utcnow()):
        issues.append(f"past its planned end date ({experiment.planned_end_date.isoformat()}): enrolling nobody "
                      "until it is completed")
        health = "CRITICAL" if health == "CRITICAL" else "WARNING"
    return {"experimentId": experiment_id, "status": experiment.status.value, "health": health, "issues": issues,
            "stage": experiment.coverage, "stageIndex": experiment.stage_index, "exposures": exposures,
            "srmPValue": srm, "guardrails": guardrails,
            "exclusions": {arm: data.stats.exclusions[arm] for arm in ("CONTROL", "TREATMENT")},
            "keptUsers": {arm: data.stats.kept_users[arm] + data.stats.zero_users(arm) for arm in ("CONTROL", "TREATMENT")},
            # API.md §13: users kept out before enrolment (count aggregations), events refused by conversion.
            "notEnrolled": refusals, "refusedEvents": dict(data.stats.refused),
            "planning": _live_plan(experiment, data, exposures, now or utcnow()),
            "documentsRead": 1 + max(data.stats.documents, 1)}


def _live_plan(experiment: OfferExperiment, data: Any, exposures: dict[str, int], now: datetime) -> dict[str, Any]:
    """The PRIMARY KPI's power plan from what was observed (service/planning.py): the exposure rate since the
    start and the CONTROL arm's streamed σ of the primary metric (kept users), no extra read."""
    kpi = planning.primary_kpi(experiment)
    sd = None
    if kpi is not None and kpi.metric in Metric._value2member_map_:
        control = data.stats.moments(data.spec, kpi.metric, "CONTROL")
        if control.n >= 2:
            variance = control.ratio_unit_variance if METRIC_KINDS[Metric(kpi.metric)] is MetricKind.RATIO \
                else control.variance
            sd = math.sqrt(variance) if variance is not None and variance > 0 else None
    return planning.planned_by_observation(experiment, exposures, sd, now)

"""Guardrails: check_guardrails, monitor_experiment, and the action a violation takes.

Each guardrail of an experiment (``{kpiName, metric, maxThreshold?, minThreshold?, violationAction}``)
is tested on the TREATMENT arm's metric value against its absolute limit with the one-sided sequential
test of stats/sequential.py (``guardrail_test``, mode "treatment_value"): it is looked at every 5 minutes,
and the mixture martingale keeps the chance of ever alarming while the limit holds at or below alpha
however many looks there are (a fixed-horizon test would not; docs/statistics.md).

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
from offerlab.service.analysis_source import AnalysisSource
from offerlab.service.ports import Store, UnitOfWork
from offerlab.service.transitions import transition_experiment
from offerlab.stats.sequential import guardrail_test
from offerlab.stats.sufficient import MomentStats
from offerlab.store.documents import OfferExperiment

GUARDRAIL_ALPHA = 0.05
ALERT_TYPE = "GUARDRAIL_VIOLATION"
MONITOR_ACTOR = "guardrail-monitor"
_KIND = {MetricKind.MEAN: "mean", MetricKind.PROPORTION: "proportion", MetricKind.RATIO: "ratio"}


@dataclass(frozen=True)
class GuardrailCheck:
    kpi_name: str
    metric: str
    threshold: float
    direction: str           # "max" (maxThreshold) or "min" (minThreshold)
    action: str
    observed: float | None   # the treatment arm's metric value
    bound: float | None      # the always-valid one-sided confidence bound
    p_value: float
    breached: bool
    reason: str              # breached | within | insufficient_data
    n_treatment: int

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
        return {**self.violation(), "direction": self.direction, "confidenceBound": self.bound,
                "pValue": self.p_value, "breached": self.breached, "status": self.reason,
                "pointBeyondThreshold": self.point_beyond_threshold, "nTreatment": self.n_treatment}


def _finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def guardrail_metrics(experiment: OfferExperiment) -> list[Metric]:
    return sorted({Metric(g.metric) for g in experiment.guardrails if g.metric in Metric._value2member_map_},
                  key=lambda m: m.value)


def evaluate_guardrails(experiment: OfferExperiment, moments: dict[str, dict[str, MomentStats]]) -> list[GuardrailCheck]:
    """One check per (guardrail, limit): a guardrail with both limits is two one-sided tests."""
    checks = []
    for g in experiment.guardrails:
        if g.metric not in moments:
            continue
        by_arm = moments[g.metric]
        kind = _KIND[METRIC_KINDS[Metric(g.metric)]]
        for direction, threshold in (("max", g.max_threshold), ("min", g.min_threshold)):
            if threshold is None:
                continue
            result = guardrail_test(by_arm.get("CONTROL"), by_arm["TREATMENT"], threshold=float(threshold),
                                    direction=direction, mode="treatment_value", kind=kind, alpha=GUARDRAIL_ALPHA)
            checks.append(GuardrailCheck(
                kpi_name=g.kpi_name, metric=g.metric, threshold=float(threshold), direction=direction,
                action=g.violation_action, observed=_finite(result.estimate), bound=_finite(result.confidence_bound),
                p_value=float(result.p_value), breached=bool(result.breached), reason=result.reason,
                n_treatment=int(result.n_treatment)))
    return checks


def check_experiment(experiment: OfferExperiment, source: AnalysisSource) -> list[GuardrailCheck]:
    metrics = guardrail_metrics(experiment)
    return evaluate_guardrails(experiment, source.arm_moments(experiment, metrics) if metrics else {})


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
    """API.md: ``{violations[{kpiName, metric, observed, threshold, action}], actionTaken}`` plus the details."""
    experiment = store.experiments.get(experiment_id)
    checks = check_experiment(experiment, store.analysis_source())
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


def monitor_experiment(store: Store, caller: Caller, experiment_id: str) -> dict[str, Any]:
    """API.md: ``{experimentId, status, health, issues[], stage, stageIndex, exposures, srmPValue, guardrails[]}``."""
    from offerlab.stats.frequentist import srm_p_value  # noqa: PLC0415 - scipy.special: off the cold start

    experiment = store.experiments.get(experiment_id)
    source = store.analysis_source()
    exposures = {arm: 0 for arm in ("CONTROL", "TREATMENT", "HOLDOUT")}
    exposures.update(source.exposures(experiment))
    tp = experiment.treatment_percentage
    enrolled = {"CONTROL": exposures["CONTROL"], "TREATMENT": exposures["TREATMENT"]}
    srm = srm_p_value(enrolled, {"CONTROL": 100.0 - tp, "TREATMENT": tp}) if sum(enrolled.values()) else None
    started = experiment.status not in (ExperimentStatus.DRAFT, ExperimentStatus.PENDING_APPROVAL,
                                        ExperimentStatus.APPROVED)
    checks = check_experiment(experiment, source) if started else []
    guardrails = [c.as_dict() for c in checks]
    health, issues = rules.monitor_health(srm, guardrails, exposures, experiment.status.value)
    return {"experimentId": experiment_id, "status": experiment.status.value, "health": health, "issues": issues,
            "stage": experiment.coverage, "stageIndex": experiment.stage_index, "exposures": exposures,
            "srmPValue": srm, "guardrails": guardrails}


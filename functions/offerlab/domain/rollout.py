"""Progressive rollout rules, pure: what a stage requires, whether it is met, what the sweep does.

A stage is the experiment's coverage (API.md §2). Before coverage is raised to the next stage the current
stage must have earned it; the requirements (defaults in service/rollout_plans.py, docs/rollout.md):

* **time at stage** — at least ``min_hours_at_stage`` hours since the stage was entered, on the tick's clock
  (API.md §6), so weekday/weekend and novelty effects get a chance to show;
* **exposures per arm** — at least ``min_exposures_per_arm`` users have seen CONTROL and TREATMENT each,
  so the gates below have data to work on;
* **no sample-ratio mismatch** — the CONTROL/TREATMENT split matches the configured one (chi-square
  p ≥ ``SRM_ALERT_P``; Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled
  Experiments", KDD: a mismatch means the assignment or the logging is broken and no result can be trusted);
* **no guardrail violation** — no guardrail of the experiment credibly beyond its limit (the analytics area's
  sequential test, service/guardrails.py: the same verdict check_guardrails gives);
* **no open blocking issue** — no unacknowledged alert on the experiment (e.g. an unauthorised change the
  ledger flagged).

The first two are *waiting* requirements: unmet, the rollout simply stays where it is. The last three are
*safety* gates: unmet, something is wrong. A guardrail violation is a **failure** (users are measurably
worse off: roll back); an SRM alert or an open issue is a **violation** of the conditions under which the
evidence means anything (pause, a person looks). ``decide`` is the sweep's table.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

# The analytics area's SRM alert level (0.001; Fabijan et al. 2019: strict, because SRM checks run
# continuously): one threshold for monitor_experiment, analyses and the rollout gate.
from offerlab.domain.analysis_rules import SRM_ALERT_P


class Gate(str, enum.Enum):
    TIME_AT_STAGE = "TIME_AT_STAGE"
    EXPOSURES = "EXPOSURES"
    NO_SRM = "NO_SRM"
    NO_GUARDRAIL_VIOLATION = "NO_GUARDRAIL_VIOLATION"
    NO_OPEN_ISSUES = "NO_OPEN_ISSUES"
    NEXT_STAGE = "NEXT_STAGE"


SAFETY_GATES = frozenset({Gate.NO_SRM, Gate.NO_GUARDRAIL_VIOLATION, Gate.NO_OPEN_ISSUES})


class Decision(str, enum.Enum):
    """What one sweep step does to one plan."""

    PROGRESS = "PROGRESS"
    PAUSE = "PAUSE"
    ROLLBACK = "ROLLBACK"
    NOTHING = "NOTHING"


@dataclass(frozen=True)
class StageRequirements:
    min_hours_at_stage: float
    min_exposures_per_arm: int
    require_no_srm: bool = True
    require_no_guardrail_violation: bool = True
    require_no_open_issues: bool = True


@dataclass(frozen=True)
class GuardrailBreach:
    kpi_name: str
    metric: str
    observed: float
    threshold: float
    bound: str  # "max" or "min"


@dataclass(frozen=True)
class StageFacts:
    """The evidence at one moment: read by the service, judged here."""

    hours_at_stage: float
    exposures: Mapping[str, int]                       # per arm: CONTROL, TREATMENT (HOLDOUT ignored)
    srm_p_value: float | None                          # None: not computable yet (no exposures)
    guardrail_breaches: tuple[GuardrailBreach, ...] = ()
    open_issues: tuple[str, ...] = ()                  # short descriptions of unacknowledged alerts
    stage_percentage: float = 0.0
    next_percentage: float | None = None               # None: this is the final stage


@dataclass(frozen=True)
class Check:
    gate: Gate
    ok: bool
    message: str


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def met(self) -> list[str]:
        return [c.message for c in self.checks if c.ok]

    @property
    def blocking(self) -> list[str]:
        return [c.message for c in self.checks if not c.ok]

    def failed(self, gate: Gate) -> bool:
        return any(c.gate is gate and not c.ok for c in self.checks)

    @property
    def safety_failed(self) -> bool:
        return any(not c.ok and c.gate in SAFETY_GATES for c in self.checks)

    def as_dict(self) -> dict:
        return {"ready": self.ready, "met": self.met, "blocking": self.blocking,
                "checks": [{"gate": c.gate.value, "ok": c.ok, "message": c.message} for c in self.checks]}


def _hours(value: float) -> str:
    if value >= 48 and value % 24 == 0:
        return f"{value / 24:g} days"
    return f"{value:g} hour" + ("" if value == 1 else "s")


def _pct(value: float) -> str:
    return f"{value:g}%"


def evaluate(requirements: StageRequirements, facts: StageFacts) -> Readiness:
    """Each requirement, met or blocking, in words a product manager understands."""
    checks: list[Check] = []
    need_h, have_h = requirements.min_hours_at_stage, max(facts.hours_at_stage, 0.0)
    if have_h >= need_h:
        checks.append(Check(Gate.TIME_AT_STAGE, True,
                            f"The {_pct(facts.stage_percentage)} stage has run for {have_h:.1f} hours "
                            f"(at least {_hours(need_h)} required)."))
    else:
        checks.append(Check(Gate.TIME_AT_STAGE, False,
                            f"The {_pct(facts.stage_percentage)} stage has run for {have_h:.1f} hours; it must run "
                            f"for at least {_hours(need_h)} (another {need_h - have_h:.1f} hours)."))
    need_n = requirements.min_exposures_per_arm
    short = {arm: facts.exposures.get(arm, 0) for arm in ("CONTROL", "TREATMENT")
             if facts.exposures.get(arm, 0) < need_n}
    seen = ", ".join(f"{facts.exposures.get(a, 0)} {a.lower()}" for a in ("CONTROL", "TREATMENT"))
    if not short:
        checks.append(Check(Gate.EXPOSURES, True, f"Enough users have seen each version ({seen}; at least {need_n} each)."))
    else:
        checks.append(Check(Gate.EXPOSURES, False,
                            f"Not enough users have seen each version yet ({seen}; at least {need_n} each needed)."))
    if requirements.require_no_srm:
        p = facts.srm_p_value
        if p is None or p >= SRM_ALERT_P:
            checks.append(Check(Gate.NO_SRM, True, "Users are split between the versions as configured."))
        else:
            checks.append(Check(Gate.NO_SRM, False,
                                f"Users are not split between the versions as configured (sample-ratio check "
                                f"p = {p:.2g} < {SRM_ALERT_P:g}): assignment or tracking may be broken."))
    if requirements.require_no_guardrail_violation:
        if not facts.guardrail_breaches:
            checks.append(Check(Gate.NO_GUARDRAIL_VIOLATION, True, "Every guardrail metric is within its limits."))
        for b in facts.guardrail_breaches:
            word = "above its maximum" if b.bound == "max" else "below its minimum"
            checks.append(Check(Gate.NO_GUARDRAIL_VIOLATION, False,
                                f"Guardrail '{b.kpi_name}' ({b.metric}) is {b.observed:.4g}, {word} of {b.threshold:g}."))
    if requirements.require_no_open_issues:
        if not facts.open_issues:
            checks.append(Check(Gate.NO_OPEN_ISSUES, True, "No open alert on the experiment."))
        for issue in facts.open_issues:
            checks.append(Check(Gate.NO_OPEN_ISSUES, False, f"An alert is open and unacknowledged: {issue}."))
    if facts.next_percentage is None:
        checks.append(Check(Gate.NEXT_STAGE, False,
                            f"{_pct(facts.stage_percentage)} is the plan's final stage: there is no next stage."))
    else:
        checks.append(Check(Gate.NEXT_STAGE, True, f"The next stage is {_pct(facts.next_percentage)}."))
    return Readiness(ready=all(c.ok for c in checks), checks=tuple(checks))


def decide(readiness: Readiness, *, auto_progress: bool, pause_on_violation: bool, rollback_on_failure: bool,
           stage_index: int) -> Decision:
    """The sweep's table for an ACTIVE plan, safety first:

    | evidence                                   | plan flag            | decision |
    |--------------------------------------------|----------------------|----------|
    | guardrail violated, above the first stage  | rollbackOnFailure    | ROLLBACK |
    | guardrail violated, at the first stage     | rollbackOnFailure    | PAUSE    |
    | any safety gate failed                     | pauseOnViolation     | PAUSE    |
    | every requirement met, a next stage exists | autoProgress         | PROGRESS |
    | otherwise                                  |                      | NOTHING  |

    At the first stage there is nothing to roll back to, so a guardrail failure pauses (if allowed). A
    safety failure never progresses, whatever the flags: ``ready`` is false.
    """
    guardrail_failed = readiness.failed(Gate.NO_GUARDRAIL_VIOLATION)
    if guardrail_failed and rollback_on_failure:
        return Decision.ROLLBACK if stage_index > 0 else Decision.PAUSE
    if readiness.safety_failed and pause_on_violation:
        return Decision.PAUSE
    if readiness.ready and auto_progress:
        return Decision.PROGRESS
    return Decision.NOTHING


def hours_between(start, end) -> float:
    return (end - start).total_seconds() / 3600.0

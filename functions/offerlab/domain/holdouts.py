"""Holdout cohorts, pure: who is in which frozen cohort, what may change when, and how healthy a cohort is.

Lifecycle (docs/holdouts.md):

    DRAFT --freeze (experimenter)--> FROZEN --retire (admin)--> RETIRED

* DRAFT: editable (name, description, percentage, spillover policy); assigns nobody.
* FROZEN: the definition (salt, percentage, policy, name, description) never changes again, so
  membership never changes; ``is_user_in_holdout`` counts it.
* RETIRED: the end of the cohort's life, recorded as a status stamp by an admin. The definition stays
  byte-identical (membership is still recomputable forever); only the *use* stops:
  ``is_user_in_holdout`` no longer counts it and spillover checks no longer protect it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping

from offerlab.domain.assignment import bucket_of_bytes, threshold
from offerlab.domain.errors import FailedPrecondition
from offerlab.domain.types import CohortStatus, SpilloverAction, SpilloverChannel


class CohortEventType(str, enum.Enum):
    """The cohort's state changes, as its ``lastChange.action`` names them (the ledger records each)."""

    COHORT_CREATED = "COHORT_CREATED"
    COHORT_UPDATED = "COHORT_UPDATED"
    COHORT_FROZEN = "COHORT_FROZEN"
    COHORT_RETIRED = "COHORT_RETIRED"


@dataclass(frozen=True)
class Scope:
    """A cohort's scope (API.md §10): empty = global; else the listed placements and offer types."""

    placements: frozenset[str] = frozenset()
    offer_types: frozenset[str] = frozenset()

    @classmethod
    def of(cls, placements: Iterable[str] | None = None, offer_types: Iterable[object] | None = None) -> "Scope":
        return cls(frozenset(placements or ()),
                   frozenset(getattr(t, "value", t) for t in (offer_types or ())))

    @property
    def is_global(self) -> bool:
        return not self.placements and not self.offer_types

    def includes(self, placement: str | None, offer_type: object) -> bool:
        """The scope includes an experiment (or exposure) of this placement and offer type."""
        return self.is_global or placement in self.placements or getattr(offer_type, "value", offer_type) in self.offer_types

    def overlaps(self, other: "Scope") -> bool:
        """Some experiment could be in both scopes."""
        return self.is_global or other.is_global or bool(self.placements & other.placements) \
            or bool(self.offer_types & other.offer_types)

    def describe(self) -> str:
        if self.is_global:
            return "global"
        parts = [f"placements {', '.join(sorted(self.placements))}"] if self.placements else []
        parts += [f"offer types {', '.join(sorted(self.offer_types))}"] if self.offer_types else []
        return "; ".join(parts)

    def as_dict(self) -> dict[str, list[str]]:
        return {"placements": sorted(self.placements), "offerTypes": sorted(self.offer_types)}


GLOBAL = Scope()


@dataclass(frozen=True, slots=True)
class CohortView:
    """What assignment and spillover checks need of a cohort; ``limit`` and the salt's ``prefix``
    precomputed, since ``is_user_in_holdout`` evaluates every active cohort on every call."""

    cohort_id: str
    salt: str
    percentage: float
    policy: Mapping[SpilloverChannel, SpilloverAction]
    limit: int
    prefix: bytes
    scope: Scope = GLOBAL

    @classmethod
    def of(cls, cohort_id: str, salt: str, percentage: float,
           policy: Mapping[SpilloverChannel, SpilloverAction], scope: Scope = GLOBAL) -> "CohortView":
        return cls(cohort_id, salt, percentage, dict(policy), threshold(percentage), f"{salt}:".encode(), scope)

    def bucket(self, user_id: str) -> int:
        return bucket_of_bytes(self.prefix, user_id.encode())

    def contains(self, user_id: str) -> bool:
        """API.md §2: ``bucket(cohort.salt, userId) < round(cohort.percentage * 100)``."""
        return bucket_of_bytes(self.prefix, user_id.encode()) < self.limit

    def action_for(self, channel: SpilloverChannel) -> SpilloverAction:
        # A policy stored without this channel (an older document) falls back to the strictest action.
        return self.policy.get(channel, SpilloverAction.BLOCK)


def cohorts_containing(user_id: str, cohorts: Iterable[CohortView]) -> list[str]:
    """Ids of the cohorts this user belongs to, in the order given."""
    return [c.cohort_id for c in cohorts if c.contains(user_id)]


# --- lifecycle guards ---------------------------------------------------------------------------------

def ensure_editable(status: CohortStatus) -> None:
    """Only a DRAFT may be edited: a frozen cohort never changes again (API.md §3)."""
    if status != CohortStatus.DRAFT:
        raise FailedPrecondition(f"A {status.value} cohort cannot be edited; only a DRAFT can.")


def ensure_freezable(status: CohortStatus) -> None:
    if status != CohortStatus.DRAFT:
        raise FailedPrecondition(f"Only a DRAFT cohort can be frozen; this one is {status.value}.")


def ensure_retirable(status: CohortStatus, running_experiment_ids: Iterable[str]) -> None:
    """Only a FROZEN cohort can be retired, and not while a running or paused experiment relies on it
    (its HOLDOUT arm would silently become enrollable, i.e. the holdout would leak)."""
    if status != CohortStatus.FROZEN:
        raise FailedPrecondition(f"Only a FROZEN cohort can be retired; this one is {status.value}.")
    running = sorted(running_experiment_ids)
    if running:
        raise FailedPrecondition("The cohort is the holdout of experiments that are running or paused.",
                                 {"experimentIds": running[:20]})


def ensure_no_serving_experiment(scope: Scope, serving: Iterable[tuple[str, str, object]]) -> None:
    """A cohort may not start covering experiments that already serve users (running, paused or shipped:
    ``(experimentId, placement, offerType)``): its members would switch offers, and those already served a
    treatment would be contaminated from the first day (docs/program.md §4)."""
    hit = sorted(e for e, placement, offer_type in serving if scope.includes(placement, offer_type))
    if hit:
        raise FailedPrecondition("The cohort's scope includes experiments that are running, paused or shipped; "
                                 "freeze it before they start (or after they end or are unshipped).",
                                 {"experimentIds": hit[:20]})


# --- health -------------------------------------------------------------------------------------------

class HealthLevel:
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    CRITICAL = "CRITICAL"


_RANK = {HealthLevel.HEALTHY: 0, HealthLevel.DEGRADED: 1, HealthLevel.CRITICAL: 2}

# Thresholds (docs/holdouts.md). Contamination dilutes the holdout contrast roughly in proportion
# (an intention-to-treat estimate shrinks by about the contaminated fraction; Kohavi, Tang & Xu 2020,
# "Trustworthy Online Controlled Experiments", ch. 22 on leakage and interference), so 1 % is a
# bias worth a look and 5 % one that makes long-term lift readings unreliable.
CONTAMINATION_DEGRADED = 0.01
CONTAMINATION_CRITICAL = 0.05
# Sample-ratio mismatch: the same alert level as experiments (stats.frequentist.SRM_ALERT_P, Fabijan
# et al. 2019): the cohort is checked continuously, and a real mismatch gives p far below it.
SRM_CRITICAL_P = 0.001


@dataclass(frozen=True, slots=True)
class HealthAssessment:
    level: str
    issues: list[str]


def assess_health(*, status: CohortStatus, assigned: int, contaminated: int,
                  srm_p: float | None, expected_share: float, observed_share: float | None) -> HealthAssessment:
    """The health level and the issues behind it; the worst issue sets the level."""
    level, issues = HealthLevel.HEALTHY, []

    def flag(worst: str, text: str) -> None:
        nonlocal level
        issues.append(text)
        if _RANK[worst] > _RANK[level]:
            level = worst

    if status == CohortStatus.DRAFT:
        flag(HealthLevel.DEGRADED, "Cohort is not frozen: it holds nobody out until it is frozen.")
    elif status == CohortStatus.RETIRED:
        flag(HealthLevel.DEGRADED, "Cohort is retired: it no longer holds anybody out.")
    rate = contamination_rate(assigned, contaminated)
    if rate >= CONTAMINATION_CRITICAL:
        flag(HealthLevel.CRITICAL, f"Contamination {rate:.2%} is at or above {CONTAMINATION_CRITICAL:.0%}.")
    elif rate >= CONTAMINATION_DEGRADED:
        flag(HealthLevel.DEGRADED, f"Contamination {rate:.2%} is at or above {CONTAMINATION_DEGRADED:.0%}.")
    if srm_p is not None and srm_p < SRM_CRITICAL_P and observed_share is not None:
        flag(HealthLevel.CRITICAL, f"Sample-ratio mismatch: observed share {observed_share:.2%} vs expected "
                                   f"{expected_share:.2%} (p = {srm_p:.2g} < {SRM_CRITICAL_P}).")
    return HealthAssessment(level, issues)


def contamination_rate(assigned: int, contaminated: int) -> float:
    return contaminated / assigned if assigned else 0.0

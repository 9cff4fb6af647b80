"""A program of experiments (API.md §10), pure: which holdouts cover what, and who gets which offer.

* ``covers``: a cohort covers an experiment when it is FROZEN and its scope is global (empty),
  or lists the experiment's placement, or its offer type.
* ``ExperimentRule``: one experiment's decision, precompiled (salt prefixes encoded once, thresholds
  rounded once), in this order (docs/program.md §1):

      not RUNNING                               → NOT_ENROLLED  reason "not_running"
      layer bucket outside its traffic segments → NOT_ENROLLED  reason "not_in_traffic"
      a region it may not serve                 → NOT_ENROLLED  reason "region"  (domain/eligibility.py)
      in ANY covering cohort                    → HOLDOUT       reason "holdout"
      coverage bucket ≥ round(coverage·100)     → NOT_ENROLLED  reason "not_covered"
      arm bucket < round(treatment·100)         → TREATMENT, else CONTROL

  The traffic test comes first so that the experiment's population is its layer traffic: a user outside
  it is nobody's HOLDOUT and nobody's CONTROL there, whichever path asks (placement or experimentId).
  The region test comes before every hash of enrolment, so a user it refuses is never exposed; the
  audience rule and the record of each user's first decision need the store (service/offers.py).
* ``ShippedRule``: a SHIPPED experiment: a region it may not serve → NOT_ENROLLED (reason "region"),
  covering cohorts' members → HOLDOUT (the status quo), everyone else → SHIPPED (the shipped arm's config).
* ``PlacementRule``: the placement's answer: the experiment holding the user's layer bucket decides; a
  bucket nobody holds gets the shipped offer, else NOT_ENROLLED (reason "not_in_traffic").

Every hash is API.md §2's ``bucket``; the per-user work is one layer hash, one per covering cohort until
one contains the user, and the coverage and arm hashes (benchmarks/bench_program.py measures it).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from hashlib import sha256
from typing import Iterable, Sequence

from offerlab.domain.assignment import BUCKETS, Arm, threshold
from offerlab.domain.eligibility import ALL_REGIONS, Eligibility
from offerlab.domain.holdouts import CohortView, Scope
from offerlab.domain.placements import LAYER_SALT_PREFIX, Segment, in_segments, slot_table
from offerlab.domain.types import CohortStatus, OfferType

_from_bytes = int.from_bytes
_sha256 = sha256


class OfferReason(str, enum.Enum):
    """Why get_offer answered as it did, where a rule decided it (the response's ``reason``)."""

    HOLDOUT = "holdout"
    NOT_IN_TRAFFIC = "not_in_traffic"
    NOT_COVERED = "not_covered"
    NOT_RUNNING = "not_running"
    SHIPPED = "shipped"
    REGION = "region"        # a region the experiment may not serve (API.md §13)
    AUDIENCE = "audience"    # an existing subscriber of a NEW_CUSTOMERS experiment (API.md §13)
    ENDED = "ended"          # RUNNING past its plannedEndDate: it enrols nobody (API.md §11)


# --- coverage -----------------------------------------------------------------------------------------


def covers(status: CohortStatus, scope: Scope, placement: str, offer_type: str | OfferType) -> bool:
    """API.md §10: FROZEN (not DRAFT, not RETIRED) and the scope (domain/holdouts.py) includes the experiment."""
    return status is CohortStatus.FROZEN and scope.includes(placement, offer_type)


# --- the decision -------------------------------------------------------------------------------------


class ExperimentRule:
    """One experiment's decision for any user (module docstring), precompiled."""

    __slots__ = ("experiment_id", "running", "segments", "covering", "covering_ids", "eligibility", "_layer",
                 "_holdouts", "_coverage", "_coverage_limit", "_arm", "_arm_limit")

    def __init__(self, *, experiment_id: str, running: bool, placement: str, segments: Sequence[Segment],
                 covering: Sequence[CohortView], salt: str, coverage: float | None,
                 treatment_percentage: float, eligibility: Eligibility = ALL_REGIONS) -> None:
        self.experiment_id = experiment_id
        self.eligibility = eligibility
        self.running = running
        self.segments = tuple((int(s), int(e)) for s, e in segments)
        self.covering = tuple(covering)
        self.covering_ids = tuple(c.cohort_id for c in covering)
        self._layer = f"{LAYER_SALT_PREFIX}{placement}:".encode()
        self._holdouts = tuple((c.prefix, c.limit) for c in covering)
        self._coverage = f"{salt}:coverage:".encode()
        self._coverage_limit = threshold(coverage) if coverage is not None else 0  # None: nobody enrolled
        self._arm = f"{salt}:arm:".encode()
        self._arm_limit = threshold(treatment_percentage)

    def decide(self, user_id: str, region: str | None = None) -> tuple[Arm, OfferReason | None]:
        """The arm and the reason, asked about this experiment by id (the traffic test included)."""
        if not self.running:
            return Arm.NOT_ENROLLED, OfferReason.NOT_RUNNING
        unit = user_id.encode()
        layer = _from_bytes(sha256(self._layer + unit).digest()[:8], "big") % BUCKETS
        if not in_segments(layer, self.segments):
            return Arm.NOT_ENROLLED, OfferReason.NOT_IN_TRAFFIC
        return self.decide_held(unit, region)

    def decide_held(self, unit: bytes, region: str | None = None) -> tuple[Arm, OfferReason | None]:
        """The decision for a user already known to be in this experiment's traffic (``unit``: UTF-8 id)."""
        if not self.running:
            return Arm.NOT_ENROLLED, OfferReason.NOT_RUNNING
        if not self.eligibility.region_allows(region):
            return Arm.NOT_ENROLLED, OfferReason.REGION
        return self.assign(unit)

    def assign(self, unit: bytes) -> tuple[Arm, OfferReason | None]:
        """The hashes alone (holdout, coverage, arm): what the user would get were every rule before them met."""
        for prefix, limit in self._holdouts:
            if _from_bytes(sha256(prefix + unit).digest()[:8], "big") % BUCKETS < limit:
                return Arm.HOLDOUT, OfferReason.HOLDOUT
        if _from_bytes(sha256(self._coverage + unit).digest()[:8], "big") % BUCKETS >= self._coverage_limit:
            return Arm.NOT_ENROLLED, OfferReason.NOT_COVERED
        if _from_bytes(sha256(self._arm + unit).digest()[:8], "big") % BUCKETS < self._arm_limit:
            return Arm.TREATMENT, None
        return Arm.CONTROL, None

    def arm_of(self, user_id: str) -> Arm:
        return self.decide(user_id)[0]


class ShippedRule:
    """A SHIPPED experiment: members of the cohorts covering the ship keep the status quo."""

    __slots__ = ("experiment_id", "covering", "covering_ids", "eligibility", "_holdouts")

    def __init__(self, *, experiment_id: str, covering: Sequence[CohortView],
                 eligibility: Eligibility = ALL_REGIONS) -> None:
        self.experiment_id = experiment_id
        self.covering = tuple(covering)
        self.covering_ids = tuple(c.cohort_id for c in covering)
        self.eligibility = eligibility
        self._holdouts = tuple((c.prefix, c.limit) for c in covering)

    def decide_unit(self, unit: bytes, region: str | None = None) -> tuple[Arm, OfferReason]:
        """The region rule holds for a shipped offer too (where it may not be tested it may not be sold);
        the audience rule does not: once shipped, the offer is the placement's for everyone, and a live
        subscription is protected by its own store product id (the launch checklist's compliance item)."""
        if not self.eligibility.region_allows(region):
            return Arm.NOT_ENROLLED, OfferReason.REGION
        for prefix, limit in self._holdouts:
            if _from_bytes(sha256(prefix + unit).digest()[:8], "big") % BUCKETS < limit:
                return Arm.HOLDOUT, OfferReason.HOLDOUT
        return Arm.SHIPPED, OfferReason.SHIPPED

    def decide(self, user_id: str, region: str | None = None) -> tuple[Arm, OfferReason]:
        return self.decide_unit(user_id.encode(), region)


class PlacementRule:
    """A placement's answer for any user: the holding experiment's, else the shipped offer, else nothing.

    ``decide`` returns ``(arm, reason, rule)``: ``rule`` is the ExperimentRule or ShippedRule that decided,
    None when nothing did (a layer bucket nobody holds and nothing shipped). The hot path: the holders'
    decisions are inlined here with their possible answers prebuilt, so a decision allocates nothing but
    the hash inputs (benchmarks/bench_program.py measures it against the bare hashes it needs)."""

    __slots__ = ("placement", "slots", "shipped", "_layer", "_table", "_compiled", "_nobody")

    def __init__(self, *, placement: str, slots: Sequence[ExperimentRule], shipped: ShippedRule | None) -> None:
        self.placement = placement
        self.slots = tuple(slots)
        self.shipped = shipped
        self._layer = f"{LAYER_SALT_PREFIX}{placement}:".encode()
        self._table = slot_table([r.segments for r in self.slots])
        self._compiled = tuple(
            (r.running, r.eligibility.region_allows, r._holdouts, r._coverage, r._coverage_limit, r._arm,
             r._arm_limit,
             ((Arm.HOLDOUT, OfferReason.HOLDOUT, r), (Arm.NOT_ENROLLED, OfferReason.NOT_COVERED, r),
              (Arm.TREATMENT, None, r), (Arm.CONTROL, None, r), (Arm.NOT_ENROLLED, OfferReason.NOT_RUNNING, r),
              (Arm.NOT_ENROLLED, OfferReason.REGION, r)))
            for r in self.slots)
        self._nobody = (Arm.NOT_ENROLLED, OfferReason.NOT_IN_TRAFFIC, None)

    def decide(self, user_id: str, region: str | None = None, _h=_sha256, _int=_from_bytes,  # noqa: B008
               _n=BUCKETS) -> tuple[Arm, OfferReason | None, ExperimentRule | ShippedRule | None]:
        # Each test is API.md §2's bucket: int.from_bytes(digest[:8], "big") % 10000, written as the top 64
        # bits of the whole digest (the same number, without slicing a copy of it).
        unit = user_id.encode()
        slot = self._table[(_int(_h(self._layer + unit).digest(), "big") >> 192) % _n]
        if slot:
            running, allows, holdouts, coverage, coverage_limit, arm, arm_limit, answers = self._compiled[slot - 1]
            if not running:  # the holder is paused
                return answers[4]
            if not allows(region):  # a region it may not serve (domain/eligibility.py)
                return answers[5]
            for prefix, limit in holdouts:
                if (_int(_h(prefix + unit).digest(), "big") >> 192) % _n < limit:
                    return answers[0]
            if (_int(_h(coverage + unit).digest(), "big") >> 192) % _n >= coverage_limit:
                return answers[1]
            if (_int(_h(arm + unit).digest(), "big") >> 192) % _n < arm_limit:
                return answers[2]
            return answers[3]
        if self.shipped is not None:
            arm_, reason = self.shipped.decide_unit(unit, region)
            return arm_, reason, self.shipped
        return self._nobody


# --- program exposures --------------------------------------------------------------------------------

PROGRAM_PREFIX = "program:"
# A program exposure's arm → the arm an analysis compares it as: the holdout is the status quo (CONTROL).
PROGRAM_ARMS = {"HOLDOUT": "CONTROL", "PROGRAM": "TREATMENT"}


def program_id(cohort_id: str) -> str:
    """The exposure scope of a cohort's program (docs/program.md §5): ``program:<cohortId>``."""
    return f"{PROGRAM_PREFIX}{cohort_id}"


def is_program_scope(scope_id: str) -> bool:
    """An exposure/totals scope of a cohort's program (``program:{cohortId}``), not an experiment."""
    return scope_id.startswith(PROGRAM_PREFIX)


# --- contamination ------------------------------------------------------------------------------------

SERVED_OFFERS = frozenset({Arm.TREATMENT.value, Arm.SHIPPED.value})


def contaminating(scope: Scope, served: Iterable[tuple[str, str | None, str | None, str | None]]
                  ) -> list[str]:
    """Of a holdout member's exposures ``(scopeId, servedArm, placement, offerType)``, the ids of those
    that served a treatment or a shipped offer the cohort's scope includes (API.md §10: contamination)."""
    out = []
    for scope_id, arm, placement, offer_type in served:
        if arm in SERVED_OFFERS and placement is not None and offer_type is not None \
                and scope.includes(placement, offer_type):
            out.append(scope_id)
    return out

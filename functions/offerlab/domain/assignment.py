"""Deterministic assignment (API.md §2): anyone can recompute it outside the system.

    bucket(salt, unitId) = int.from_bytes(sha256(f"{salt}:{unitId}".encode()).digest()[:8], "big") % 10000
"""
from __future__ import annotations

import enum
import secrets
from hashlib import sha256

BUCKETS = 10_000  # resolution 0.01 % (one basis point)


class Arm(str, enum.Enum):
    HOLDOUT = "HOLDOUT"
    CONTROL = "CONTROL"
    TREATMENT = "TREATMENT"
    NOT_ENROLLED = "NOT_ENROLLED"
    SHIPPED = "SHIPPED"  # the placement's shipped offer (API.md §10)


def bucket_of(salt: str, unit_id: str) -> int:
    """The unit's bucket in [0, 10000) for this salt."""
    return int.from_bytes(sha256(f"{salt}:{unit_id}".encode()).digest()[:8], "big") % BUCKETS


def threshold(percentage: float) -> int:
    """Buckets below this threshold are 'in': round(percentage * 100), per API.md §2."""
    return round(percentage * 100)


def in_holdout(cohort_salt: str, cohort_percentage: float, user_id: str) -> bool:
    return bucket_of(cohort_salt, user_id) < threshold(cohort_percentage)


def assign_arm(
    *,
    user_id: str,
    experiment_salt: str,
    treatment_percentage: float,
    coverage: float | None,
    holdout_salt: str,
    holdout_percentage: float,
) -> Arm:
    """Holdout first, then coverage (the rollout stage), then arm. ``coverage=None``: not started.

    The coverage and arm hashes use independent salts, so raising coverage only adds users and an
    enrolled user's arm never depends on the stage.
    """
    if in_holdout(holdout_salt, holdout_percentage, user_id):
        return Arm.HOLDOUT
    if coverage is None or bucket_of(f"{experiment_salt}:coverage", user_id) >= threshold(coverage):
        return Arm.NOT_ENROLLED
    if bucket_of(f"{experiment_salt}:arm", user_id) < threshold(treatment_percentage):
        return Arm.TREATMENT
    return Arm.CONTROL


def new_salt() -> str:
    """A fresh random salt (128 bits, hex); generated once at creation and never changed."""
    return secrets.token_hex(16)


# --- the hot path: the same formula with everything that does not depend on the user precomputed -------

_from_bytes = int.from_bytes


def bucket_of_bytes(prefix: bytes, unit: bytes) -> int:
    """``bucket_of(salt, unit_id)`` given ``prefix = f"{salt}:".encode()`` and ``unit = unit_id.encode()``.

    Byte-exact with ``bucket_of``: the UTF-8 encoding of a concatenation is the concatenation of the
    encodings (tests/unit/test_holdout_assignment_plan.py checks it on the golden vectors)."""
    return _from_bytes(sha256(prefix + unit).digest()[:8], "big") % BUCKETS


class AssignmentPlan:
    """``assign_arm`` for one experiment configuration, precompiled: salt prefixes encoded once and
    thresholds rounded once, the user id encoded once for all three hashes. About 2x the speed of
    ``assign_arm`` (benchmarks/bench_assignment.py); same answers (tests check it)."""

    __slots__ = ("_holdout", "_coverage", "_arm", "_holdout_limit", "_coverage_limit", "_arm_limit")

    def __init__(self, *, experiment_salt: str, treatment_percentage: float, coverage: float | None,
                 holdout_salt: str, holdout_percentage: float) -> None:
        self._holdout = f"{holdout_salt}:".encode()
        self._coverage = f"{experiment_salt}:coverage:".encode()
        self._arm = f"{experiment_salt}:arm:".encode()
        self._holdout_limit = threshold(holdout_percentage)
        self._coverage_limit = threshold(coverage) if coverage is not None else 0  # None: nobody enrolled
        self._arm_limit = threshold(treatment_percentage)

    def arm_of(self, user_id: str) -> Arm:
        unit = user_id.encode()
        if _from_bytes(sha256(self._holdout + unit).digest()[:8], "big") % BUCKETS < self._holdout_limit:
            return Arm.HOLDOUT
        if _from_bytes(sha256(self._coverage + unit).digest()[:8], "big") % BUCKETS >= self._coverage_limit:
            return Arm.NOT_ENROLLED
        if _from_bytes(sha256(self._arm + unit).digest()[:8], "big") % BUCKETS < self._arm_limit:
            return Arm.TREATMENT
        return Arm.CONTROL

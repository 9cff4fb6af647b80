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

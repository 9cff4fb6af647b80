"""Enumerations shared by the domain, the store and the api (``(str, Enum)``: JSON-friendly)."""
from __future__ import annotations

import enum


class CohortStatus(str, enum.Enum):
    DRAFT = "DRAFT"
    FROZEN = "FROZEN"
    RETIRED = "RETIRED"


class SpilloverChannel(str, enum.Enum):
    REFERRAL = "referral"
    GIFT = "gift"
    SHARED_WALLET = "shared_wallet"


class SpilloverAction(str, enum.Enum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    FLAG = "FLAG"


# Default per-channel policy: a gift or a shared wallet hands over the offer itself, so it
# is blocked; a referral only passes a link, so it is flagged and the recipient counted contaminated.
DEFAULT_SPILLOVER_POLICY = {
    SpilloverChannel.REFERRAL: SpilloverAction.FLAG,
    SpilloverChannel.GIFT: SpilloverAction.BLOCK,
    SpilloverChannel.SHARED_WALLET: SpilloverAction.BLOCK,
}


class ExperimentStatus(str, enum.Enum):
    DRAFT = "DRAFT"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    KILLED = "KILLED"
    # Shipping a COMPLETED experiment's winning arm (API.md §10): requested, then four-eyes approved.
    SHIP_PENDING_APPROVAL = "SHIP_PENDING_APPROVAL"
    SHIPPED = "SHIPPED"


class ShipArm(str, enum.Enum):
    """The arms a COMPLETED experiment can ship (API.md §10)."""

    TREATMENT = "TREATMENT"
    CONTROL = "CONTROL"


class OfferType(str, enum.Enum):
    PRICE_CHANGE = "PRICE_CHANGE"
    PAYWALL = "PAYWALL"
    PROMO = "PROMO"
    BUNDLE = "BUNDLE"
    TRIAL = "TRIAL"


class RolloutStatus(str, enum.Enum):
    PLANNED = "PLANNED"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ABORTED = "ABORTED"


class KpiType(str, enum.Enum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"
    GUARDRAIL = "GUARDRAIL"


class Direction(str, enum.Enum):
    """Which way a KPI should move; for a GUARDRAIL KPI the bad side is the opposite one."""

    INCREASE = "INCREASE"
    DECREASE = "DECREASE"
    MAINTAIN = "MAINTAIN"


class ViolationAction(str, enum.Enum):
    """What a breached guardrail does, weakest first (the strongest of several violations wins)."""

    ALERT = "ALERT"
    PAUSE = "PAUSE"
    KILL = "KILL"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]


_ACTION_RANK = {ViolationAction.ALERT: 1, ViolationAction.PAUSE: 2, ViolationAction.KILL: 3}

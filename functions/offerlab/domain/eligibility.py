"""Who an experiment may enrol at all (API.md §13), pure: regions and audience, decided before enrolment.

Two rules, both applied by get_offer *before* the holdout, coverage and arm hashes, so a user they keep
out is never exposed (no exposure, no holdout record, no metrics): an analysis never has to drop them.

**Regions.** An experiment may carry ``regions {allow?, deny?}`` (ISO 3166-1 alpha-2, domain/iso.py); the
deployment's regional policy (domain/regional_policy.py, configuration) adds, for every experiment of an
offer type, the regions where that type may not be offered and the regions whose consent does not cover
experimentation. A region is served when it is not denied (by the experiment or the policy) and, if the
experiment has an allow list, is on it. A request without a region is served only by experiments without
an allow list: a deny list can only refuse what it can recognise, an allow list admits only what it can
(docs/regions.md §1 says why, and that backends should always pass the store's storefront country).

**Audience.** ``NEW_CUSTOMERS`` (the default for PRICE_CHANGE) enrols only users without an active
subscription when first evaluated; ``ALL`` (the default otherwise) everyone. Existing subscribers are kept
on the status quo because both stores make a price change for a live subscription a separate procedure
with the subscriber's consent (Apple: "Managing prices", price increase consent; Google Play: "Change
subscription prices", legacy price cohorts): a test must never reach them by the back door.

**First evaluation decides** (docs/regions.md §2). The service records the first decision of each user in an
experiment with rules: an exposure (enrolled) or a refusal (``region`` or ``audience``). A user refused
stays out for the experiment's life, whatever region or subscription they show later; an enrolled user
keeps their arm — but in a region the experiment may not serve they are answered with the status quo
(reason ``region``) every time they ask from there: no rule of analysis outranks where an offer may be
shown. ``Eligibility.region_allows`` is the stateless part; the first-decision record is the service's.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from offerlab.domain.iso import normalize_code
from offerlab.domain.types import OfferType


class Audience(str, enum.Enum):
    NEW_CUSTOMERS = "NEW_CUSTOMERS"
    ALL = "ALL"


def default_audience(offer_type: OfferType | str) -> Audience:
    """API.md §13: NEW_CUSTOMERS for PRICE_CHANGE, ALL for every other offer type."""
    return Audience.NEW_CUSTOMERS if OfferType(offer_type) is OfferType.PRICE_CHANGE else Audience.ALL


def effective_audience(audience: Audience | str | None, offer_type: OfferType | str) -> Audience:
    return Audience(audience) if audience is not None else default_audience(offer_type)


class RefusalReason(str, enum.Enum):
    """Why a user was kept out of an experiment before enrolment (the get_offer ``reason``)."""

    REGION = "region"
    AUDIENCE = "audience"


@dataclass(frozen=True)
class Eligibility:
    """One experiment's pre-enrolment rules, compiled: normalised region sets and the audience."""

    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    audience: Audience = Audience.ALL

    @classmethod
    def of(cls, allow: Iterable[str] = (), deny: Iterable[str] = (), policy_deny: Iterable[str] = (),
           audience: Audience = Audience.ALL) -> "Eligibility":
        return cls(frozenset(normalize_code(c) for c in allow),
                   frozenset(normalize_code(c) for c in (*deny, *policy_deny)), Audience(audience))

    @property
    def has_rules(self) -> bool:
        """Whether any user can be refused: then the first decision of each user is recorded."""
        return bool(self.allow or self.deny) or self.audience is Audience.NEW_CUSTOMERS

    def region_allows(self, region: str | None) -> bool:
        if not region:
            return not self.allow
        code = normalize_code(region)
        if code in self.deny:
            return False
        return not self.allow or code in self.allow

    def admits_customer(self, active_subscriber: bool) -> bool:
        return self.audience is Audience.ALL or not active_subscriber

    def served_regions(self) -> frozenset[str] | None:
        """The regions it may serve when it has an allow list (None: every region not denied)."""
        return self.allow - self.deny if self.allow else None

    def describe(self) -> str:
        parts = []
        if self.allow:
            parts.append(f"only {', '.join(sorted(self.allow))}")
        if self.deny:
            parts.append(f"never {', '.join(sorted(self.deny))}")
        return "; ".join(parts) or "every region"


ALL_REGIONS = Eligibility()


@dataclass(frozen=True)
class FirstDecision:
    """What is recorded of a user's first decision in an experiment with rules (module docstring)."""

    exposed: bool = False
    """An exposure exists: the user is enrolled (or held out) and keeps their arm."""
    refusal: str | None = None
    """A refusal exists (its RefusalReason value): the user stays out."""
    customer_active: bool | None = None
    """Their ingested history shows an active subscription (None: not read)."""

    @property
    def decided(self) -> bool:
        return self.exposed or self.refusal is not None


# Metric events that start or continue a subscription, and those that end one (API.md §5 types). A
# cancellation ends it as far as offers go: the user has said it will not renew (docs/regions.md §2).
ACTIVATING_EVENTS = frozenset({"purchase", "renewal", "trial_start", "trial_conversion"})
DEACTIVATING_EVENTS = frozenset({"cancellation", "refund", "chargeback"})


def active_from_history(last_activation_micros: int | None, last_deactivation_micros: int | None) -> bool:
    """A user's ingested history shows an active subscription: their latest activating event is later
    than their latest ending one (commutative: it depends only on the two maxima)."""
    if last_activation_micros is None:
        return False
    return last_deactivation_micros is None or last_activation_micros > last_deactivation_micros

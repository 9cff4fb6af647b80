"""Regional policy for analyses: which users must not count, by region (a bias adjustment).

A configurable table with two parts:

* ``offer_type_not_allowed``: {offer type: regions} where that kind of offer may not be shown (e.g. a
  price test where local consumer law forbids personalised prices). A user from such a region who was
  nonetheless exposed saw an offer they should not have: their behaviour is not evidence about the
  markets where the offer may ship, so the analysis excludes them (and reports how many).
* ``consent_excluded``: regions whose users are excluded from analysis altogether (e.g. where the
  consent the app collects does not cover experimentation analytics).

Regions are what metric events carry in ``region`` (API.md §5): compared case-insensitively, so
``"de"`` and ``"DE"`` are the same region. A user without a known region is never excluded.

The default below is deliberately conservative and only an example: the regions under comprehensive
embargo, where no offer of any type may be sold. A deployment sets its own table in the environment
variable ``OFFERLAB_REGIONAL_POLICY`` (JSON, ``{"offerTypeNotAllowed": {"PRICE_CHANGE": ["XX"]},
"consentExcluded": ["YY"]}``; docs/analytics.md). Pure: no Firebase.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from offerlab.domain.types import OfferType

_EMBARGOED = frozenset({"CU", "IR", "KP", "SY"})


def _norm(region: str) -> str:
    return region.strip().upper()


@dataclass(frozen=True)
class RegionalPolicy:
    offer_type_not_allowed: Mapping[OfferType, frozenset[str]] = field(default_factory=dict)
    consent_excluded: frozenset[str] = frozenset()

    def exclusion_reason(self, offer_type: OfferType, region: str | None) -> str | None:
        """Why a user of ``region`` is excluded from an analysis of an ``offer_type`` experiment, or None."""
        if not region:
            return None
        code = _norm(region)
        if code in self.consent_excluded:
            return "consent"
        if code in self.offer_type_not_allowed.get(offer_type, frozenset()):
            return "offer_type_not_allowed"
        return None

    def excludes(self, offer_type: OfferType, region: str | None) -> bool:
        return self.exclusion_reason(offer_type, region) is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (sorted: it enters the analysis' inputs digest)."""
        return {
            "offerTypeNotAllowed": {t.value: sorted(r) for t, r in sorted(self.offer_type_not_allowed.items(),
                                                                             key=lambda kv: kv[0].value) if r},
            "consentExcluded": sorted(self.consent_excluded),
        }


DEFAULT_POLICY = RegionalPolicy(offer_type_not_allowed={t: _EMBARGOED for t in OfferType})


def policy_from_dict(data: Mapping[str, Any]) -> RegionalPolicy:
    """Parse the JSON table; ValueError on anything malformed (a bad table must not silently mean 'none')."""
    if not isinstance(data, Mapping):
        raise ValueError("the regional policy must be a JSON object")
    unknown = set(data) - {"offerTypeNotAllowed", "consentExcluded"}
    if unknown:
        raise ValueError(f"unknown regional policy keys: {sorted(unknown)}")
    raw_types = data.get("offerTypeNotAllowed", {})
    raw_consent = data.get("consentExcluded", [])
    if not isinstance(raw_types, Mapping) or not isinstance(raw_consent, list):
        raise ValueError("offerTypeNotAllowed must be an object and consentExcluded a list")
    table: dict[OfferType, frozenset[str]] = {}
    for name, regions in raw_types.items():
        try:
            offer_type = OfferType(name)
        except ValueError:
            raise ValueError(f"unknown offer type {name!r}") from None
        if not isinstance(regions, list) or not all(isinstance(r, str) and r.strip() for r in regions):
            raise ValueError(f"regions of {name} must be a list of non-empty strings")
        table[offer_type] = frozenset(_norm(r) for r in regions)
    if not all(isinstance(r, str) and r.strip() for r in raw_consent):
        raise ValueError("consentExcluded must list non-empty strings")
    return RegionalPolicy(table, frozenset(_norm(r) for r in raw_consent))


def policy_from_env(text: str | None) -> RegionalPolicy:
    """The table from ``OFFERLAB_REGIONAL_POLICY`` (JSON) or the default when unset/empty."""
    if not text or not text.strip():
        return DEFAULT_POLICY
    return policy_from_dict(json.loads(text))

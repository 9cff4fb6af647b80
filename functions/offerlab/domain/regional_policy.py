"""The regional policy: where offers may not be shown, and (for analyses) which users must not count.

A configured table (not code) with two parts:

* ``offer_type_not_allowed``: {offer type: regions} where that kind of offer may not be shown (e.g. a
  price test where local consumer law forbids personalised prices). A user from such a region who was
  nonetheless exposed saw an offer they should not have: their behaviour is not evidence about the
  markets where the offer may ship, so the analysis excludes them (and reports how many).
* ``consent_excluded``: regions whose users are excluded from analysis altogether (e.g. where the
  consent the app collects does not cover experimentation analytics).

Delivery applies both (domain/eligibility.py): get_offer keeps users of those regions out of the experiment
before enrolment (status quo, reason ``region``), so they are never exposed. Analyses apply the same table to
the region metric events carry (API.md §5) as a safety net: events whose region the request did not show.
Regions are compared case-insensitively (``"de"`` is ``DE``); a user without a known region is never
excluded by the analysis.

The table is configuration (offerlab/config.py ``regional_policy``): the environment variable
``OFFERLAB_REGIONAL_POLICY`` (the JSON text), else the file named by ``OFFERLAB_REGIONAL_POLICY_FILE``, else
the default shipped beside this package, ``functions/offerlab/regional-policy.default.json`` (documented in
docs/regions.md §3: the regions under comprehensive embargo, where no offer of any type may be sold).
Codes must be ISO 3166-1 alpha-2 (domain/iso.py). Pure: this module parses, it reads no file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from offerlab.domain.iso import COUNTRIES, normalize_code
from offerlab.domain.types import OfferType


def _norm(region: str) -> str:
    return normalize_code(region)


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

    def denied_for(self, offer_type: OfferType | str) -> frozenset[str]:
        """The regions where get_offer may not enrol anyone in an ``offer_type`` experiment."""
        return self.offer_type_not_allowed.get(OfferType(offer_type), frozenset()) | self.consent_excluded

    def as_dict(self) -> dict[str, Any]:
        """JSON form (sorted: it enters the analysis' inputs digest)."""
        return {
            "offerTypeNotAllowed": {t.value: sorted(r) for t, r in sorted(self.offer_type_not_allowed.items(),
                                                                             key=lambda kv: kv[0].value) if r},
            "consentExcluded": sorted(self.consent_excluded),
        }


EMPTY_POLICY = RegionalPolicy()


def _codes(values: Any, what: str) -> frozenset[str]:
    if not isinstance(values, list) or not all(isinstance(r, str) and r.strip() for r in values):
        raise ValueError(f"{what} must be a list of non-empty strings")
    bad = sorted({r for r in values if _norm(r) not in COUNTRIES})
    if bad:
        raise ValueError(f"{what}: not ISO 3166-1 alpha-2 codes: {bad[:10]}")
    return frozenset(_norm(r) for r in values)


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
        table[offer_type] = _codes(regions, f"regions of {name}")
    return RegionalPolicy(table, _codes(raw_consent, "consentExcluded"))


def policy_from_json(text: str) -> RegionalPolicy:
    """The table from its JSON text (ValueError when malformed: a bad table must not silently mean 'none')."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the regional policy is not JSON: {err}") from None
    return policy_from_dict(data)

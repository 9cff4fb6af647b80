"""The regional policy table (domain/regional_policy.py): known answers and a strict parser."""
import json

import pytest

from offerlab.domain.regional_policy import DEFAULT_POLICY, policy_from_dict, policy_from_env
from offerlab.domain.types import OfferType


def test_an_offer_type_is_excluded_only_where_the_table_says_case_insensitively():
    policy = policy_from_dict({"offerTypeNotAllowed": {"PRICE_CHANGE": ["de", "FR"]}, "consentExcluded": ["xk"]})
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, "DE") == "offer_type_not_allowed"
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, " fr ") == "offer_type_not_allowed"
    assert policy.exclusion_reason(OfferType.PROMO, "DE") is None
    assert policy.exclusion_reason(OfferType.PROMO, "XK") == "consent"
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, "US") is None
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, None) is None and not policy.excludes(OfferType.TRIAL, "")


def test_the_default_excludes_embargoed_regions_for_every_offer_type():
    for offer_type in OfferType:
        assert DEFAULT_POLICY.excludes(offer_type, "KP")
        assert not DEFAULT_POLICY.excludes(offer_type, "US")
    assert policy_from_env(None) is DEFAULT_POLICY and policy_from_env("  ") is DEFAULT_POLICY


def test_the_environment_table_round_trips_through_as_dict():
    text = json.dumps({"offerTypeNotAllowed": {"TRIAL": ["BR"]}, "consentExcluded": ["CN"]})
    policy = policy_from_env(text)
    assert policy.as_dict() == {"offerTypeNotAllowed": {"TRIAL": ["BR"]}, "consentExcluded": ["CN"]}
    assert policy_from_dict(policy.as_dict()) == policy


@pytest.mark.parametrize("bad", [
    [], {"offerTypes": {}}, {"offerTypeNotAllowed": {"DISCOUNT": ["DE"]}}, {"offerTypeNotAllowed": {"PROMO": "DE"}},
    {"offerTypeNotAllowed": {"PROMO": [""]}}, {"consentExcluded": "DE"}, {"consentExcluded": [3]},
])
def test_a_malformed_table_is_refused_rather_than_read_as_empty(bad):
    with pytest.raises(ValueError):
        policy_from_dict(bad)

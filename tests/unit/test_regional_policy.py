"""The regional policy table (domain/regional_policy.py): known answers and a strict parser."""
import json

import pytest

from offerlab import config
from offerlab.domain.regional_policy import EMPTY_POLICY, policy_from_dict, policy_from_json
from offerlab.domain.types import OfferType


def test_an_offer_type_is_excluded_only_where_the_table_says_case_insensitively():
    policy = policy_from_dict({"offerTypeNotAllowed": {"PRICE_CHANGE": ["de", "FR"]}, "consentExcluded": ["xk"]})
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, "DE") == "offer_type_not_allowed"
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, " fr ") == "offer_type_not_allowed"
    assert policy.exclusion_reason(OfferType.PROMO, "DE") is None
    assert policy.exclusion_reason(OfferType.PROMO, "XK") == "consent"
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, "US") is None
    assert policy.exclusion_reason(OfferType.PRICE_CHANGE, None) is None and not policy.excludes(OfferType.TRIAL, "")


def test_the_shipped_default_is_configuration_and_denies_embargoed_regions_for_every_offer_type(monkeypatch):
    monkeypatch.delenv("OFFERLAB_REGIONAL_POLICY", raising=False)
    monkeypatch.delenv("OFFERLAB_REGIONAL_POLICY_FILE", raising=False)
    default = config.regional_policy()
    assert default == policy_from_json(config.DEFAULT_REGIONAL_POLICY_FILE.read_text())
    for offer_type in OfferType:
        assert default.excludes(offer_type, "KP") and default.denied_for(offer_type) == {"CU", "IR", "KP", "SY"}
        assert not default.excludes(offer_type, "US")
    assert EMPTY_POLICY.denied_for(OfferType.PRICE_CHANGE) == frozenset()


def test_the_environment_and_a_file_override_the_default(monkeypatch, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"offerTypeNotAllowed": {"PRICE_CHANGE": ["DE"]}}))
    monkeypatch.delenv("OFFERLAB_REGIONAL_POLICY", raising=False)
    monkeypatch.setenv("OFFERLAB_REGIONAL_POLICY_FILE", str(path))
    assert config.regional_policy().denied_for(OfferType.PRICE_CHANGE) == {"DE"}
    assert config.regional_policy().denied_for(OfferType.PROMO) == frozenset()
    monkeypatch.setenv("OFFERLAB_REGIONAL_POLICY", json.dumps({"consentExcluded": ["FR"]}))  # the text wins
    assert config.regional_policy().denied_for(OfferType.PROMO) == {"FR"}
    monkeypatch.setenv("OFFERLAB_REGIONAL_POLICY", "{not json")
    with pytest.raises(ValueError):
        config.regional_policy()


def test_the_environment_table_round_trips_through_as_dict():
    text = json.dumps({"offerTypeNotAllowed": {"TRIAL": ["BR"]}, "consentExcluded": ["CN"]})
    policy = policy_from_json(text)
    assert policy.as_dict() == {"offerTypeNotAllowed": {"TRIAL": ["BR"]}, "consentExcluded": ["CN"]}
    assert policy_from_dict(policy.as_dict()) == policy


@pytest.mark.parametrize("bad", [
    [], {"offerTypes": {}}, {"offerTypeNotAllowed": {"DISCOUNT": ["DE"]}}, {"offerTypeNotAllowed": {"PROMO": "DE"}},
    {"offerTypeNotAllowed": {"PROMO": [""]}}, {"consentExcluded": "DE"}, {"consentExcluded": [3]},
    {"consentExcluded": ["EU"]}, {"offerTypeNotAllowed": {"PROMO": ["DEU"]}},
])
def test_a_malformed_table_is_refused_rather_than_read_as_empty(bad):
    with pytest.raises(ValueError):
        policy_from_dict(bad)

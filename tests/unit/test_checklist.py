"""The launch checklist (domain/checklist.py): each item fails on its own, and all pass together."""
import dataclasses

import pytest

from offerlab.domain.checklist import ITEMS, LaunchFacts, evaluate, is_ready

READY = LaunchFacts(
    cohort_status="FROZEN", cohort_spillover_policy={"referral": "FLAG", "gift": "BLOCK", "shared_wallet": "BLOCK"},
    hypothesis_statement="A higher price raises net LTV", success_criteria=("LTV +10%",),
    kpi_types=("PRIMARY", "GUARDRAIL"), guardrail_count=1, approvers=("ceo@x.com", "cfo@x.com"),
    approved_by=("cfo@x.com", "ceo@x.com"), kill_switch_enabled=True, creation_event_recorded=True,
    rollout_plan_status="PLANNED", rollout_stage_count=5,
)


def _failing(facts):
    return {i.item for i in evaluate(facts) if not i.ok}


def test_a_complete_experiment_passes_every_item_in_order():
    items = evaluate(READY)
    assert [i.item for i in items] == list(ITEMS) and is_ready(items)
    assert all(i.detail for i in items)


@pytest.mark.parametrize("change,item", [
    ({"cohort_status": "DRAFT"}, "frozen_holdout"),
    ({"hypothesis_statement": "  "}, "hypothesis"),
    ({"success_criteria": ()}, "hypothesis"),
    ({"kpi_types": ("SECONDARY",)}, "primary_kpi"),
    ({"kpi_types": ("PRIMARY", "PRIMARY")}, "primary_kpi"),
    ({"guardrail_count": 0}, "guardrails"),
    ({"cohort_spillover_policy": {"referral": "FLAG", "gift": "ALLOW", "shared_wallet": "BLOCK"}}, "spillover_isolation"),
    ({"cohort_spillover_policy": {"referral": "FLAG", "gift": "FLAG"}}, "spillover_isolation"),  # missing = ALLOW
    ({"approved_by": ("ceo@x.com",)}, "approvals"),
    ({"approvers": (), "approved_by": ()}, "approvals"),
    ({"kill_switch_enabled": False}, "kill_switch"),
    ({"creation_event_recorded": False}, "ledger_recording"),
    ({"rollout_plan_status": None, "rollout_stage_count": 0}, "rollout_plan"),
    ({"rollout_plan_status": "ACTIVE"}, "rollout_plan"),
    ({"offer_type": "PRICE_CHANGE", "offer_product_id": "pro_1299"}, "compliance"),
    ({"offer_type": "PRICE_CHANGE", "offer_product_id": "pro", "control_product_id": "pro"}, "compliance"),
    ({"display_as_discount": True}, "compliance"),
    ({"display_as_discount": True, "discount_price_named": True, "reference_price_rule": "LOWEST_EVER"}, "compliance"),
    ({"served_regions": ()}, "compliance"),
])
def test_each_item_fails_alone(change, item):
    facts = dataclasses.replace(READY, **change)
    assert _failing(facts) == {item}
    assert not is_ready(evaluate(facts))


def test_a_referral_allow_does_not_break_isolation():
    facts = dataclasses.replace(READY, cohort_spillover_policy={"referral": "ALLOW", "gift": "FLAG", "shared_wallet": "BLOCK"})
    assert _failing(facts) == set()


def test_a_missing_cohort_fails_holdout_and_isolation_with_a_clear_detail():
    items = {i.item: i for i in evaluate(dataclasses.replace(READY, cohort_status=None, cohort_spillover_policy={}))}
    assert not items["frozen_holdout"].ok and not items["spillover_isolation"].ok
    assert "does not exist" in items["frozen_holdout"].detail


def test_the_missing_approvers_are_named():
    items = {i.item: i for i in evaluate(dataclasses.replace(READY, approved_by=("ceo@x.com",)))}
    assert "cfo@x.com" in items["approvals"].detail and "ceo@x.com" not in items["approvals"].detail


def test_a_price_test_with_distinct_products_and_a_named_reduction_passes():
    facts = dataclasses.replace(READY, offer_type="PRICE_CHANGE", offer_product_id="pro_1299",
                                control_product_id="pro_999", display_as_discount=True, discount_price_named=True,
                                reference_price_rule="EU_OMNIBUS_30D", served_regions=("DE", "FR"))
    assert _failing(facts) == set()

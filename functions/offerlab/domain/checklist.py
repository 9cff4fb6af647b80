"""The launch checklist of API.md (start_experiment): pure, so every rule is unit-tested without Firestore.

The service gathers the facts inside the start transaction (experiment, its holdout cohort, its rollout
plan, whether its creation event exists) and refuses with FAILED_PRECONDITION and ``details.checklist``
unless every item is ok. Definitions of the items that API.md leaves open are in docs/lifecycle.md.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from offerlab.domain.reference_price import RULES as REFERENCE_RULES

# Channels on which a benefit (the offer itself) changes hands: isolation requires they are never ALLOWed
# into a holdout. A referral only passes a link, so ALLOW is tolerated there (the default policy FLAGs it).
ISOLATING_CHANNELS = ("gift", "shared_wallet")

ITEMS = ("frozen_holdout", "hypothesis", "primary_kpi", "guardrails", "spillover_isolation",
         "approvals", "kill_switch", "ledger_recording", "rollout_plan", "holdout_coverage", "placement_capacity",
         "compliance")


@dataclass(frozen=True)
class ChecklistItem:
    item: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LaunchFacts:
    """What the checklist needs, already read from the store (plain values: the domain stays pure)."""

    cohort_status: str | None                       # None: the cohort does not exist
    cohort_spillover_policy: Mapping[str, str] = field(default_factory=dict)
    hypothesis_statement: str = ""
    success_criteria: tuple[str, ...] = ()
    kpi_types: tuple[str, ...] = ()
    guardrail_count: int = 0
    approvers: tuple[str, ...] = ()
    approved_by: tuple[str, ...] = ()
    kill_switch_enabled: bool = False
    creation_event_recorded: bool = False
    rollout_plan_status: str | None = None          # None: no plan
    rollout_stage_count: int = 0
    rollout_stage_percentages: tuple[float, ...] = ()
    # API.md §10: the experiment's own cohort must cover it (with frozen_holdout: FROZEN and in scope) ...
    cohort_scope_includes: bool = True
    cohort_scope: str = "global"
    # ... and its traffic must fit beside the experiments holding its placement (domain/placements.py).
    placement_capacity_ok: bool = True
    placement_capacity_detail: str = ""
    # API.md §13 (the compliance item): the store rules a price test must respect, and a reduction's reference.
    offer_type: str = ""
    offer_product_id: str | None = None             # offerConfig.productId
    control_product_id: str | None = None           # controlConfig.productId
    display_as_discount: bool = False               # offerConfig.displayAsDiscount
    discount_price_named: bool = False              # offerConfig names its (reduced) price
    # The PRIMARY KPI's power plan (service/planning.py, as stored on the experiment): a WARNING item.
    power: Mapping[str, Any] | None = None
    reference_price_rule: str | None = None         # offerConfig.referencePriceRule (None: the default rule)
    served_regions: tuple[str, ...] | None = None   # an allow list minus every denied region (None: no allow list)


def evaluate(facts: LaunchFacts) -> list[ChecklistItem]:
    """Every item, in the order of API.md, each with a short human-readable detail."""
    items = []

    def add(item: str, ok: bool, yes: str, no: str) -> None:
        items.append(ChecklistItem(item, ok, yes if ok else no))

    add("frozen_holdout", facts.cohort_status == "FROZEN", "The holdout cohort is frozen.",
        "The holdout cohort does not exist." if facts.cohort_status is None
        else f"The holdout cohort is {facts.cohort_status}, not FROZEN.")
    add("hypothesis", bool(facts.hypothesis_statement.strip()) and len(facts.success_criteria) > 0,
        "A hypothesis with success criteria is recorded.",
        "A hypothesis needs a statement and at least one success criterion.")
    primaries = sum(1 for t in facts.kpi_types if t == "PRIMARY")
    add("primary_kpi", primaries == 1, "Exactly one PRIMARY KPI.", f"Found {primaries} PRIMARY KPIs; exactly one is required.")
    add("guardrails", facts.guardrail_count >= 1, f"{facts.guardrail_count} guardrail(s) defined.",
        "At least one guardrail is required.")
    leaky = [ch for ch in ISOLATING_CHANNELS if facts.cohort_spillover_policy.get(ch, "ALLOW") == "ALLOW"]
    add("spillover_isolation", facts.cohort_status is not None and not leaky,
        "Gifts and shared wallets into the holdout are blocked or flagged.",
        "The holdout cohort does not exist." if facts.cohort_status is None
        else f"The cohort's spillover policy ALLOWs: {', '.join(leaky)}.")
    missing = sorted(set(facts.approvers) - set(facts.approved_by))
    add("approvals", bool(facts.approvers) and not missing, "Every listed approver approved.",
        "No approvers are listed." if not facts.approvers else f"Waiting for: {', '.join(missing)}.")
    add("kill_switch", facts.kill_switch_enabled, "The experiment obeys the experiment-kill-switch topic.",
        "The kill-switch is disabled for this experiment.")
    add("ledger_recording", facts.creation_event_recorded, "The experiment's creation event is recorded.",
        "The experiment's creation event is missing: the ledger cannot account for it.")
    add("rollout_plan", facts.rollout_plan_status == "PLANNED" and facts.rollout_stage_count > 0,
        "A rollout plan is configured" + (": " + " → ".join(f"{p:g} %" for p in facts.rollout_stage_percentages)
                                          if facts.rollout_stage_percentages else "") + ".",
        "No rollout plan: call create_rollout_plan." if facts.rollout_plan_status is None
        else f"The rollout plan is {facts.rollout_plan_status}, not PLANNED.")
    add("holdout_coverage", facts.cohort_status is not None and facts.cohort_scope_includes,
        f"The holdout cohort's scope ({facts.cohort_scope}) includes the experiment.",
        "The holdout cohort does not exist." if facts.cohort_status is None
        else f"The holdout cohort's scope ({facts.cohort_scope}) does not include the experiment's placement "
             "or offer type: it would not hold anybody out of it.")
    add("placement_capacity", facts.placement_capacity_ok, facts.placement_capacity_detail or "The traffic fits.",
        facts.placement_capacity_detail or "The placement has no room for the experiment's traffic.")
    problems = compliance_problems(facts)
    add("compliance", not problems, "Store product ids, reductions and regions are in order.", " ".join(problems))
    return items


def warnings(facts: LaunchFacts) -> list[ChecklistItem]:
    """Items that inform the start and never block it (``details.warnings`` beside ``checklist``): the PRIMARY
    KPI's power plan."""
    return [power_item(facts.power)]


def compliance_problems(facts: LaunchFacts) -> list[str]:
    """Why the experiment may not launch as it is (docs/regions.md §4), in words; empty when it may.

    * A price test offers its price under its own store product, never the status quo's: both stores
      re-price a live subscription only through their consent-bound procedures (Apple's price increase
      consent, Google Play's legacy price cohorts), so a test that changed the status quo product's price
      would reach existing subscribers by the back door.
    * An offer shown as a reduction names its price and a known reference-price rule (Directive 98/6/EC
      art. 6a: the prior price is the lowest of the 30 days before; domain/reference_price.py).
    * An allow list must leave some region the regional policy lets it serve.
    """
    out = []
    if facts.offer_type == "PRICE_CHANGE":
        if not facts.offer_product_id or not facts.control_product_id:
            out.append("A price test needs offerConfig.productId and controlConfig.productId (store product ids).")
        elif facts.offer_product_id == facts.control_product_id:
            out.append(f"offerConfig.productId equals the status quo's ({facts.control_product_id}): a price test "
                       "must sell a distinct store product, so no live subscription is re-priced.")
    if facts.display_as_discount:
        if not facts.discount_price_named:
            out.append("An offer shown as a reduction must name its price (offerConfig.price).")
        if facts.reference_price_rule is not None and facts.reference_price_rule not in REFERENCE_RULES:
            out.append(f"Unknown referencePriceRule {facts.reference_price_rule!r} (known: "
                       f"{', '.join(sorted(REFERENCE_RULES))}).")
    if facts.served_regions is not None and not facts.served_regions:
        out.append("Every region of the allow list is denied (by the experiment or the regional policy): "
                   "it could enrol nobody.")
    return out


def power_item(plan: Mapping[str, Any] | None) -> ChecklistItem:
    """The power warning: ok when the plan reaches its target power (80 %) by the planned end."""
    if not plan or not plan.get("available"):
        reason = (plan or {}).get("reason") or "no power plan"
        return ChecklistItem("power", False, f"The PRIMARY KPI's power cannot be planned: {reason}.")
    return ChecklistItem("power", bool(plan.get("reachable")), str((plan.get("check") or {}).get("detail") or ""))


def is_ready(items: list[ChecklistItem]) -> bool:
    return all(i.ok for i in items)

"""The placement layer (domain/placements.py) and the program's decisions (domain/program.py): pure."""
import json
import random
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from pathlib import Path

import pytest

from offerlab.domain.assignment import Arm, bucket_of
from offerlab.domain.holdouts import CohortView, Scope
from offerlab.domain.placements import (
    Holder, allocate, free_segments, is_placement, layer_bucket, plan_capacity, segments_width, slot_table,
)
from offerlab.domain.program import (
    ExperimentRule, OfferReason, PlacementRule, ShippedRule, contaminating, covers,
)
from offerlab.domain.types import CohortStatus

DATA = json.loads((Path(__file__).parent / "data" / "layer-vectors.json").read_text())
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _independent_bucket(salt: str, unit: str) -> int:
    return int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8], "big") % 10000


@pytest.mark.parametrize("vector", DATA["vectors"], ids=lambda v: f"{v['placement']}|{v['userId'][:12]}")
def test_layer_bucket_matches_the_golden_vectors(vector):
    assert layer_bucket(vector["placement"], vector["userId"]) == vector["layerBucket"]


def test_the_vectors_cover_utf8_and_empty_ids_and_holders():
    ids = {v["userId"] for v in DATA["vectors"]}
    assert "" in ids and any(ord(c) > 127 for i in ids for c in i)
    segments = {k: [tuple(s) for s in v] for k, v in DATA["holders"]["segments"].items()}
    rules = [ExperimentRule(experiment_id=e, running=True, placement=DATA["holders"]["placement"], segments=s,
                            covering=(), salt="s", coverage=100, treatment_percentage=50)
             for e, s in segments.items()]
    placed = PlacementRule(placement=DATA["holders"]["placement"], slots=rules, shipped=None)
    for user in DATA["holders"]["users"]:
        _, _, rule = placed.decide(user["userId"])
        assert (rule.experiment_id if rule else None) == user["holder"]


def test_allocation_takes_the_lowest_free_buckets_and_refuses_what_does_not_fit():
    assert allocate(3000, []) == ((0, 3000),)
    assert allocate(3000, [(0, 2000), (5000, 6000)]) == ((2000, 5000),)
    assert allocate(5000, [(0, 2000), (4000, 6000)]) == ((2000, 4000), (6000, 9000))  # fragments are used
    assert allocate(2001, [(0, 8000)]) is None
    assert allocate(10000, []) == ((0, 10000),)
    with pytest.raises(ValueError):
        allocate(0, [])


def test_random_allocations_never_overlap_and_have_the_asked_width():
    rng = random.Random(7)
    for _ in range(300):
        held: list[tuple[int, int]] = []
        for _ in range(rng.randint(1, 6)):
            width = rng.randint(1, 4000)
            got = allocate(width, held)
            free = segments_width(free_segments(held))
            if got is None:
                assert free < width
                continue
            assert segments_width(got) == width
            taken = {b for s, e in held for b in range(s, e)}
            assert not taken & {b for s, e in got for b in range(s, e)}
            held.extend(got)


def test_an_ended_experiment_holds_its_buckets_for_the_cooldown_only():
    cooldown = timedelta(days=7)
    live = Holder("A", ((0, 6000),), live=True, ended_at=None)
    ended = Holder("B", ((6000, 10000),), live=False, ended_at=NOW - timedelta(days=3))
    refused = plan_capacity("p", 30, [live, ended], NOW, cooldown)
    assert not refused.ok and refused.holders == ("A", "B") and "has 0% free" in refused.detail()
    later = plan_capacity("p", 30, [live, ended], NOW + timedelta(days=4, seconds=1), cooldown)
    assert later.ok and later.segments == ((6000, 9000),) and later.holders == ("A",)
    assert ended.released_at(cooldown) == NOW + timedelta(days=4)


def test_placement_names_are_safe_document_ids():
    for good in ("default", "onboarding_paywall", "A1.b-c"):
        assert is_placement(good)
    for bad in ("", ".", "..", "__x__", "a/b", "-x", "x" * 65, "paywall\n"):
        assert not is_placement(bad)


def test_the_slot_table_keeps_a_bucket_with_the_first_slot():
    table = slot_table([((0, 10),), ((5, 20),)])
    assert table[0] == table[9] == 1 and table[10] == table[19] == 2 and table[20] == 0


# --- decisions -----------------------------------------------------------------------------------------

def _cohort(cid, pct, scope=Scope()):
    return CohortView.of(cid, f"salt-{cid}", pct, {}, scope)


def reference(user, *, running, placement, segments, covering, salt, coverage, treatment):
    """The decision of docs/program.md §1 written out from API.md §2's bucket."""
    if not running:
        return Arm.NOT_ENROLLED, OfferReason.NOT_RUNNING
    layer = _independent_bucket(f"layer:{placement}", user)
    if not any(s <= layer < e for s, e in segments):
        return Arm.NOT_ENROLLED, OfferReason.NOT_IN_TRAFFIC
    if any(_independent_bucket(c.salt, user) < round(c.percentage * 100) for c in covering):
        return Arm.HOLDOUT, OfferReason.HOLDOUT
    if _independent_bucket(f"{salt}:coverage", user) >= round(coverage * 100):
        return Arm.NOT_ENROLLED, OfferReason.NOT_COVERED
    return (Arm.TREATMENT if _independent_bucket(f"{salt}:arm", user) < round(treatment * 100) else Arm.CONTROL), None


def test_the_compiled_rule_equals_the_reference_decision():
    covering = [_cohort("g", 10), _cohort("p", 5, Scope.of(["pw"]))]
    config = dict(running=True, placement="pw", segments=((1000, 4000), (7000, 8000)), covering=covering,
                  salt="exp-salt", coverage=50, treatment=30)
    rule = ExperimentRule(experiment_id="E", running=True, placement="pw", segments=config["segments"],
                          covering=covering, salt="exp-salt", coverage=50, treatment_percentage=30)
    users = [f"u{i}" for i in range(5000)] + ["", "Ünïcødé-用户"]
    seen = {rule.decide(u) for u in users}
    assert all(rule.decide(u) == reference(u, **config) for u in users)
    assert len(seen) == 5  # every outcome occurs: traffic, holdout, coverage, both arms


def test_a_user_of_any_covering_cohort_is_held_out_and_a_shipped_offer_spares_them():
    a, b = _cohort("a", 20), _cohort("b", 20, Scope.of(offer_types=["PRICE_CHANGE"]))
    rule = ExperimentRule(experiment_id="E", running=True, placement="pw", segments=((0, 10000),),
                          covering=[a, b], salt="s", coverage=100, treatment_percentage=50)
    shipped = ShippedRule(experiment_id="S", covering=[a, b])
    for user in (f"h{i}" for i in range(3000)):
        member = a.contains(user) or b.contains(user)
        assert (rule.decide(user)[0] is Arm.HOLDOUT) == member
        assert shipped.decide(user) == ((Arm.HOLDOUT, OfferReason.HOLDOUT) if member else (Arm.SHIPPED, OfferReason.SHIPPED))


def test_a_placement_gives_each_user_at_most_one_experiment_and_the_rest_the_shipped_offer():
    rules = [ExperimentRule(experiment_id=e, running=True, placement="pw", segments=segs, covering=(), salt=e,
                            coverage=100, treatment_percentage=50)
             for e, segs in (("A", ((0, 3000),)), ("B", ((3000, 5000),)))]
    placed = PlacementRule(placement="pw", slots=rules, shipped=ShippedRule(experiment_id="S", covering=()))
    counts = {"A": 0, "B": 0, "S": 0}
    for i in range(20000):
        user = f"x{i}"
        arm, reason, rule = placed.decide(user)
        counts[rule.experiment_id] += 1
        inside = [r.experiment_id for r in rules if r.decide(user)[1] is not OfferReason.NOT_IN_TRAFFIC]
        assert inside == ([rule.experiment_id] if rule.experiment_id != "S" else [])
        assert (arm is Arm.SHIPPED) == (rule.experiment_id == "S")
    assert abs(counts["A"] / 20000 - 0.3) < 0.015 and abs(counts["B"] / 20000 - 0.2) < 0.015


def test_coverage_changes_never_move_a_user_between_experiments():
    def placement(coverage):
        rules = [ExperimentRule(experiment_id=e, running=True, placement="pw", segments=segs, covering=(), salt=e,
                                coverage=coverage, treatment_percentage=50)
                 for e, segs in (("A", ((0, 5000),)), ("B", ((5000, 10000),)))]
        return PlacementRule(placement="pw", slots=rules, shipped=None)
    low, high = placement(5), placement(50)
    for user in (f"c{i}" for i in range(3000)):
        arm_low, _, rule_low = low.decide(user)
        arm_high, _, rule_high = high.decide(user)
        assert rule_low.experiment_id == rule_high.experiment_id
        if arm_low in (Arm.TREATMENT, Arm.CONTROL):
            assert arm_high is arm_low  # raising coverage only adds users, never changes an arm


def test_coverage_rule_and_contamination_rule():
    assert covers(CohortStatus.FROZEN, Scope(), "x", "PROMO")
    assert covers(CohortStatus.FROZEN, Scope.of(["pw"]), "pw", "PROMO")
    assert covers(CohortStatus.FROZEN, Scope.of(offer_types=["PROMO"]), "other", "PROMO")
    assert not covers(CohortStatus.FROZEN, Scope.of(["pw"], ["TRIAL"]), "other", "PROMO")
    assert not covers(CohortStatus.RETIRED, Scope(), "x", "PROMO") and not covers(CohortStatus.DRAFT, Scope(), "x", "PROMO")
    served = [("E1", "TREATMENT", "pw", "PROMO"), ("E2", "CONTROL", "pw", "PROMO"), ("program:c", "SHIPPED", "other", "TRIAL"),
              ("E3", "TREATMENT", "elsewhere", "BUNDLE"), ("old", "TREATMENT", None, None)]
    assert contaminating(Scope.of(["pw"], ["TRIAL"]), served) == ["E1", "program:c"]
    assert contaminating(Scope(), served) == ["E1", "program:c", "E3"]

"""Regions, audience and reference prices (API.md §13) on the in-memory store: who is kept out before
enrolment and stays out, who keeps their arm, what the launch checklist's compliance item refuses, and the
reference price of a reduction on dated histories. Every refusal writes nothing. What only the emulator
shows (the wire, the Firestore queries): tests/e2e/test_regions_e2e.py."""
from datetime import date, datetime, timedelta, timezone

import pytest

from offerlab.api.callable import parse
from offerlab.api.experiments import CreateExperiment, UpdateExperiment
from offerlab.api.offers import GetOffer
from offerlab.domain.actors import Caller
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from offerlab.domain.metrics import epoch_micros
from offerlab.service import experiments as svc
from offerlab.service import offers, program
from offerlab.store.documents import PriceServed
from tests.unit.fakes import InMemoryStore
from tests.unit.test_lifecycle_use_cases import CEO, CFO, PM, definition
from tests.unit.test_program_use_cases import SERVICE, approved, ask, cohort, refused, running

USERS = [f"user-{i}" for i in range(1500)]
PRICE = {"offerConfig": {"price": 12.99, "productId": "pro_1299"}, "controlConfig": {"price": 9.99, "productId": "pro_999"}}


@pytest.fixture
def store():
    return InMemoryStore()


def exposures(store, experiment_id):
    return {v["userId"]: v for v in store.docs("experimentExposures").values() if v["experimentId"] == experiment_id}


def refusals(store, experiment_id):
    return {v["userId"]: v for v in store.docs("offerRefusals").values() if v["experimentId"] == experiment_id}


# --- regions --------------------------------------------------------------------------------------


def test_users_from_a_denied_region_get_the_status_quo_are_never_exposed_and_are_counted(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, offerType="PROMO", regions={"deny": ["de"]}, **PRICE)
    assert e.regions.deny == ["DE"]
    answers = {u: ask(store, u, region="DE") for u in USERS[:600]}
    for user, answer in answers.items():
        assert answer == {"userId": user, "arm": "NOT_ENROLLED", "experimentId": e.experiment_id,
                          "offerConfig": e.control_config, "placement": "default", "reason": "region"}
    assert exposures(store, e.experiment_id) == {} and store.docs("holdoutAssignments") == {}
    assert not [k for k in store.docs("experimentExposures") if k.startswith("program:")]
    # Counted as not enrolled: every user the hashes would have exposed (coverage 100 %: all of them).
    kept_out = refusals(store, e.experiment_id)
    assert set(kept_out) == set(answers) and {r["reason"] for r in kept_out.values()} == {"region"}
    assert store.eligibility.count_refusals(e.experiment_id) == {"region": 600, "audience": 0}
    # Elsewhere the experiment runs as before, and records the region of the first exposure.
    french = {u: ask(store, u, region="fr") for u in USERS[600:1200]}
    assert {a["arm"] for a in french.values()} == {"HOLDOUT", "CONTROL", "TREATMENT"}
    assert {x["region"] for x in exposures(store, e.experiment_id).values()} == {"FR"}


def test_an_allow_list_admits_only_its_regions_and_a_request_without_a_region_is_kept_out(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, offerType="PROMO", regions={"allow": ["FR", "ES"]}, **PRICE)
    for region in (None, "US", "DE"):
        assert {ask(store, u, region=region)["reason"] for u in USERS[:50]} == {"region"}
    assert {ask(store, u, region="ES")["arm"] for u in USERS[50:400]} == {"HOLDOUT", "CONTROL", "TREATMENT"}
    # Without an allow list a request without a region is served (a deny list refuses what it recognises).
    other = running(store, g.cohort_id, offerType="PROMO", placement="p2", regions={"deny": ["DE"]}, **PRICE)
    assert {ask(store, u, experiment_id=other.experiment_id)["arm"] for u in USERS[:300]} >= {"CONTROL", "TREATMENT"}


def test_the_configured_regional_policy_denies_its_regions_to_every_experiment(store, monkeypatch):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, offerType="PROMO", **PRICE)  # no regions of its own
    assert {ask(store, u, region="KP")["reason"] for u in USERS[:100]} == {"region"}  # the shipped default
    monkeypatch.setenv("OFFERLAB_REGIONAL_POLICY", '{"offerTypeNotAllowed": {"PROMO": ["BR"]}, "consentExcluded": ["IN"]}')
    assert {ask(store, u, region=r)["reason"] for u in USERS[100:200] for r in ("BR", "IN")} == {"region"}
    assert ask(store, USERS[0], region="KP")["reason"] == "region"  # refused before: stays out
    assert {ask(store, u, region="KP")["arm"] for u in USERS[200:500]} >= {"CONTROL", "TREATMENT"}
    assert e.experiment_id


def test_the_first_decision_holds_for_the_experiments_life(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, offerType="PROMO", regions={"deny": ["DE"]}, **PRICE)
    rule = store.offer_views.view(e.experiment_id).rule
    treated = [u for u in USERS if rule.decide(u, "FR")[0].value == "TREATMENT"][:20]
    # Enrolled first (in FR): keeps the arm; asked from DE they are served the status quo, nothing recorded.
    for user in treated[:10]:
        assert ask(store, user, region="FR")["arm"] == "TREATMENT"
        away = ask(store, user, region="DE")
        assert away["arm"] == "NOT_ENROLLED" and away["reason"] == "region" and away["offerConfig"] == e.control_config
        assert ask(store, user, region="FR")["offerConfig"] == e.offer_config
    assert user not in refusals(store, e.experiment_id)
    assert {x["arm"] for u, x in exposures(store, e.experiment_id).items() if u in treated[:10]} == {"TREATMENT"}
    # Refused first (in DE): stays out wherever they ask from afterwards, and is never exposed.
    for user in treated[10:]:
        ask(store, user, region="DE")
        later = ask(store, user, region="FR")
        assert later["arm"] == "NOT_ENROLLED" and later["reason"] == "region" and later["offerConfig"] == e.control_config
        assert user not in exposures(store, e.experiment_id)
    assert store.eligibility.count_refusals(e.experiment_id)["region"] == 10


def test_a_denied_region_gets_the_status_quo_of_a_shipped_offer_too(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, placement="paywall", offerType="PROMO", regions={"deny": ["DE"]}, **PRICE)
    svc.complete_experiment(store, PM, e.experiment_id)
    program.ship_experiment(store, PM, e.experiment_id, "TREATMENT", "won")
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    svc.approve_experiment(store, CFO, e.experiment_id, None)
    assert {ask(store, u, placement="paywall", region="DE")["reason"] for u in USERS[:200]} == {"region"}
    assert {ask(store, u, placement="paywall", region="FR")["arm"] for u in USERS[:200]} == {"SHIPPED", "HOLDOUT"}


# --- audience -------------------------------------------------------------------------------------


def test_a_price_test_defaults_to_new_customers_and_never_enrols_an_existing_subscriber(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, **PRICE)  # PRICE_CHANGE, no audience given
    assert e.audience is None and store.offer_views.view(e.experiment_id).eligibility.audience.value == "NEW_CUSTOMERS"
    subscribers, history, newcomers = USERS[:200], USERS[200:400], USERS[400:800]
    for user in history:  # a renewal ingested for them: their history says they subscribe
        store.customers.record_events(user, epoch_micros(datetime(2026, 1, 5, tzinfo=timezone.utc)), None)
    for user in subscribers:
        answer = ask(store, user, subscriber=True)
        assert (answer["arm"], answer["reason"], answer["offerConfig"]) == ("NOT_ENROLLED", "audience", e.control_config)
    for user in history:
        assert ask(store, user)["reason"] == "audience"
        assert ask(store, user, subscriber=False)["reason"] == "audience"  # refused once: stays out
    kept_out = refusals(store, e.experiment_id)
    assert {kept_out[u]["subscriberSource"] for u in subscribers} == {"backend"}
    assert {kept_out[u]["subscriberSource"] for u in history} == {"history"}
    assert not set(exposures(store, e.experiment_id)) & set(subscribers + history)
    # New customers are enrolled; one who subscribes afterwards (maybe because of the test) keeps the arm.
    arms = {u: ask(store, u)["arm"] for u in newcomers}
    assert set(arms.values()) == {"HOLDOUT", "CONTROL", "TREATMENT"}
    convert = next(u for u, a in arms.items() if a == "TREATMENT")
    store.customers.record_events(convert, epoch_micros(datetime.now(timezone.utc)), None)
    assert ask(store, convert, subscriber=True)["arm"] == "TREATMENT"
    assert store.eligibility.count_refusals(e.experiment_id) == {"region": 0, "audience": 400}


def test_a_cancellation_or_refund_after_the_last_purchase_ends_the_subscription():
    from offerlab.domain.eligibility import active_from_history

    assert not active_from_history(None, None) and not active_from_history(None, 5)
    assert active_from_history(10, None) and active_from_history(10, 5) and not active_from_history(10, 10)
    assert not active_from_history(10, 11)


def test_end_users_may_not_state_their_subscription_and_audience_all_enrols_subscribers(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, **PRICE)
    me = Caller("user-1", None, frozenset())
    refused(store, PermissionDenied, lambda: offers.get_offer(store, me, None, e.experiment_id, subscriber=False))
    assert offers.get_offer(store, me, None, e.experiment_id)["userId"] == "user-1"
    everyone = running(store, g.cohort_id, placement="p2", audience="ALL", **PRICE)
    arms = {ask(store, u, experiment_id=everyone.experiment_id, subscriber=True)["arm"] for u in USERS[:300]}
    assert arms == {"HOLDOUT", "CONTROL", "TREATMENT"}


def test_an_answer_reads_the_first_decision_in_one_batched_read(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, **PRICE)
    user = next(u for u in USERS if ask(store, u)["arm"] in ("CONTROL", "TREATMENT"))
    before = store.eligibility.reads
    ask(store, user)
    # The fake keeps no process memo, so each answer reads once; production remembers (store/regions.py).
    assert store.eligibility.reads == before + 1
    assert e.experiment_id


# --- the launch checklist's compliance item --------------------------------------------------------


@pytest.mark.parametrize("over,needle", [
    ({"offerConfig": {"price": 12.99}, "controlConfig": {"price": 9.99}}, "needs offerConfig.productId"),
    ({"offerConfig": {"price": 12.99, "productId": "pro"}, "controlConfig": {"price": 9.99, "productId": "pro"}},
     "equals the status quo's"),
    ({"offerType": "PROMO", "offerConfig": {"displayAsDiscount": True}}, "must name its price"),
    ({"offerType": "PROMO", "offerConfig": {"displayAsDiscount": True, "price": 7.99, "referencePriceRule": "ANY"}},
     "Unknown referencePriceRule"),
    ({"offerType": "PROMO", "regions": {"allow": ["KP"]}}, "could enrol nobody"),
])
def test_the_compliance_item_refuses_a_start_alone_and_writes_nothing(store, over, needle):
    g = cohort(store, 10)
    e = approved(store, g.cohort_id, **{**PRICE, **over})
    err = refused(store, FailedPrecondition, lambda: svc.start_experiment(store, PM, e.experiment_id))
    failing = {i["item"]: i["detail"] for i in err.details["checklist"] if not i["ok"]}
    assert set(failing) == {"compliance"} and needle in failing["compliance"]


def test_a_discount_with_a_price_and_the_omnibus_rule_passes(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, offerType="PROMO", offerConfig={"price": 7.99, "displayAsDiscount": True,
                                                                      "referencePriceRule": "EU_OMNIBUS_30D"})
    assert e.status.value == "RUNNING"


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("regions,path", [
    ({"allow": ["XX"]}, "regions.allow.0"), ({"deny": ["DEU"]}, "regions.deny.0"), ({"deny": ["EU"]}, "regions.deny.0"),
    ({"allow": ["DE", "FR"], "deny": ["fr"]}, "regions"), ({"allow": ["DE", "de"]}, "regions.allow"),
    ({"deny": [3]}, "regions.deny.0"), ({"only": ["DE"]}, "regions.only"),
])
def test_a_bad_region_list_is_refused_with_its_path_before_anything_is_written(store, regions, path):
    g = cohort(store, 10)
    body = definition(g.cohort_id).model_dump(by_alias=True, mode="json")
    with pytest.raises(InvalidArgument) as err:
        parse(CreateExperiment, {**body, "regions": regions})
    assert path in [f["path"] for f in err.value.details["fields"]]
    with pytest.raises(InvalidArgument):
        parse(UpdateExperiment, {"experimentId": "e1", "regions": regions})
    with pytest.raises(InvalidArgument):
        parse(CreateExperiment, {**body, "audience": "EVERYONE"})


@pytest.mark.parametrize("region", ["XX", "DEU", "EU", "", "d"])
def test_get_offer_refuses_a_region_that_is_not_iso_3166_alpha_2(region):
    with pytest.raises(InvalidArgument) as err:
        parse(GetOffer, {"region": region})
    assert err.value.details["fields"][0]["path"] == "region"
    assert parse(GetOffer, {"region": "de"}).region == "DE" and parse(GetOffer, {"region": "XK"}).region == "XK"


# --- reference prices -----------------------------------------------------------------------------


def seed(store, placement, region, day, amount, currency="EUR", discount=False):
    store.prices.record_served(PriceServed(
        placement=placement, region=region, day=day.isoformat(), currency=currency, amount=amount, discount=discount,
        first_served_at=datetime.combine(day, datetime.min.time(), timezone.utc)))


def test_a_reduction_shows_the_lowest_price_served_in_the_region_in_the_30_days_before(store):
    g = cohort(store, 10)
    today = datetime.now(timezone.utc).date()
    history = [(31, "8.49", False), (30, "9.49", False), (12, "9.99", False), (5, "8.99", False),
               (3, "5.99", True), (1, "10.99", False), (0, "7.49", False)]
    for days_ago, amount, discount in history:
        seed(store, "paywall", "DE", today - timedelta(days=days_ago), amount, discount=discount)
    seed(store, "paywall", "FR", today - timedelta(days=2), "6.99")             # another region
    seed(store, "paywall", "DE", today - timedelta(days=2), "6.49", currency="USD")  # another currency
    e = running(store, g.cohort_id, placement="paywall", offerType="PROMO", treatmentPercentage=99.99,
                offerConfig={"price": 7.99, "currency": "EUR", "displayAsDiscount": True},
                controlConfig={"price": 9.99, "currency": "EUR"})
    rule = store.offer_views.view(e.experiment_id).rule
    user = next(u for u in USERS if rule.decide(u, "DE")[0].value == "TREATMENT")
    answer = ask(store, user, placement="paywall", region="DE")
    # Days 30..1 before today: 9.49, 9.99, 8.99, 10.99 (8.49 is 31 days back, 7.49 is today, 5.99 a reduction).
    assert answer["referencePrice"] == 8.99 and answer["discountAllowed"] is True
    # In FR the window holds only 6.99, below the reduced price: it may not be shown as a reduction.
    fr = ask(store, user, placement="paywall", region="FR")
    assert fr["referencePrice"] == 6.99 and fr["discountAllowed"] is False
    # No region, no history: no reference price.
    bare = ask(store, user, placement="paywall")
    assert bare["referencePrice"] is None and bare["discountAllowed"] is False
    # Non-reductions carry no reference price.
    held = next(u for u in USERS if rule.decide(u, "DE")[0].value == "HOLDOUT")
    assert "referencePrice" not in ask(store, held, placement="paywall", region="DE")


def test_get_offer_records_each_price_it_serves_once_per_day_region_and_price(store):
    g = cohort(store, 10)
    e = running(store, g.cohort_id, placement="paywall", offerType="PROMO",
                offerConfig={"price": "7.99", "currency": "eur", "displayAsDiscount": True,
                             "regionalPrices": {"JP": {"price": 980, "currency": "JPY"}}},
                controlConfig={"price": 9.99, "currency": "EUR", "regionalPrices": {"JP": {"price": 1200, "currency": "JPY"}}})
    for user in USERS[:300]:
        for region in ("DE", "JP"):
            ask(store, user, placement="paywall", region=region)
    entries = sorted((v["region"], v["currency"], v["amount"], v["discount"], v["experimentId"] == e.experiment_id)
                     for v in store.docs("priceSeries/served").values())
    assert entries == [("DE", "EUR", "7.99", True, True), ("DE", "EUR", "9.99", False, True),
                       ("JP", "JPY", "1200", False, True), ("JP", "JPY", "980", True, True)]
    assert {v["day"] for v in store.docs("priceSeries/served").values()} == {datetime.now(timezone.utc).date().isoformat()}


def test_the_reference_rule_on_dated_histories():
    from decimal import Decimal

    from offerlab.domain.reference_price import Price, Served, judge, reference_price, window

    day = date(2026, 3, 31)
    assert window(day) == (date(2026, 3, 1), date(2026, 3, 30))
    h = [Served(date(2026, 3, 1), "EUR", Decimal("9.49"), False), Served(date(2026, 2, 28), "EUR", Decimal("1"), False),
         Served(date(2026, 3, 30), "EUR", Decimal("9.99"), False), Served(date(2026, 3, 31), "EUR", Decimal("2"), False),
         Served(date(2026, 3, 15), "EUR", Decimal("3"), True), Served(date(2026, 3, 15), None, Decimal("4"), False)]
    assert reference_price(h, day, "EUR") == Decimal("9.49")     # both window ends included, nothing beyond
    assert reference_price(h, day, None) == Decimal("4") and reference_price(h, day, "USD") is None
    assert judge(Price(Decimal("7.99"), "EUR"), h, day).discount_allowed
    assert not judge(Price(Decimal("9.49"), "EUR"), h, day).discount_allowed  # not a reduction at all
    # A month on, the window is Mar 31 .. Apr 29: the 31st's price (served then) counts, the 1st has aged out.
    assert reference_price(h, date(2026, 4, 30), "EUR") == Decimal("2")
    assert reference_price(h, date(2026, 5, 1), "EUR") is None

"""Regions, audience, reference prices and money over HTTP and Pub/Sub (API.md §13, issue "Done when"):
users asked for from a denied region never get a treatment and are counted as not enrolled; an existing
subscriber (the backend's word, or an ingested renewal) is never enrolled in a NEW_CUSTOMERS price test; a
reduction's reference price is the lowest price served in the prior 30 days of a scripted history; EUR and
JPY events convert at their date's rate and an unknown currency is refused and counted; bad input is
refused with INVALID_ARGUMENT and writes nothing."""
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from offerlab.store import collections as C
from offerlab.store import metrics as metrics_repo
from offerlab_client import InvalidArgument, PermissionDenied
from tests.e2e.test_experiment_lifecycle import experiment_body, frozen_cohort
from tests.e2e.test_experiment_pubsub import iso, poll, publisher  # noqa: F401 - the fixture

PROMO = {"offerType": "PROMO", "offerConfig": {"price": 7.99, "currency": "EUR", "productId": "pro_promo"},
         "controlConfig": {"price": 9.99, "currency": "EUR", "productId": "pro_999"}}


def launch(clients, **over):
    cohort = frozen_cohort(clients, 10)
    pm = clients.experimenter()
    exp = pm.call("create_experiment", experiment_body(cohort["cohortId"], **over))
    pm.create_rollout_plan(exp["experimentId"], stages=[100])
    pm.submit_for_approval(exp["experimentId"])
    clients.approver("ceo").approve_experiment(exp["experimentId"])
    clients.approver("cfo").approve_experiment(exp["experimentId"])
    return pm.start_experiment(exp["experimentId"])


def ask_all(clients, users, **kw):
    def one(user):
        return user, clients.end_user(user).get_offer_where(**kw)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, users))


def docs_of(firestore_db, collection, experiment_id):
    query = firestore_db.collection(collection).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return {d.get("userId"): d.to_dict() for d in query.stream()}


def test_users_from_a_denied_region_never_get_a_treatment_and_are_counted_as_not_enrolled(clients, firestore_db):
    exp = launch(clients, regions={"deny": ["DE", "at"]}, **PROMO)
    eid = exp["experimentId"]
    assert exp["regions"] == {"allow": [], "deny": ["AT", "DE"]}
    denied = [f"de-{uuid.uuid4().hex[:10]}" for _ in range(150)]
    allowed = [f"fr-{uuid.uuid4().hex[:10]}" for _ in range(150)]
    answers = ask_all(clients, denied, experiment_id=eid, region="de")
    assert {(a["arm"], a["reason"]) for a in answers.values()} == {("NOT_ENROLLED", "region")}
    assert all(a["offerConfig"] == exp["controlConfig"] for a in answers.values())
    french = ask_all(clients, allowed, experiment_id=eid, region="FR")
    assert {a["arm"] for a in french.values()} == {"HOLDOUT", "CONTROL", "TREATMENT"}
    # Asked again from France, the users first seen in Germany stay out: the first decision holds.
    again = ask_all(clients, denied[:40], experiment_id=eid, region="FR")
    assert {a["arm"] for a in again.values()} == {"NOT_ENROLLED"}
    exposed = docs_of(firestore_db, C.EXPERIMENT_EXPOSURES, eid)
    assert not set(exposed) & set(denied) and set(exposed) == set(allowed)
    assert {x["region"] for x in exposed.values()} == {"FR"}
    monitor = clients.analyst().monitor_experiment(eid)
    assert monitor["notEnrolled"] == {"region": 150, "audience": 0}
    assert sum(monitor["exposures"].values()) == 150


def test_an_existing_subscriber_is_never_enrolled_in_a_new_customers_price_test(clients, publisher):
    exp = launch(clients)  # PRICE_CHANGE with distinct product ids; audience: the default, NEW_CUSTOMERS
    eid = exp["experimentId"]
    service = clients.service()
    flagged = [f"sub-{uuid.uuid4().hex[:10]}" for _ in range(60)]
    for user in flagged:
        answer = service.get_offer_where(user_id=user, experiment_id=eid, subscriber=True)
        assert (answer["arm"], answer["reason"], answer["offerConfig"]) == ("NOT_ENROLLED", "audience", exp["controlConfig"])
    # A renewal ingested before the user's first get_offer: their history says they subscribe.
    renewing = f"ren-{uuid.uuid4().hex[:10]}"
    publisher("offer-metric-events", {"eventId": f"evt-{uuid.uuid4()}", "userId": renewing, "type": "renewal",
                                      "value": 9.99, "currency": "USD",
                                      "occurredAt": iso(datetime.now(timezone.utc) - timedelta(days=3))})
    from offerlab.store.regions import find_customer  # noqa: PLC0415

    assert poll(lambda: find_customer(renewing), lambda c: c is not None) is not None, "the renewal was not ingested"
    assert clients.end_user(renewing).get_offer_where(experiment_id=eid)["reason"] == "audience"
    # Nobody opts themselves in: an end user may not state their subscription.
    with pytest.raises(PermissionDenied):
        clients.end_user(renewing).get_offer_where(experiment_id=eid, subscriber=False)
    assert service.get_offer_where(user_id=flagged[0], experiment_id=eid, subscriber=False)["reason"] == "audience"
    newcomers = ask_all(clients, [f"new-{uuid.uuid4().hex[:10]}" for _ in range(120)], experiment_id=eid)
    assert {a["arm"] for a in newcomers.values()} == {"HOLDOUT", "CONTROL", "TREATMENT"}
    assert clients.analyst().monitor_experiment(eid)["notEnrolled"] == {"region": 0, "audience": 61}


def test_a_discounts_reference_price_is_the_lowest_of_the_prior_30_days_of_a_scripted_history(clients, firestore_db):
    cohort = frozen_cohort(clients, 10)
    pm = clients.experimenter()
    body = experiment_body(cohort["cohortId"], offerType="PROMO", treatmentPercentage=99.99,
                           offerConfig={"price": 7.99, "currency": "EUR", "displayAsDiscount": True},
                           controlConfig={"price": 9.99, "currency": "EUR"})
    placement = body["placement"]  # the cohort's own placement (experiment_body): the history is scripted there
    today = datetime.now(timezone.utc).date()
    series = firestore_db.collection(C.PRICE_SERIES).document(f"{placement}|DE").collection(C.PRICES_SERVED)
    for days_ago, amount, discount in [(31, "6.49", False), (29, "9.49", False), (17, "8.79", False),
                                       (4, "5.99", True), (2, "10.99", False), (0, "6.99", False)]:
        day = (today - timedelta(days=days_ago)).isoformat()
        series.document(f"{day}|EUR|{amount}|{'D' if discount else 'R'}").set({
            "placement": placement, "region": "DE", "day": day, "currency": "EUR", "amount": amount,
            "discount": discount, "firstServedAt": datetime.now(timezone.utc)})
    exp = pm.call("create_experiment", body)
    eid = exp["experimentId"]
    pm.create_rollout_plan(eid, stages=[100])
    pm.submit_for_approval(eid)
    clients.approver("ceo").approve_experiment(eid)
    clients.approver("cfo").approve_experiment(eid)
    pm.start_experiment(eid)
    answers = ask_all(clients, [f"d-{uuid.uuid4().hex[:10]}" for _ in range(40)], placement=placement, region="DE")
    treated = [a for a in answers.values() if a["arm"] == "TREATMENT"]
    assert treated and {(a["referencePrice"], a["discountAllowed"]) for a in treated} == {(8.79, True)}
    # What get_offer served today is in the history now (written by get_offer, the only writer).
    served = {d.id for d in series.stream()}
    assert f"{today.isoformat()}|EUR|7.99|D" in served


def test_eur_and_jpy_events_convert_and_an_unknown_currency_is_refused_and_counted(clients, publisher, firestore_db):
    exp = launch(clients, **PROMO)
    eid = exp["experimentId"]
    admin = clients.admin()
    today = datetime.now(timezone.utc).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    assert admin.set_exchange_rates(yesterday, "EUR", {"USD": "1.0850", "JPY": 162.35})["rates"] == \
        {"JPY": "162.35", "USD": "1.085"}
    users = [u for u, a in ask_all(clients, [f"mc-{uuid.uuid4().hex[:10]}" for _ in range(40)], experiment_id=eid,
                                   region="FR").items() if a["arm"] in ("CONTROL", "TREATMENT")][:3]
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    sent = [(users[0], 9.99, "EUR"), (users[1], 1200, "JPY"), (users[2], 4.0, "XYZ")]
    for user, value, currency in sent:
        publisher("offer-metric-events", {"eventId": f"evt-{uuid.uuid4()}", "userId": user, "type": "purchase",
                                          "value": value, "currency": currency, "occurredAt": iso(now),
                                          "experimentId": eid})
    # Today has no rate of its own: yesterday's is the latest on or before it (within the configured days).
    t0 = poll(lambda: metrics_repo.find_totals(eid, users[0]), lambda t: t is not None)
    t1 = poll(lambda: metrics_repo.find_totals(eid, users[1]), lambda t: t is not None)
    t2 = poll(lambda: metrics_repo.find_totals(eid, users[2]), lambda t: t is not None)
    assert t0 and t1 and t2, "the metric events were not delivered"
    assert t0["amounts"]["purchase"] == pytest.approx(10.84)     # 9.99 × 1.0850 = 10.839150
    assert t1["amounts"]["purchase"] == pytest.approx(8.02)      # 1200 × 1.0850 / 162.35 = 8.0197…
    assert t2["amounts"]["purchase"] == 0 and t2["refused"] == {"unknown_currency": 1}
    monitor = clients.analyst().monitor_experiment(eid)
    assert monitor["refusedEvents"] == {"unknown_currency": 1, "no_rate": 0}


@pytest.mark.parametrize("call,path", [
    (lambda c, cid: c.experimenter().call("create_experiment", experiment_body(cid, regions={"allow": ["XX"]})),
     "regions.allow.0"),
    (lambda c, cid: c.experimenter().call("create_experiment", experiment_body(cid, regions={"allow": ["DE"], "deny": ["DE"]})),
     "regions"),
    (lambda c, cid: c.admin().set_exchange_rates("2026-03-09", "EUR", {"USD": 0}), "rates.USD"),
    (lambda c, cid: c.admin().set_exchange_rates("2026-03-09", "EUR", {"XYZ": 1.1}), "rates.XYZ"),
    (lambda c, cid: c.admin().set_exchange_rates("2026-03-09", "EURO", {"USD": 1.1}), "base"),
    (lambda c, cid: c.end_user("someone").get_offer_where(region="DEU"), "region"),
])
def test_bad_input_is_refused_with_its_path_and_writes_nothing(clients, firestore_db, call, path):
    cohort = frozen_cohort(clients, 10)
    before = {name: len(list(firestore_db.collection(name).limit(500).stream()))
              for name in (C.OFFER_EXPERIMENTS, C.EXCHANGE_RATES, C.EXPERIMENT_EXPOSURES, C.OFFER_REFUSALS)}
    with pytest.raises(InvalidArgument) as err:
        call(clients, cohort["cohortId"])
    assert path in [f["path"] for f in (err.value.details or {}).get("fields", [])]
    after = {name: len(list(firestore_db.collection(name).limit(500).stream())) for name in before}
    assert after == before

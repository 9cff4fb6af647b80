"""Money at ingestion (API.md §13, docs/regions.md §5) on the in-memory store: EUR and JPY events convert at
their date's rate (or the latest earlier one within the limit), an unknown currency or a missing rate is
refused and counted on the experiment (totals, shards, monitor, analysis), never summed; the analysis of a
multi-currency test equals one run on pre-converted amounts; purchases and refunds keep the customer
status get_offer's NEW_CUSTOMERS rule reads."""
import random
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from offerlab.domain.metrics import Metric
from offerlab.service import analytics, guardrails
from offerlab.service.metrics import Status
from offerlab.service.money import set_exchange_rates
from offerlab.store.analysis_source import _row
from tests.unit.fakes import InMemoryStore
from tests.unit.monitoring_fixtures import T0, event, experiment_doc, expose, ingest, put_experiment, stats_of
from tests.unit.test_lifecycle_use_cases import ADMIN
from tests.unit.test_program_use_cases import ANALYST

DAY = timedelta(days=1)


def at(day, hour=12):
    return datetime(2026, 3, day, hour, tzinfo=timezone.utc)


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setenv("OFFERLAB_REPORTING_CURRENCY", "USD")
    monkeypatch.setenv("OFFERLAB_RATE_MAX_AGE_DAYS", "3")
    s = InMemoryStore()
    put_experiment(s, experiment_doc())
    set_exchange_rates(s, ADMIN, "2026-03-09", "EUR", {"USD": "1.0850", "JPY": "162.35"})
    set_exchange_rates(s, ADMIN, "2026-03-10", "USD", {"EUR": "0.9210", "JPY": "149.80"})
    return s


def totals(store, user, experiment_id="exp-mon"):
    return store.docs("userMetricTotals")[f"{experiment_id}_{user}"]


def test_eur_and_jpy_events_convert_at_their_dates_rate_half_even(store):
    expose(store, "exp-mon", "u1", "TREATMENT")
    cases = [  # (currency, value, day) → USD
        ("EUR", 9.99, 9, Decimal("10.84")),        # 9.99 × 1.0850 = 10.839150 (the 9th's EUR base)
        ("EUR", "9.99", 10, Decimal("10.85")),     # 9.99 / 0.9210 = 10.8469… (the 10th's USD base)
        ("JPY", 1200, 9, Decimal("8.02")),         # 1200 × 1.0850 / 162.35 = 8.0197… (across the EUR base)
        ("JPY", 1200, 12, Decimal("8.01")),        # the 12th has none: the 10th's, 1200 / 149.80 = 8.0106…
        ("USD", 4.99, 8, Decimal("4.99")),         # the reporting currency needs no rate
        (None, 1.25, 8, Decimal("1.25")),          # no currency: the reporting one
    ]
    for currency, value, day, _ in cases:
        extra = {"currency": currency} if currency else {}
        outcome = ingest(store, event("u1", "purchase", value, at=at(day), **extra))
        assert outcome.status is Status.APPLIED
    t = totals(store, "u1")
    assert t["amounts"]["purchase"] == pytest.approx(float(sum(c[3] for c in cases)), abs=1e-9)
    assert t["currencies"]["EUR"]["purchase"] == {"count": 2, "amountMinor": 1998, "convertedMinor": 2169}
    assert t["currencies"]["JPY"]["purchase"] == {"count": 2, "amountMinor": 2400, "convertedMinor": 1603}
    assert t["currencies"]["USD"]["purchase"] == {"count": 2, "amountMinor": 624, "convertedMinor": 624}
    assert "refused" not in t


def test_an_unknown_currency_or_a_missing_rate_is_refused_counted_and_never_summed(store):
    expose(store, "exp-mon", "u1", "TREATMENT")
    expose(store, "exp-mon", "u2", "CONTROL")
    unknown = event("u1", "purchase", 100, at=at(9), currency="XYZ")
    too_old = event("u2", "renewal", 50, at=at(14), currency="EUR")   # the 10th is 4 days back: limit 3
    before_any = event("u2", "purchase", 50, at=at(5), currency="JPY")
    outcomes = [ingest(store, e) for e in (unknown, too_old, before_any)]
    assert [(o.status, o.reason) for o in outcomes] == [
        (Status.REFUSED, "unknown_currency: XYZ"), (Status.REFUSED, "no_rate: EUR"), (Status.REFUSED, "no_rate: JPY")]
    assert outcomes[0].experiments == ("exp-mon",)
    assert ingest(store, unknown).status is Status.DUPLICATE  # a redelivery counts nothing twice
    t1, t2 = totals(store, "u1"), totals(store, "u2")
    assert t1["refused"] == {"unknown_currency": 1} and t1["refusedCurrencies"] == {"XYZ": 1}
    assert t2["refused"] == {"no_rate": 2} and t2["refusedCurrencies"] == {"EUR": 1, "JPY": 1}
    assert t1["amounts"]["purchase"] == 0 and t1["counts"]["purchase"] == 0 and t2["counts"]["renewal"] == 0
    # Counted on the experiment: the shards, the monitor, the analysis.
    assert stats_of(store, experiment_doc()).refused == {"unknown_currency": 1, "no_rate": 2}
    monitor = guardrails.monitor_experiment(store, ANALYST, "exp-mon", now=T0 + DAY)
    assert monitor["refusedEvents"] == {"unknown_currency": 1, "no_rate": 2}
    assert monitor["health"] != "HEALTHY" and any("3 metric event(s) refused" in i for i in monitor["issues"])
    assert monitor["notEnrolled"] == {"region": 0, "audience": 0}
    store.rows["exp-mon"] = rows_of(store)
    analysis = analytics.analyze_experiment(store, ANALYST, "exp-mon", Metric.NET_LTV)
    breakdown = analysis.model_dump(by_alias=True)["currencyBreakdown"]
    assert breakdown["refusedEvents"] == {"unknown_currency": 1, "no_rate": 2}
    assert breakdown["refusedCurrencies"] == {"EUR": 1, "JPY": 1, "XYZ": 1} and breakdown["currencies"] == {}


def test_a_set_rate_is_used_by_the_events_that_arrive_after_it_and_never_rewritten(store):
    expose(store, "exp-mon", "u1", "TREATMENT")
    assert ingest(store, event("u1", "purchase", 10, at=at(20), currency="EUR")).status is Status.REFUSED
    set_exchange_rates(store, ADMIN, "2026-03-20", "EUR", {"USD": "1.1"})
    assert ingest(store, event("u1", "purchase", 10, at=at(20), currency="EUR")).status is Status.APPLIED
    t = totals(store, "u1")
    assert t["amounts"]["purchase"] == pytest.approx(11.0) and t["refused"] == {"no_rate": 1}


def rows_of(store, experiment_id="exp-mon"):
    exposed = {v["userId"]: v["arm"] for v in store.docs("experimentExposures").values()
               if v["experimentId"] == experiment_id}
    docs = {v["userId"]: v for v in store.docs("userMetricTotals").values() if v.get("experimentId") == experiment_id}
    return [_row(u, arm, docs.get(u)) for u, arm in sorted(exposed.items())]


def independent_usd(value, currency, day):
    """The conversion written out again (not the code under test): the test's own rate table."""
    table = {9: {"EUR": Decimal("1.0850"), "JPY": Decimal("1.0850") / Decimal("162.35")},
             10: {"EUR": 1 / Decimal("0.9210"), "JPY": 1 / Decimal("149.80")}}
    if currency == "USD":
        rate = Decimal(1)
    else:
        rate = table[max(d for d in table if d <= day)][currency]
    return (Decimal(str(value)) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def test_the_analysis_of_a_multi_currency_test_equals_one_on_pre_converted_amounts(monkeypatch):
    monkeypatch.setenv("OFFERLAB_REPORTING_CURRENCY", "USD")
    rng = random.Random(7)
    mixed, converted = InMemoryStore(), InMemoryStore()
    for s in (mixed, converted):
        put_experiment(s, experiment_doc())
        set_exchange_rates(s, ADMIN, "2026-03-09", "EUR", {"USD": "1.0850", "JPY": "162.35"})
        set_exchange_rates(s, ADMIN, "2026-03-10", "USD", {"EUR": "0.9210", "JPY": "149.80"})
    prices = {"USD": [9.99, 12.99], "EUR": [8.99, 11.99], "JPY": [1200, 1600]}
    events = []
    for i in range(400):
        user, arm = f"u{i:04d}", "TREATMENT" if i % 2 else "CONTROL"
        for s in (mixed, converted):
            expose(s, "exp-mon", user, arm)
        currency = rng.choice(["USD", "EUR", "JPY"])
        for n in range(rng.randint(0, 3)):
            kind = "purchase" if n == 0 else rng.choice(["renewal", "refund"])
            value = prices[currency][1 if arm == "TREATMENT" and rng.random() < 0.6 else 0]
            events.append((user, kind, value, currency, rng.choice([9, 10, 11])))
    for k, (user, kind, value, currency, day) in enumerate(events):
        base = {"eventId": f"m{k}", "userId": user, "type": kind, "occurredAt": at(day).isoformat().replace("+00:00", "Z"),
                "experimentId": "exp-mon"}
        assert ingest(mixed, {**base, "value": value, "currency": currency}).status is Status.APPLIED
        usd = independent_usd(value, currency, day)
        assert ingest(converted, {**base, "value": str(usd), "currency": "USD"}).status is Status.APPLIED
    results = []
    for s in (mixed, converted):
        s.rows["exp-mon"] = rows_of(s)
        results.append(analytics.analyze_experiment(s, ANALYST, "exp-mon", Metric.NET_LTV).model_dump(by_alias=True))
    a, b = results
    for key in ("rawPercentChange", "correctedPercentChange", "pValue", "srmPValue", "winsorizeCap"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
    assert a["confidenceInterval"] == pytest.approx(b["confidenceInterval"], rel=1e-9)
    assert a["sampleSizes"] == b["sampleSizes"] and a["dataQuality"] == b["dataQuality"]
    # Only the breakdown tells them apart: three currencies against one, the same converted total.
    ca, cb = a["currencyBreakdown"]["currencies"], b["currencyBreakdown"]["currencies"]
    assert set(ca) == {"USD", "EUR", "JPY"} and set(cb) == {"USD"}
    assert sum(Decimal(c["convertedAmount"]) for c in ca.values()) == Decimal(cb["USD"]["convertedAmount"])
    assert ca["JPY"]["amount"] == str(sum(v for u, k, v, c, d in events if c == "JPY"))


def test_purchases_and_endings_keep_the_customer_status_whatever_the_order(store):
    ingest(store, event("new", "trial_start", at=at(2), experiment_id=None))
    ingest(store, event("gone", "refund", 5, at=at(9), experiment_id=None, currency="EUR"))
    ingest(store, event("gone", "purchase", 5, at=at(3), experiment_id=None, currency="EUR"))  # earlier, later delivered
    ingest(store, event("test", "purchase", 5, at=at(3), experiment_id=None, sandbox=True))
    status = store.docs("customerStatus")
    assert set(status) == {"new", "gone"}  # a sandbox purchase says nothing about a real subscription
    first = store.eligibility.first_decision("x", "new", with_customer=True)
    assert first.customer_active is True and first.exposed is False
    assert store.eligibility.first_decision("x", "gone", with_customer=True).customer_active is False

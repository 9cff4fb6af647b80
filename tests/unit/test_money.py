"""Money (domain/money.py, service/money.py): exact amounts, half-even rounding to ISO 4217 minor units,
dated rates with the missing-date rule, and set_exchange_rates' refusals writing nothing."""
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from offerlab.api.callable import parse
from offerlab.api.money import SetExchangeRates
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import AlreadyExists, InvalidArgument, PermissionDenied
from offerlab.domain.iso import CURRENCY_MINOR_UNITS, minor_units
from offerlab.domain.money import DayRates, MoneyRefusal, convert, parse_amount, round_to_minor, to_minor_units
from offerlab.service.money import set_exchange_rates
from tests.unit.fakes import InMemoryStore
from tests.unit.test_lifecycle_use_cases import ADMIN, PM

D = date(2026, 3, 10)


def rates(day, base, **r):
    return {day: [DayRates.of(day, base, r)]}


def test_iso_4217_minor_units_of_the_usual_and_the_unusual_currencies():
    assert (minor_units("usd"), minor_units("EUR"), minor_units("JPY"), minor_units("KWD"), minor_units("CLF")) == (2, 2, 0, 3, 4)
    assert "XAU" not in CURRENCY_MINOR_UNITS and "XTS" not in CURRENCY_MINOR_UNITS


@pytest.mark.parametrize("value,text", [(12.34, "12.34"), (0.1, "0.1"), ("19.99", "19.99"), (1200, "1200"),
                                        (999999999.9999, "999999999.9999"), (1e-7, "1E-7")])
def test_amounts_are_recovered_exactly_from_json_numbers_and_strings(value, text):
    assert parse_amount(value) == Decimal(text)


@pytest.mark.parametrize("bad", [True, None, "abc", float("nan"), float("inf"), "NaN", [1]])
def test_what_is_not_an_amount_is_refused(bad):
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_rounding_is_half_to_even_at_the_minor_unit():
    assert [str(round_to_minor(Decimal(x), "USD")) for x in ("0.125", "0.135", "0.145", "2.675", "-0.125")] == \
        ["0.12", "0.14", "0.14", "2.68", "-0.12"]
    assert str(round_to_minor(Decimal("1234.5"), "JPY")) == "1234" and str(round_to_minor(Decimal("1235.5"), "JPY")) == "1236"
    assert to_minor_units(Decimal("12.345"), "KWD") == 12345 and to_minor_units(Decimal("19.99"), "EUR") == 1999


def test_conversion_with_a_direct_rate_either_way_and_across_a_common_base():
    eur_base = rates(D, "EUR", USD="1.0850", JPY="162.35")
    c = convert(Decimal("9.99"), "EUR", "USD", D, eur_base)
    assert c.ok and c.converted == Decimal("10.84") and c.rate == Decimal("1.0850") and c.rate_day == D  # 10.839150
    usd_base = rates(D, "USD", EUR="0.92")
    assert convert(Decimal("10"), "EUR", "USD", D, usd_base).converted == Decimal("10.87")  # 10 / 0.92 = 10.869…
    # JPY → USD across the EUR base: 1200 × 1.0850 / 162.35 = 8.01971… → 8.02
    j = convert(Decimal("1200"), "jpy", "USD", D, eur_base)
    assert j.converted == Decimal("8.02") and j.currency == "JPY" and j.original_minor == 1200 and j.converted_minor == 802
    # Into a zero-decimal reporting currency.
    assert convert(Decimal("9.99"), "EUR", "JPY", D, eur_base).converted == Decimal("1622")  # 1621.8765


def test_the_same_currency_needs_no_rate_and_a_missing_currency_is_the_reporting_one():
    assert convert(Decimal("4.995"), "USD", "USD", D, {}).converted == Decimal("5.00")
    assert convert(Decimal("4.985"), None, "USD", D, {}).converted == Decimal("4.98")


def test_a_missing_day_takes_the_latest_earlier_rate_within_the_limit_never_a_later_one():
    table = {**rates(D - timedelta(days=3), "EUR", USD="1.10"), **rates(D + timedelta(days=1), "EUR", USD="2.00")}
    c = convert(Decimal("10"), "EUR", "USD", D, table, max_age_days=7)
    assert c.converted == Decimal("11.00") and c.rate_day == D - timedelta(days=3)
    late = convert(Decimal("10"), "EUR", "USD", D, table, max_age_days=2)
    assert not late.ok and late.refusal is MoneyRefusal.NO_RATE and late.converted is None
    # A day's rates that cannot price the pair do not count as "a rate of that day".
    other = {D: [DayRates.of(D, "GBP", {"CHF": "1.1"})], **rates(D - timedelta(days=1), "EUR", USD="1.2")}
    assert convert(Decimal("1"), "EUR", "USD", D, other).rate_day == D - timedelta(days=1)


def test_an_unknown_currency_is_refused_without_looking_for_a_rate():
    for code in ("XYZ", "XAU", "EURO", ""):
        c = convert(Decimal("1"), code, "USD", D, rates(D, "EUR", USD="1.1"))
        assert c.refusal is MoneyRefusal.UNKNOWN_CURRENCY


# --- set_exchange_rates ---------------------------------------------------------------------------


@pytest.fixture
def store():
    return InMemoryStore()


def refused(store, exc, call):
    before = store.db.snapshot()
    with pytest.raises(exc) as err:
        call()
    assert store.db.snapshot() == before
    return err.value


TODAY = datetime.now(timezone.utc).date().isoformat()


def test_an_admin_sets_a_days_rates_once_and_a_repeat_is_idempotent(store):
    saved = set_exchange_rates(store, ADMIN, "2026-03-10", "eur", {"usd": 1.085, "JPY": "162.350"})
    assert (saved.base, saved.rates) == ("EUR", {"JPY": "162.35", "USD": "1.085"})
    assert store.docs("exchangeRates")["2026-03-10_EUR"]["setBy"] == "admin@company.com"
    again = set_exchange_rates(store, ADMIN, "2026-03-10", "EUR", {"JPY": 162.35, "USD": "1.0850"})
    assert again.set_at == saved.set_at  # the stored one, untouched
    err = refused(store, AlreadyExists, lambda: set_exchange_rates(store, ADMIN, "2026-03-10", "EUR", {"USD": 1.09}))
    assert "never change" in err.message
    set_exchange_rates(store, ADMIN, "2026-03-10", "USD", {"EUR": 0.92})  # another base the same day
    assert store.exchange_rates.on_days(["2026-03-10", "2026-03-09"])["2026-03-09"] == []


@pytest.mark.parametrize("base,rates_,path", [
    ("EUR", {"USD": 0}, "rates.USD"), ("EUR", {"USD": -1.2}, "rates.USD"), ("EUR", {"USD": "abc"}, "rates.USD"),
    ("EUR", {"XYZ": 1.1}, "rates.XYZ"), ("EURO", {"USD": 1.1}, "base"), ("EUR", {}, "rates"),
    ("EUR", {"EUR": 1}, "rates.EUR"), ("EUR", {"USD": 1.1, "usd": 1.1}, "rates.usd"),
])
def test_bad_rates_are_refused_with_their_path_and_nothing_is_written(store, base, rates_, path):
    err = refused(store, InvalidArgument, lambda: set_exchange_rates(store, ADMIN, "2026-03-10", base, rates_))
    assert path in [f["path"] for f in err.details["fields"]]


def test_only_an_admin_sets_rates_and_not_for_a_day_to_come(store):
    refused(store, PermissionDenied, lambda: set_exchange_rates(store, PM, "2026-03-10", "EUR", {"USD": 1.1}))
    analyst = Caller("a", "a@company.com", frozenset({Role.ANALYST}))
    refused(store, PermissionDenied, lambda: set_exchange_rates(store, analyst, "2026-03-10", "EUR", {"USD": 1.1}))
    later = (datetime.now(timezone.utc).date() + timedelta(days=3)).isoformat()
    err = refused(store, InvalidArgument, lambda: set_exchange_rates(store, ADMIN, later, "EUR", {"USD": 1.1}))
    assert err.details["fields"][0]["path"] == "date"
    set_exchange_rates(store, ADMIN, TODAY, "EUR", {"USD": 1.1})


@pytest.mark.parametrize("body,path", [
    ({"date": "2026-3-10", "base": "EUR", "rates": {"USD": 1}}, "date"),
    ({"date": "2026-02-30", "base": "EUR", "rates": {"USD": 1}}, "date"),
    ({"date": "2026-03-10", "base": "EUR", "rates": {"USD": True}}, "rates.USD"),
    ({"date": "2026-03-10", "base": "EUR", "rates": {"USD": None}}, "rates.USD"),
    ({"date": "2026-03-10", "base": "EUR"}, "rates"),
])
def test_the_request_model_refuses_malformed_bodies(body, path):
    with pytest.raises(InvalidArgument) as err:
        parse(SetExchangeRates, body)
    assert any(f["path"].startswith(path) for f in err.value.details["fields"])


def test_the_report_shows_each_currency_and_what_was_refused():
    from offerlab.service.report_html import currency_table

    html = currency_table({"currencyBreakdown": {
        "reportingCurrency": "USD", "currencies": {"EUR": {"events": 2, "amount": "19.98", "convertedAmount": "21.69"}},
        "refusedEvents": {"unknown_currency": 1, "no_rate": 0}, "refusedCurrencies": {"VEF": 1}}})
    assert "<td>EUR</td><td>2</td><td>19.98</td><td>USD 21.69</td>" in html
    assert "<td>refused: unknown_currency</td><td>1</td><td>VEF</td><td>not summed</td>" in html and "no_rate" not in html
    assert "none" in currency_table(None)

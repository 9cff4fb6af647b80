"""Money, pure: exact amounts, ISO 4217 minor units, dated exchange rates, conversion to the reporting currency.

**Exact amounts.** An amount is a ``Decimal``. A JSON number reaches Python as a float; ``Decimal(repr(x))``
recovers the decimal the producer wrote whenever it has at most 15 significant digits (``repr`` is the
shortest string that round-trips, Steele & White / Gay 1990, and every decimal of ≤ 15 digits survives
the trip through a binary64: IEEE 754-2019 §5.12.2), which covers every amount up to 10^9 with 4 decimals.
A producer that wants no doubt sends the amount as a decimal string ("12.34"); both are accepted.

**Rounding.** Results are rounded half-to-even (``ROUND_HALF_EVEN``, IEEE 754's default and the "banker's
rounding" of accounting: it does not bias sums upwards) to the reporting currency's minor unit (ISO 4217
"E" column, domain/iso.py: 2 for USD and EUR, 0 for JPY, 3 for KWD). Only the converted amount is rounded,
once; the rate and the cross rate are never rounded (``Decimal`` context precision 28).

**Rates.** ``set_exchange_rates {date, base, rates}`` stores, per day and base, ``1 base = rates[C] C``.
For an event in currency C converted into the reporting currency R on day d:

* C == R: no rate needed;
* the rates of the latest day d' ≤ d with d − d' ≤ ``max_age_days`` (configured, default 7: a weekend or a
  holiday without a fixing, as the ECB publishes no reference rate on TARGET closing days) that can price
  C in R: directly (base C, or base R) or across a common base B (``rates_B[R] / rates_B[C]``); the bases of
  one day are tried in code order, the direct ones first, so the answer is deterministic;
* no such day: the event is refused (``no_rate``), never summed, and counted on its experiments.
  A rate of a *later* day is never used: the amount would depend on when the event was processed.

An event whose currency is not an active ISO 4217 code is refused (``unknown_currency``) the same way.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any, Iterable, Mapping

from offerlab.domain.iso import minor_units, normalize_code, is_currency

DEFAULT_MAX_AGE_DAYS = 7
PRECISION = 28


class MoneyRefusal(str, enum.Enum):
    """Why an amount could not be converted (counted per reason on the experiments the event belongs to)."""

    UNKNOWN_CURRENCY = "unknown_currency"
    NO_RATE = "no_rate"


def parse_amount(value: Any) -> Decimal:
    """An exact, finite amount from a JSON number or a decimal string (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError("an amount is a number or a decimal string")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("an amount must be finite")
        text = repr(value)
    elif isinstance(value, (int, str, Decimal)):
        text = str(value).strip()
    else:
        raise ValueError("an amount is a number or a decimal string")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not amount.is_finite():
        raise ValueError("an amount must be finite")
    return amount


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def round_to_minor(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-to-even to ``currency``'s minor unit."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """The amount as an integer count of minor units (cents, yen), rounded half-to-even."""
    return int(round_to_minor(amount, currency).scaleb(minor_units(currency)))


@dataclass(frozen=True)
class DayRates:
    """One stored ``exchangeRates`` document: on ``day``, 1 ``base`` = ``rates[C]`` C."""

    day: date
    base: str
    rates: Mapping[str, Decimal]

    @classmethod
    def of(cls, day: date | str, base: str, rates: Mapping[str, Any]) -> "DayRates":
        when = date.fromisoformat(day) if isinstance(day, str) else day
        return cls(when, normalize_code(base), {normalize_code(c): parse_amount(r) for c, r in rates.items()})

    def units(self, currency: str) -> Decimal | None:
        """How many ``currency`` one base unit buys (1 for the base itself)."""
        return Decimal(1) if currency == self.base else self.rates.get(currency)


def _rate_in(docs: Iterable[DayRates], source: str, target: str) -> Decimal | None:
    """The rate source → target on one day's documents (module docstring: direct bases first)."""
    ordered = sorted(docs, key=lambda d: (d.base not in (source, target), d.base))
    for doc in ordered:
        src, tgt = doc.units(source), doc.units(target)
        if src is not None and tgt is not None and src > 0:
            with localcontext() as ctx:
                ctx.prec = PRECISION
                return tgt / src
    return None


@dataclass(frozen=True)
class Conversion:
    """An amount converted (or not: ``refusal``) into the reporting currency."""

    currency: str                      # the event's currency (upper case)
    amount: Decimal                    # as the producer gave it
    reporting_currency: str
    converted: Decimal | None = None   # rounded to the reporting currency's minor unit
    rate: Decimal | None = None        # units of the reporting currency per unit of ``currency``
    rate_day: date | None = None       # the day whose rates were used (None: same currency)
    refusal: MoneyRefusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @property
    def converted_minor(self) -> int:
        assert self.converted is not None
        return to_minor_units(self.converted, self.reporting_currency)

    @property
    def original_minor(self) -> int:
        """The original amount in its currency's minor units (half-to-even if given more precisely)."""
        return to_minor_units(self.amount, self.currency)


def rate_days(on: date, max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> list[date]:
    """The days whose rates may price an amount of day ``on``, latest first."""
    return [on - timedelta(days=i) for i in range(max_age_days + 1)]


def convert(amount: Decimal, currency: str | None, reporting: str, on: date,
            rates_by_day: Mapping[date, Iterable[DayRates]], max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> Conversion:
    """``amount`` of ``currency`` (None: the reporting currency) converted at day ``on``'s rate (module
    docstring); ``rates_by_day`` holds the stored rates of at least the days ``rate_days(on)``."""
    reporting = normalize_code(reporting)
    code = normalize_code(currency) if currency is not None else reporting
    if not is_currency(code):
        return Conversion(code, amount, reporting, refusal=MoneyRefusal.UNKNOWN_CURRENCY)
    if code == reporting:
        return Conversion(code, amount, reporting, round_to_minor(amount, reporting), Decimal(1))
    for day in rate_days(on, max_age_days):
        rate = _rate_in(rates_by_day.get(day, ()), code, reporting)
        if rate is not None:
            with localcontext() as ctx:
                ctx.prec = PRECISION
                converted = round_to_minor(amount * rate, reporting)
            return Conversion(code, amount, reporting, converted, rate, day)
    return Conversion(code, amount, reporting, refusal=MoneyRefusal.NO_RATE)


def check_rates(base: str, rates: Mapping[str, Any]) -> list[dict[str, str]]:
    """Field problems of a ``set_exchange_rates`` body (API.md §9 ``{path, message}``); empty when valid."""
    problems = []
    if not is_currency(base):
        problems.append({"path": "base", "message": "not an ISO 4217 currency code"})
    if not rates:
        problems.append({"path": "rates", "message": "at least one rate is required"})
    seen: set[str] = set()
    for code, value in rates.items():
        path = f"rates.{code}"
        if not is_currency(code):
            problems.append({"path": path, "message": "not an ISO 4217 currency code"})
            continue
        norm = normalize_code(code)
        if norm in seen:
            problems.append({"path": path, "message": f"{norm} is given twice"})
        seen.add(norm)
        if isinstance(base, str) and norm == normalize_code(base):
            problems.append({"path": path, "message": "the base's own rate is 1 by definition"})
            continue
        try:
            rate = parse_amount(value)
        except ValueError as err:
            problems.append({"path": path, "message": str(err)})
            continue
        if rate <= 0:
            problems.append({"path": path, "message": "a rate must be greater than 0"})
    return problems


class CurrencyBreakdown:
    """Per currency and arm: money events counted, their original and converted amounts (exact sums of the
    integer minor units the totals keep, ``currencies.{C}.{type}``), and the events refused by conversion
    (``refused.{reason}``, ``refusedCurrencies.{C}``). What analyses and reports show (docs/regions.md §5)."""

    def __init__(self, reporting: str) -> None:
        self.reporting = normalize_code(reporting)
        self._sums: dict[str, dict[str, list[int]]] = {}   # currency → arm → [events, original, converted]
        self._refused: dict[str, int] = dict.fromkeys((r.value for r in MoneyRefusal), 0)
        self._refused_currencies: dict[str, int] = {}

    def add(self, arm: str, currencies: Mapping[str, Any] | None, refused: Mapping[str, Any] | None,
            refused_currencies: Mapping[str, Any] | None = None) -> None:
        for code, by_type in (currencies or {}).items():
            if not isinstance(by_type, Mapping):
                continue
            acc = self._sums.setdefault(code, {}).setdefault(arm, [0, 0, 0])
            for parts in by_type.values():
                if isinstance(parts, Mapping):
                    acc[0] += int(parts.get("count", 0) or 0)
                    acc[1] += int(parts.get("amountMinor", 0) or 0)
                    acc[2] += int(parts.get("convertedMinor", 0) or 0)
        for reason, count in (refused or {}).items():
            if reason in self._refused:
                self._refused[reason] += int(count or 0)
        for code, count in (refused_currencies or {}).items():
            self._refused_currencies[code] = self._refused_currencies.get(code, 0) + int(count or 0)

    def _amount(self, minor: int, currency: str) -> str:
        units = minor_units(currency) if is_currency(currency) else 0
        return format(Decimal(minor).scaleb(-units), "f")

    def as_dict(self) -> dict[str, Any]:
        currencies = {}
        for code in sorted(self._sums):
            arms = self._sums[code]
            total = [sum(v[i] for v in arms.values()) for i in range(3)]
            currencies[code] = {
                "events": total[0], "amount": self._amount(total[1], code),
                "convertedAmount": self._amount(total[2], self.reporting),
                "byArm": {arm: {"events": v[0], "amount": self._amount(v[1], code),
                                "convertedAmount": self._amount(v[2], self.reporting)} for arm, v in sorted(arms.items())},
            }
        return {"reportingCurrency": self.reporting, "currencies": currencies,
                "refusedEvents": dict(self._refused), "refusedCurrencies": dict(sorted(self._refused_currencies.items()))}

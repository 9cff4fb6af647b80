"""Prices served and the reference price of a reduction (API.md §13), pure.

**The rule.** Directive 98/6/EC art. 6a (inserted by Directive (EU) 2019/2161, the "Omnibus" directive),
paragraphs 1–2: "Any announcement of a price reduction shall indicate the prior price applied by the trader
for a determined period of time prior to the application of the price reduction. The prior price means
the lowest price applied by the trader during a period of time not shorter than 30 days prior to the
application of the price reduction." The Commission's guidance on its interpretation (2021/C 526/02, §2)
adds that for a reduction that is prolonged or increased, the prior price stays the price before the
reductions: a reduced price is never itself a prior price.

**What offerlab computes.** For an answer whose config is shown as a reduction
(``offerConfig.displayAsDiscount``) in region R of placement P on UTC day D:

    referencePrice = min { amount : P served it in R, in the config's currency, on a day in [D − 30, D − 1],
                                    NOT shown as a reduction }

* *served*: the price history is what get_offer served (every arm, the status quo included), recorded
  once per (placement, region, day, currency, amount, shown-as-reduction) — get_offer is the only way an
  offer reaches a user, so it is the only source of "prices applied";
* the 30 whole days before the day of the answer (a rolling window: a reduction announced today needs the
  lowest price of the 30 days before today); prices of other experiments' arms count too (the lowest price
  applied to anyone, the conservative reading);
* none served in the window (a new placement or region, or a "reduction" shown for 30 days to everyone):
  no reference price, and the answer says the offer may not be shown as a reduction (``discountAllowed``
  false); nor may it when the reference is not above the reduced price.

**Prices in a config.** ``price`` (a number or a decimal string) and ``currency`` (ISO 4217), optionally
``regionalPrices {CC: {price, currency}}`` for regions priced differently.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterable, Mapping

from offerlab.domain.iso import is_currency, normalize_code
from offerlab.domain.money import parse_amount

WINDOW_DAYS = 30
# The reference-price rules an offer may name in ``referencePriceRule`` (the one applied when it names none).
OMNIBUS_RULE = "EU_OMNIBUS_30D"
RULES = frozenset({OMNIBUS_RULE})


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str | None

    def key(self) -> str:
        """The price's part of a history document id: ``{currency or -}|{amount}``."""
        return f"{self.currency or '-'}|{format(self.amount.normalize(), 'f')}"


def _price(amount: Any, currency: Any) -> Price | None:
    try:
        value = parse_amount(amount)
    except ValueError:
        return None
    if value < 0:
        return None
    code = normalize_code(currency) if isinstance(currency, str) and is_currency(currency) else None
    return Price(value, code)


def served_price(config: Mapping[str, Any] | None, region: str | None) -> Price | None:
    """The price ``config`` shows in ``region`` (module docstring), or None when it names none."""
    if not isinstance(config, Mapping):
        return None
    regional = config.get("regionalPrices")
    if region and isinstance(regional, Mapping):
        entry = regional.get(normalize_code(region))
        if isinstance(entry, Mapping) and "price" in entry:
            return _price(entry.get("price"), entry.get("currency", config.get("currency")))
    if "price" not in config:
        return None
    return _price(config.get("price"), config.get("currency"))


def shown_as_discount(config: Mapping[str, Any] | None) -> bool:
    return isinstance(config, Mapping) and config.get("displayAsDiscount") is True


def window(day: date) -> tuple[date, date]:
    """The first and last day of the reference window of an answer on ``day``: the 30 days before it."""
    return day - timedelta(days=WINDOW_DAYS), day - timedelta(days=1)


@dataclass(frozen=True)
class Served:
    """One price-history entry (a PriceServed document, as the rule needs it)."""

    day: date
    currency: str | None
    amount: Decimal
    discount: bool


def reference_price(history: Iterable[Served], day: date, currency: str | None) -> Decimal | None:
    """The lowest price in ``currency`` served not as a reduction in the window of ``day`` (None: none)."""
    first, last = window(day)
    amounts = [h.amount for h in history
               if first <= h.day <= last and not h.discount and h.currency == currency]
    return min(amounts) if amounts else None


@dataclass(frozen=True)
class ReferenceAnswer:
    reference: Decimal | None
    discount_allowed: bool


def judge(reduced: Price, history: Iterable[Served], day: date) -> ReferenceAnswer:
    """The reference price of ``reduced`` shown on ``day``, and whether it may be shown as a reduction."""
    ref = reference_price(history, day, reduced.currency)
    return ReferenceAnswer(ref, ref is not None and ref > reduced.amount)

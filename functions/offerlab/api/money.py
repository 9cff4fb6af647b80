"""Request model of set_exchange_rates (API.md §13): the field checks that need the ISO tables (codes,
rates > 0) are the use case's (domain/money.py check_rates), so every bad entry is named by its path."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Union

from pydantic import AfterValidator, Field, StrictFloat, StrictInt, StringConstraints

from offerlab.api.models import ApiModel


def _day(value: str) -> str:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date, YYYY-MM-DD") from None
    if parsed.isoformat() != value:
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


Day = Annotated[str, StringConstraints(min_length=10, max_length=10), AfterValidator(_day)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=8)]
RateValue = Union[StrictInt, StrictFloat, Annotated[str, StringConstraints(min_length=1, max_length=40)]]


class SetExchangeRates(ApiModel):
    date: Day
    base: Code
    rates: dict[Code, RateValue] = Field(max_length=200)

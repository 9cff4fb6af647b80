"""set_exchange_rates (API.md §13): dated rates, set by an admin, created once and never changed.

Why never changed: metric ingestion converts each event at its date's rate when it arrives
(domain/money.py); a rate edited afterwards would leave the sums computed with the old one, and an
analysis could no longer be reproduced from the rates on record. A correction is a rate for a later
date. Setting exactly the same rates again is idempotent (a retried call); different rates for a date and
base already set are refused (ALREADY_EXISTS), nothing written. The created document is the ledger's
event (chain ``exchange-rates``, ledger trigger on its creation).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Mapping

from offerlab.domain.actors import Caller, Role
from offerlab.domain.clock import utcnow
from offerlab.domain.errors import AlreadyExists, InvalidArgument, PermissionDenied
from offerlab.domain.iso import normalize_code
from offerlab.domain.money import check_rates, parse_amount
from offerlab.service.ports import Store, UnitOfWork
from offerlab.store.documents import ExchangeRates


def _normal(value: Any) -> str:
    return format(parse_amount(value).normalize(), "f")


def set_exchange_rates(store: Store, caller: Caller, day: str, base: str, rates: Mapping[str, Any]) -> ExchangeRates:
    if not caller.has(Role.ADMIN):
        raise PermissionDenied("Only an admin may set exchange rates.")
    problems = check_rates(base, rates)
    if date.fromisoformat(day) > utcnow().date() + timedelta(days=1):
        problems.append({"path": "date", "message": "rates cannot be set for a day that has not begun"})
    if problems:
        raise InvalidArgument("The request is invalid.", {"fields": problems[:50]})
    code = normalize_code(base)
    wanted = ExchangeRates(date=day, base=code, rates={normalize_code(c): _normal(v) for c, v in sorted(rates.items())},
                           set_by=caller.actor, set_at=utcnow())

    def body(uow: UnitOfWork) -> ExchangeRates:
        existing = uow.exchange_rates.get(day, code)
        if existing is not None:
            if existing.rates == wanted.rates:
                return existing  # the same rates again: a retried call
            raise AlreadyExists(f"Rates for {day} against {code} are set already; they never change.",
                                {"date": day, "base": code})
        uow.exchange_rates.create(wanted)
        return wanted

    return store.transaction(body)

"""Money (API.md §13): dated exchange rates, set by an admin (service/money.py)."""
from __future__ import annotations

__all__ = ["set_exchange_rates"]

from firebase_functions import https_fn

from offerlab.api.callable import handle
from offerlab.api.money import SetExchangeRates
from offerlab.domain.actors import Role
from offerlab.service import money as svc
from offerlab.store.firestore_store import firestore_store as store


@https_fn.on_call()
def set_exchange_rates(req: https_fn.CallableRequest) -> dict:
    """``{date, base, rates{}}`` → the stored rates ``{date, base, rates, setBy, setAt}``."""
    return handle(req, SetExchangeRates, lambda c, p: svc.set_exchange_rates(store(), c, p.date, p.base, p.rates),
                  roles=[Role.ADMIN])

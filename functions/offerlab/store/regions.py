"""Repositories of the region, audience, price and money rules (docs/regions.md):

* ``offerRefusals/{experimentId}_{userId}``: users kept out before enrolment, created once;
* ``customerStatus/{userId}``: the subscription state from ingested history, blind ``Maximum`` merges;
* ``priceSeries/{placement}|{region}/served/{day}|{currency}|{amount}|{R|D}``: the price history, created
  once per day and price (a sub-collection per series, so the window query is a single-field range that
  needs no composite index);
* ``exchangeRates/{date}_{base}``: dated rates, created once.

get_offer's reads here happen once per (instance, user, experiment) at most (an LRU remembers decisions),
and the reference-price window once per (instance, series, day) (cached ``HISTORY_TTL_SECONDS``).
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Any, Hashable

from offerlab.domain.eligibility import FirstDecision, active_from_history
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import CustomerStatus, ExchangeRates, OfferRefusal, PriceServed

HISTORY_TTL_SECONDS = float(os.environ.get("OFFERLAB_PRICE_HISTORY_TTL", "300"))
RATES_MISSING_TTL_SECONDS = 60.0


class Lru:
    """A bounded, thread-safe LRU of small values."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


decisions = Lru()        # (experimentId, userId) → FirstDecision
served_created = Lru()   # price-history document path → True
_history: dict[tuple[str, str, str, str], tuple[float, list[PriceServed]]] = {}
_rates: dict[str, tuple[float, list[ExchangeRates]]] = {}


def clear() -> None:
    decisions.clear()
    served_created.clear()
    _history.clear()
    _rates.clear()


def _create(ref: Any, data: dict[str, Any]) -> bool:
    from google.api_core.exceptions import AlreadyExists, Conflict  # noqa: PLC0415 - lazy (cold start)

    try:
        ref.create(data)
        return True
    except (AlreadyExists, Conflict):
        return False


# --- refusals and the first decision ------------------------------------------------------------------

def refusal_ref(experiment_id: str, user_id: str):
    return db().collection(C.OFFER_REFUSALS).document(f"{experiment_id}_{user_id}")


def customer_ref(user_id: str):
    return db().collection(C.CUSTOMER_STATUS).document(user_id)


def first_decision(experiment_id: str, user_id: str, with_customer: bool) -> FirstDecision:
    """The exposure, the refusal and (``with_customer``) the customer status of a user: one round trip."""
    exposure = db().collection(C.EXPERIMENT_EXPOSURES).document(f"{experiment_id}_{user_id}")
    # An empty user id (get_offer accepts one, API.md §2's vectors include it) has no history: ingestion
    # requires a non-empty id, and "customerStatus/" is no document.
    with_customer = with_customer and bool(user_id)
    refs = [exposure, refusal_ref(experiment_id, user_id)] + ([customer_ref(user_id)] if with_customer else [])
    snaps = {s.reference.path: s for s in db().get_all(refs)}
    refused = snaps[refs[1].path]
    active = False if not user_id else None
    if with_customer:
        snap = snaps[refs[2].path]
        data = snap.to_dict() if snap.exists else {}
        active = active_from_history(data.get("lastActivationMicros"), data.get("lastDeactivationMicros"))
    return FirstDecision(exposed=snaps[exposure.path].exists,
                         refusal=(refused.to_dict() or {}).get("reason") if refused.exists else None,
                         customer_active=active)


def record_refusal(refusal: OfferRefusal) -> bool:
    return _create(refusal_ref(refusal.experiment_id, refusal.user_id), refusal.to_firestore())


def count_refusals(experiment_id: str) -> dict[str, int]:
    """Refusals per reason: ``count()`` aggregations (no document is read, none is a counter)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    base = db().collection(C.OFFER_REFUSALS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    out = {}
    for reason in ("region", "audience"):
        result = base.where(filter=FieldFilter("reason", "==", reason)).count().get()
        out[reason] = int(result[0][0].value)
    return out


def record_customer_events(user_id: str, activation_micros: int | None, deactivation_micros: int | None) -> None:
    """Merge the event times blind: ``Maximum`` transforms commute, so any order and any duplicate agree."""
    from google.cloud.firestore_v1.transforms import Maximum  # noqa: PLC0415

    doc: dict[str, Any] = {"userId": user_id}
    if activation_micros is not None:
        doc["lastActivationMicros"] = Maximum(activation_micros)
    if deactivation_micros is not None:
        doc["lastDeactivationMicros"] = Maximum(deactivation_micros)
    customer_ref(user_id).set(doc, merge=True)


def find_customer(user_id: str) -> CustomerStatus | None:
    if not user_id:
        return None
    snap = customer_ref(user_id).get()
    return CustomerStatus.from_firestore(snap.to_dict()) if snap.exists else None


# --- the price history ----------------------------------------------------------------------------------

def series_id(placement: str, region: str) -> str:
    return f"{placement}|{region}"


def served_id(served: PriceServed) -> str:
    return f"{served.day}|{served.currency or '-'}|{served.amount}|{'D' if served.discount else 'R'}"


def _served_ref(served: PriceServed):
    return (db().collection(C.PRICE_SERIES).document(series_id(served.placement, served.region))
            .collection(C.PRICES_SERVED).document(served_id(served)))


def record_served(served: PriceServed) -> bool:
    """Create the day's entry unless this instance created (or found) it already: no write per call."""
    ref = _served_ref(served)
    if served_created.get(ref.path):
        return False
    created = _create(ref, served.to_firestore())
    served_created.put(ref.path, True)
    return created


def served_between(placement: str, region: str, first_day: str, last_day: str) -> list[PriceServed]:
    """The series' entries of the days ``first_day``..``last_day`` (inclusive), at most ``HISTORY_TTL_SECONDS``
    old: a range on ``day`` in the series' own sub-collection (a single-field index Firestore keeps itself)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    key = (placement, region, first_day, last_day)
    cached = _history.get(key)
    if cached is not None and time.monotonic() - cached[0] < HISTORY_TTL_SECONDS:
        return cached[1]
    query = (db().collection(C.PRICE_SERIES).document(series_id(placement, region)).collection(C.PRICES_SERVED)
             .where(filter=FieldFilter("day", ">=", first_day)).where(filter=FieldFilter("day", "<=", last_day))
             .limit(1000))
    found = [PriceServed.from_firestore(s.to_dict()) for s in query.stream()]
    if len(_history) > 10_000:
        _history.clear()
    _history[key] = (time.monotonic(), found)
    return found


# --- exchange rates --------------------------------------------------------------------------------------

def rates_ref(day: str, base: str):
    return db().collection(C.EXCHANGE_RATES).document(f"{day}_{base}")


def get_rates(day: str, base: str, transaction: Any = None) -> ExchangeRates | None:
    snap = rates_ref(day, base).get(transaction=transaction)
    return ExchangeRates.from_firestore(snap.to_dict()) if snap.exists else None


def rates_on(days: list[str]) -> dict[str, list[ExchangeRates]]:
    """Every base's rates of each of ``days``: the days not cached are read in ONE range query on ``date``
    (a single-field index). A day with rates never changes (documents are created once), so it is kept; a
    day without is asked again after ``RATES_MISSING_TTL_SECONDS`` (an admin may set it meanwhile)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    now = time.monotonic()
    missing = [d for d in days if d not in _rates or (not _rates[d][1] and now - _rates[d][0] >= RATES_MISSING_TTL_SECONDS)]
    if missing:
        query = (db().collection(C.EXCHANGE_RATES).where(filter=FieldFilter("date", ">=", min(missing)))
                 .where(filter=FieldFilter("date", "<=", max(missing))).limit(2000))
        found: dict[str, list[ExchangeRates]] = {d: [] for d in missing}
        for snap in query.stream():
            doc = ExchangeRates.from_firestore(snap.to_dict())
            if doc.date in found:
                found[doc.date].append(doc)
        if len(_rates) > 5_000:
            _rates.clear()
        for day, docs in found.items():
            _rates[day] = (now, docs)
    return {d: _rates[d][1] for d in days}

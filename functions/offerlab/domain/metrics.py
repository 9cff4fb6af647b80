"""Metric events (API.md §5) and per-user totals (API.md §7): validation and the totals rules, pure.

A totals document holds, per (experiment, user), counts and amount sums per event type from the user's
first exposure on; the metrics of §7 are functions of those sums, so the analytics engineer derives
``net_ltv`` etc. from one document per user (``metric_value``). Amounts are in the reporting currency:
ingestion converts each money event at its date's rate (domain/money.py) and hands the converted amount
to ``event_delta``; the per-currency breakdown (``currencies.{C}.{type}``: count, original and converted
amounts in integer minor units, exact under ``Increment``) is kept beside the sums, and an event that
could not be converted adds only to ``refused.{reason}`` (``refused_delta``): it is never summed.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

from offerlab.domain.ids import ID_PATTERN, MAX_ID
from offerlab.domain.clock import parse_rfc3339
from offerlab.domain.money import Conversion

# Ids as the callables take them (domain/ids.py), surrounding whitespace stripped first.
_ID = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
_LABEL = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


class MetricEventType(str, enum.Enum):
    PURCHASE = "purchase"
    RENEWAL = "renewal"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    TRIAL_START = "trial_start"
    TRIAL_CONVERSION = "trial_conversion"
    CANCELLATION = "cancellation"
    PAYWALL_VIEW = "paywall_view"


class Metric(str, enum.Enum):
    """The metrics of API.md §7 (KPIs and guardrails must name one of these)."""

    NET_LTV = "net_ltv"
    ARPU = "arpu"
    CONVERSION_RATE = "conversion_rate"
    TRIAL_CONVERSION_RATE = "trial_conversion_rate"
    CHURN_RATE = "churn_rate"
    REFUND_RATE = "refund_rate"


class MetricKind(str, enum.Enum):
    MEAN = "mean"              # mean per user of a per-user value
    PROPORTION = "proportion"  # share of users with a 0/1 value
    RATIO = "ratio"            # Σ numerator / Σ denominator over users (delta method for its variance)


METRIC_KINDS = {
    Metric.NET_LTV: MetricKind.MEAN, Metric.ARPU: MetricKind.MEAN, Metric.CONVERSION_RATE: MetricKind.PROPORTION,
    Metric.TRIAL_CONVERSION_RATE: MetricKind.RATIO, Metric.CHURN_RATE: MetricKind.PROPORTION,
    Metric.REFUND_RATE: MetricKind.RATIO,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

MONEY_TYPES = frozenset({MetricEventType.PURCHASE, MetricEventType.RENEWAL, MetricEventType.REFUND,
                         MetricEventType.CHARGEBACK})


class MetricEvent(BaseModel):
    """One message of ``offer-metric-events``. Unknown extra fields are ignored (producers may add some)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              frozen=True, allow_inf_nan=False)

    event_id: _ID
    user_id: _ID
    type: MetricEventType
    # Amounts are non-negative: a refund is a positive amount of type "refund", never a negative purchase.
    value: float | None = Field(default=None, ge=0, le=1e9)  # a decimal string is accepted too (exactness)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None
    occurred_at: datetime
    experiment_id: _ID | None = None
    region: _LABEL | None = None
    platform: _LABEL | None = None
    sandbox: bool = False

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("occurredAt must be an RFC 3339 string")
        return parse_rfc3339(value)  # raises ValueError on anything unparseable or without a zone


def parse_metric_event(data: Any) -> MetricEvent:
    """The validated event; raises ``ValueError`` (pydantic's ValidationError) with the reason otherwise."""
    if not isinstance(data, dict):
        raise ValueError("the message is not a JSON object")
    event = MetricEvent.model_validate(data)
    if event.type in MONEY_TYPES and event.value is None:
        raise ValueError(f"a {event.type.value} event needs a value (its amount)")
    return event


def empty_totals() -> dict[str, Any]:
    return {"counts": {t.value: 0 for t in MetricEventType}, "amounts": {t.value: 0.0 for t in MONEY_TYPES},
            "sandboxEvents": 0, "preExposure": {"purchaseCount": 0, "purchaseAmount": 0.0, "events": 0}}


def normalized_totals(totals: Mapping[str, Any]) -> dict[str, Any]:
    """``totals`` with every count, amount and covariate present (0 when never written): a document built
    by blind merges holds only the fields its events touched."""
    base = empty_totals()
    out = {**base, **totals}
    for name in ("counts", "amounts", "preExposure"):
        out[name] = {**base[name], **(totals.get(name) or {})}
    return out


def counts_toward_experiment(event: MetricEvent, first_exposed_at: datetime) -> bool:
    """API.md §7: metrics run over the experiment window from first exposure (inclusive)."""
    return event.occurred_at >= first_exposed_at


@dataclass(frozen=True)
class TotalsDelta:
    """What one event adds to a user's totals, as operations that commute.

    Deliveries of one user's events arrive concurrently and in any order. A read-modify-write of the
    totals document makes them fight over it (the Firestore emulator locks documents pessimistically
    and aborts waiters on lock timeout: ../shared/notes/emulators.md), so ingestion writes the delta
    blind instead: ``increments`` become Firestore ``Increment`` transforms, ``maximums`` ``Maximum``
    transforms and ``labels`` plain field sets (the last *delivered* label wins, as before). Field
    names are dotted paths into the totals document.
    """

    increments: dict[str, int | float]
    maximums: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)


def epoch_micros(at: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact; ``Maximum`` needs a number)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


def last_event_at(totals: Mapping[str, Any]) -> datetime | None:
    """When the user's latest counted event occurred: ``lastEventMicros`` (written by ingestion) or a
    ``lastEventAt`` timestamp (documents seeded directly, e.g. by the demo)."""
    micros = totals.get("lastEventMicros")
    return from_epoch_micros(micros) if micros is not None else totals.get("lastEventAt")


def event_delta(event: MetricEvent, first_exposed_at: datetime, money: Conversion | None = None) -> TotalsDelta:
    """What ``event`` adds to the totals of a user first exposed at ``first_exposed_at``. Events before
    first exposure only feed the CUPED covariate ``preExposure`` (Deng et al. 2013, "Improving the
    sensitivity of online controlled experiments by utilizing pre-experiment data"): purchases before
    exposure are independent of the arm.

    ``money``: the event's amount converted into the reporting currency (domain/money.py); without it the
    value is taken as already in the reporting currency (documents and tests that predate currencies)."""
    amount = float(money.converted) if money is not None and money.converted is not None else float(event.value or 0.0)
    if not counts_toward_experiment(event, first_exposed_at):
        inc: dict[str, int | float] = {"preExposure.events": 1}
        if event.type is MetricEventType.PURCHASE:
            inc["preExposure.purchaseCount"] = 1
            inc["preExposure.purchaseAmount"] = amount
        return TotalsDelta(inc)
    inc = {f"counts.{event.type.value}": 1}
    if event.type in MONEY_TYPES:
        inc[f"amounts.{event.type.value}"] = amount
        if money is not None and money.converted is not None:
            slot = f"currencies.{money.currency}.{event.type.value}"
            inc[f"{slot}.count"] = 1
            inc[f"{slot}.amountMinor"] = money.original_minor
            inc[f"{slot}.convertedMinor"] = money.converted_minor
    labels: dict[str, Any] = {}
    if event.sandbox:
        inc["sandboxEvents"] = 1
        labels["sandbox"] = True
    if event.region:
        labels["lastRegion"] = event.region
    if event.platform:
        labels["lastPlatform"] = event.platform
    if event.currency:
        labels["lastCurrency"] = event.currency.upper()
    return TotalsDelta(inc, {"lastEventMicros": epoch_micros(event.occurred_at)}, labels)


def refused_delta(money: Conversion) -> TotalsDelta:
    """What an event whose amount could not be converted adds: a count of its refusal, by reason and by
    currency code (as the producer sent it, upper case: the event model lets only three letters through)."""
    assert money.refusal is not None
    return TotalsDelta({f"refused.{money.refusal.value}": 1, f"refusedCurrencies.{money.currency}": 1})


def apply_delta(totals: Mapping[str, Any], delta: TotalsDelta) -> dict[str, Any]:
    """The totals after ``delta`` (a new dict): what Firestore computes from the blind write, in Python."""
    out = normalized_totals(totals)

    def slot(path: str) -> tuple[dict[str, Any], str]:
        *parents, leaf = path.split(".")
        node = out
        for name in parents:
            # A copy of every map on the way: ``totals`` (the state the change is planned from) stays intact.
            child = node.get(name)
            node[name] = dict(child) if isinstance(child, Mapping) else {}
            node = node[name]
        return node, leaf

    for path, amount in delta.increments.items():
        node, leaf = slot(path)
        node[leaf] = node.get(leaf, 0) + amount
    for path, value in delta.maximums.items():
        node, leaf = slot(path)
        node[leaf] = value if node.get(leaf) is None else max(node[leaf], value)
    for path, value in delta.labels.items():
        node, leaf = slot(path)
        node[leaf] = value
    return out


def apply_event(totals: Mapping[str, Any], event: MetricEvent, first_exposed_at: datetime) -> dict[str, Any]:
    """The totals after ``event`` (a new dict)."""
    return apply_delta(totals, event_delta(event, first_exposed_at))


_ZERO_COUNTS = {t.value: 0 for t in MetricEventType}
_ZERO_AMOUNTS = {t.value: 0.0 for t in MONEY_TYPES}  # per-user values are read millions of times by analyses


def metric_value(totals: dict[str, Any], metric: Metric) -> tuple[float, float]:
    """One user's contribution to ``metric`` as (numerator, denominator), per API.md §7.

    MEAN and PROPORTION metrics have denominator 1 (one user); RATIO metrics sum both over users.
    """
    counts = {**_ZERO_COUNTS, **(totals.get("counts") or {})}
    amounts = {**_ZERO_AMOUNTS, **(totals.get("amounts") or {})}
    if metric is Metric.NET_LTV:
        return amounts["purchase"] + amounts["renewal"] - amounts["refund"] - amounts["chargeback"], 1.0
    if metric is Metric.ARPU:
        return amounts["purchase"] + amounts["renewal"], 1.0
    if metric is Metric.CONVERSION_RATE:
        return (1.0 if counts["purchase"] >= 1 else 0.0), 1.0
    if metric is Metric.TRIAL_CONVERSION_RATE:
        return float(counts["trial_conversion"]), float(counts["trial_start"])
    if metric is Metric.CHURN_RATE:
        return (1.0 if counts["cancellation"] >= 1 else 0.0), 1.0
    if metric is Metric.REFUND_RATE:
        return float(counts["refund"] + counts["chargeback"]), float(counts["purchase"])
    raise ValueError(f"unknown metric {metric}")


"""Metric ingestion (API.md §5, §7) and fraud signals: event handlers, exactly once in effect.

``ingest_metric_event``: validate (domain/metrics.py); read the user's exposure(s) (written once, never
changed); then, in ONE atomic batch with the creation of the ``("metric", eventId)`` marker, write the
event's delta into ``userMetricTotals/{experimentId}_{userId}`` of each experiment the event belongs to and
the change of the user's terms into the experiment's streamed per-arm sums (experimentAggregates): a
compare-and-swap on the user's totals, no lock held, so concurrent events of one user retry rather than
deadlock and events of different users never meet (store/aggregates.py; the exactness argument is in
domain/aggregates.py). Only events at or after the user's first exposure count (earlier ones feed the CUPED
covariate ``preExposure``); a user never exposed gets no totals. A redelivery's marker creation fails and
nothing is written.

``record_fraud_signal``: a user whose highest score reaches the fraud threshold is moved out of the kept
sums of every experiment they were exposed to, on every delivery (idempotent), so a signal arriving before,
between or after their events excludes them exactly once.

Money (docs/regions.md §5): a purchase, renewal, refund or chargeback is converted into the reporting
currency at its date's rate (``convert_event``) before its delta is built; one that cannot be (an unknown
currency, no usable rate) is REFUSED: its marker is written like any event's (so it is not retried
forever), and it adds only ``refused.{reason}`` to the totals of the experiments it belongs to.
Every activating or ending event also updates the user's customerStatus (``record_customer_state``): what
get_offer's NEW_CUSTOMERS rule reads, whether or not the user was ever exposed.

Handlers never raise for bad data: they return an ``Outcome`` the entry point logs (ack, no retry).
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from offerlab import config
from offerlab.domain import metrics as rules
from offerlab.domain.eligibility import ACTIVATING_EVENTS, DEACTIVATING_EVENTS
from offerlab.domain.iso import is_currency
from offerlab.domain.money import Conversion, DayRates, convert, parse_amount, rate_days
from offerlab.domain.aggregates import UserChange
from offerlab.domain.clock import parse_rfc3339, utcnow
from offerlab.domain.errors import NotFound
from offerlab.domain.ids import DocumentId
from offerlab.domain.program import is_program_scope, program_id
from offerlab.service.aggregation import exclude_user, spec_for
from offerlab.service.analytics import settings_from_env
from offerlab.service.ports import Store, UnitOfWork
from offerlab.store.documents import FraudScore

log = logging.getLogger("offerlab.metrics")


class Status(str, enum.Enum):
    APPLIED = "APPLIED"            # counted now
    REFUSED = "REFUSED"            # a money event that could not be converted: counted as refused, not summed
    DUPLICATE = "DUPLICATE"        # already processed: no effect
    NOT_EXPOSED = "NOT_EXPOSED"    # the user was never exposed (to the named experiment): no totals
    REJECTED = "REJECTED"          # malformed: logged, acknowledged, never retried


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str = ""
    experiments: tuple[str, ...] = ()


def _reason(err: Exception) -> str:
    """A short reason for the log, without echoing the (untrusted, possibly large) input."""
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}"
                         for e in err.errors(include_url=False, include_input=False))[:1000]
    return str(err)[:1000]


def convert_event(store: Store, event: rules.MetricEvent, raw_value: Any) -> Conversion | None:
    """A money event's amount in the reporting currency at its date's rate (domain/money.py), or None for an
    event that carries no money. ``raw_value``: the message's ``value`` as sent (a JSON number or a decimal
    string), so the amount is the producer's decimal, not a binary float's."""
    if event.type not in rules.MONEY_TYPES:
        return None
    amount = parse_amount(raw_value if isinstance(raw_value, (int, float, str)) and not isinstance(raw_value, bool)
                          else event.value)
    reporting = config.reporting_currency()
    day = event.occurred_at.date()
    max_age = config.rate_max_age_days()
    needs_rate = event.currency is not None and is_currency(event.currency) and event.currency.upper() != reporting
    table: dict[Any, list[DayRates]] = {}
    if needs_rate:
        days = rate_days(day, max_age)
        stored = store.exchange_rates.on_days([d.isoformat() for d in days])
        table = {d: [DayRates.of(r.date, r.base, r.rates) for r in stored.get(d.isoformat(), [])] for d in days}
    return convert(amount, event.currency, reporting, day, table, max_age)


def record_customer_state(store: Store, event: rules.MetricEvent) -> None:
    """Keep the user's subscription state (customerStatus) from their events: blind maxima, so any order and
    any duplicate agree; sandbox (test-store) events say nothing about a real subscription."""
    if event.sandbox:
        return
    at = rules.epoch_micros(event.occurred_at)
    if event.type.value in ACTIVATING_EVENTS:
        store.customers.record_events(event.user_id, at, None)
    elif event.type.value in DEACTIVATING_EVENTS:
        store.customers.record_events(event.user_id, None, at)


def ingest_metric_event(store: Store, data: Any) -> Outcome:
    try:
        event = rules.parse_metric_event(data)
        money = convert_event(store, event, data.get("value"))
    except (ValueError, TypeError) as err:
        return Outcome(Status.REJECTED, _reason(err))
    record_customer_state(store, event)
    exposures = _exposures_of(store, event)
    touched = [e.experiment_id for e in exposures]
    now = utcnow()
    changes = [UserChange(
        experiment_id=exposure.experiment_id, user_id=event.user_id, arm=exposure.arm,
        identity={"experimentId": exposure.experiment_id, "userId": event.user_id, "arm": exposure.arm,
                  "firstExposedAt": exposure.first_exposed_at, "updatedAt": now},
        delta=rules.refused_delta(money) if money is not None and not money.ok
        else rules.event_delta(event, exposure.first_exposed_at, money),
        spec=_spec(store, exposure.experiment_id)) for exposure in exposures]
    if not store.metric_totals.apply_once(event.event_id, changes):
        return Outcome(Status.DUPLICATE)
    if money is not None and not money.ok:
        # Refused with its reason and counted on every experiment the event belongs to (refused.{reason} on
        # the users' totals and the shards: monitor_experiment and analyses show it); never summed.
        return Outcome(Status.REFUSED, f"{money.refusal.value}: {money.currency}", tuple(touched))
    if not touched:
        return Outcome(Status.NOT_EXPOSED)
    return Outcome(Status.APPLIED, experiments=tuple(touched))


def _exposures_of(store: Store, event: rules.MetricEvent) -> list:
    """The exposures an event counts for: every one of the user's (an event naming no experiment), or the
    named experiment's plus the user's program exposures of the cohorts covering it (the holdout read-out's
    population, docs/program.md §5) — point reads, no query."""
    if event.experiment_id is None:
        return store.exposures.of_user(event.user_id)
    found = store.exposures.find(event.experiment_id, event.user_id)
    if found is None:
        return []
    try:
        covering = store.definitions.get(event.experiment_id).covering_cohort_ids
    except NotFound:
        covering = []
    program = [store.exposures.find(program_id(c), event.user_id) for c in covering]
    return [found, *(e for e in program if e is not None)]


def _spec(store: Store, scope_id: str):
    """What the scope streams into per-arm sums: a program scope (``program:{cohortId}``) streams nothing, its
    per-user totals are what analyze_holdout reads; nor does an exposure whose experiment is gone (its totals
    are kept; a redelivery could never find it, so raising would only retry a poison message)."""
    if is_program_scope(scope_id):
        return None
    try:
        return spec_for(store.definitions.get(scope_id))
    except NotFound:
        log.warning("metric event for an exposure of unknown experiment %s: totals only", scope_id)
        return None


class FraudSignal(BaseModel):
    """One message of ``fraud-signals`` (API.md §5)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True, allow_inf_nan=False)

    user_id: DocumentId = Field(alias="userId")
    score: float = Field(ge=0, le=1)
    reasons: list[Annotated[str, StringConstraints(max_length=200)]] = Field(default_factory=list, max_length=50)
    occurred_at: datetime = Field(alias="occurredAt")

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("occurredAt must be an RFC 3339 string")
        return parse_rfc3339(value)


MAX_REASONS = 50


FRAUD_SCOPE = "fraud"  # apply_once scope: one update per Pub/Sub message id


def record_fraud_signal(store: Store, data: Any, message_id: str) -> Outcome:
    """Keep, per user, the maximum score and the union of reasons (``fraudScores/{userId}``) for the
    analytics engineer's bias adjustments; once per Pub/Sub message id."""
    try:
        if not isinstance(data, dict):
            raise ValueError("the message is not a JSON object")
        signal = FraudSignal.model_validate(data)
    except (ValueError, TypeError) as err:
        return Outcome(Status.REJECTED, _reason(err))

    def effect(uow: UnitOfWork) -> None:
        old = uow.fraud_scores.find(signal.user_id)
        reasons = list(dict.fromkeys((old.reasons if old else []) + list(signal.reasons)))[:MAX_REASONS]
        later = old is None or signal.occurred_at >= old.last_occurred_at
        uow.fraud_scores.save(FraudScore(
            user_id=signal.user_id,
            max_score=max(signal.score, old.max_score if old else 0.0),
            last_score=signal.score if later else old.last_score,
            reasons=reasons,
            signals=(old.signals if old else 0) + 1,
            last_occurred_at=signal.occurred_at if later else old.last_occurred_at,
            updated_at=utcnow(),
        ))

    applied = store.apply_once(FRAUD_SCOPE, message_id, effect)
    # Every delivery re-applies the exclusion (idempotent): a first delivery that recorded the score and
    # failed before flagging the user's totals is repaired by the redelivery.
    stored = store.fraud_scores.find(signal.user_id)
    if stored is not None and stored.max_score >= settings_from_env().fraud_threshold:
        exclude_user(store, signal.user_id, "fraud")
    return Outcome(Status.APPLIED if applied else Status.DUPLICATE)

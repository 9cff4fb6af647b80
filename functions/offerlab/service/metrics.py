"""Metric ingestion (API.md §5, §7) and fraud signals: event handlers, exactly once in effect.

``ingest_metric_event``: validate (domain/metrics.py); read the user's exposure(s) (written once, never
changed); then, in ONE atomic batch with the creation of the ``("metric", eventId)`` marker
(``apply_once_blind``), merge the event's delta into ``userMetricTotals/{experimentId}_{userId}`` of each
experiment the event belongs to, as server-side increments: no read-modify-write, so concurrent events of
one user never fight over locks. Only events at or after the user's first exposure count (earlier ones
feed the CUPED covariate ``preExposure``); a user never exposed gets no totals. A redelivery's marker
creation fails and nothing is written.

Handlers never raise for bad data: they return an ``Outcome`` the entry point logs (ack, no retry).
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from offerlab.domain import metrics as rules
from offerlab.domain.clock import parse_rfc3339, utcnow
from offerlab.domain.ids import DocumentId
from offerlab.service.ports import Store, UnitOfWork
from offerlab.store.documents import FraudScore

log = logging.getLogger("offerlab.metrics")


class Status(str, enum.Enum):
    APPLIED = "APPLIED"            # counted now
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


def ingest_metric_event(store: Store, data: Any) -> Outcome:
    try:
        event = rules.parse_metric_event(data)
    except (ValueError, TypeError) as err:
        return Outcome(Status.REJECTED, _reason(err))
    if event.experiment_id is not None:
        found = store.exposures.find(event.experiment_id, event.user_id)
        exposures = [found] if found is not None else []
    else:
        exposures = store.exposures.of_user(event.user_id)
    touched = [e.experiment_id for e in exposures]
    now = utcnow()
    deltas = [(exposure.experiment_id, event.user_id,
               {"experimentId": exposure.experiment_id, "userId": event.user_id, "arm": exposure.arm,
                "firstExposedAt": exposure.first_exposed_at, "updatedAt": now},
               rules.event_delta(event, exposure.first_exposed_at)) for exposure in exposures]
    if not store.metric_totals.apply_once(event.event_id, deltas):
        return Outcome(Status.DUPLICATE)
    if not touched:
        return Outcome(Status.NOT_EXPOSED)
    return Outcome(Status.APPLIED, experiments=tuple(touched))


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

    return Outcome(Status.APPLIED if store.apply_once(FRAUD_SCOPE, message_id, effect) else Status.DUPLICATE)

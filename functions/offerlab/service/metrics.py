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
from offerlab.domain.aggregates import UserChange
from offerlab.domain.clock import parse_rfc3339, utcnow
from offerlab.domain.ids import DocumentId
from offerlab.service.aggregation import exclude_user, spec_for
from offerlab.service.analytics import settings_from_env
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
    changes = [UserChange(
        experiment_id=exposure.experiment_id, user_id=event.user_id, arm=exposure.arm,
        identity={"experimentId": exposure.experiment_id, "userId": event.user_id, "arm": exposure.arm,
                  "firstExposedAt": exposure.first_exposed_at, "updatedAt": now},
        delta=rules.event_delta(event, exposure.first_exposed_at),
        spec=spec_for(store.definitions.get(exposure.experiment_id))) for exposure in exposures]
    if not store.metric_totals.apply_once(event.event_id, changes):
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

    applied = store.apply_once(FRAUD_SCOPE, message_id, effect)
    # Every delivery re-applies the exclusion (idempotent): a first delivery that recorded the score and
    # failed before flagging the user's totals is repaired by the redelivery.
    stored = store.fraud_scores.find(signal.user_id)
    if stored is not None and stored.max_score >= settings_from_env().fraud_threshold:
        exclude_user(store, signal.user_id, "fraud")
    return Outcome(Status.APPLIED if applied else Status.DUPLICATE)

"""Builders shared by the monitoring unit tests: a RUNNING experiment in the in-memory store, exposures,
metric events and fraud signals that go through the real use cases."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from offerlab.domain.aggregates import StreamedStatistics, recompute, streamed_fields
from offerlab.service import metrics as ingestion
from offerlab.service.aggregation import spec_for
from offerlab.store.documents import ExperimentExposure, OfferExperiment

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
_ids = itertools.count()


def experiment_doc(experiment_id: str = "exp-mon", **over: Any) -> OfferExperiment:
    base = {
        "experimentId": experiment_id, "name": "price", "hypothesis": {"statement": "s"},
        "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.05,
                        "violationAction": "PAUSE"}],
        "holdoutCohortId": "coh-1", "treatmentPercentage": 50.0, "offerType": "PROMO", "offerConfig": {"p": 2},
        "controlConfig": {"p": 1}, "plannedStartDate": T0, "plannedEndDate": T0 + timedelta(days=30),
        "approvers": ["ceo@company.com"], "author": "pm@company.com", "salt": "s" * 32, "status": "RUNNING",
        "createdAt": T0, "startedAt": T0, "coverage": 100.0, "stageIndex": 0, "version": 3,
    }
    base.update(over)
    return OfferExperiment.model_validate(base)


def put_experiment(store, experiment: OfferExperiment) -> OfferExperiment:
    store.db.collection("offerExperiments")[experiment.experiment_id] = experiment.to_firestore()
    return experiment


def expose(store, experiment_id: str, user_id: str, arm: str, at: datetime = T0) -> None:
    store.exposures.record_first(ExperimentExposure(
        experiment_id=experiment_id, user_id=user_id, arm=arm, first_exposed_at=at, coverage=100.0,
        stage_index=0, experiment_version=3))


def event(user_id: str, type_: str, value: float | None = None, *, at: datetime | None = None,
          experiment_id: str | None = "exp-mon", **extra: Any) -> dict[str, Any]:
    out = {"eventId": f"ev-{next(_ids)}", "userId": user_id, "type": type_,
           "occurredAt": (at or T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
    if value is not None:
        out["value"] = value
    if experiment_id is not None:
        out["experimentId"] = experiment_id
    out.update(extra)
    return out


def fraud(user_id: str, score: float = 0.95) -> dict[str, Any]:
    return {"userId": user_id, "score": score, "reasons": ["card_testing"],
            "occurredAt": (T0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z")}


def ingest(store, data: dict[str, Any]):
    return ingestion.ingest_metric_event(store, data)


def signal(store, data: dict[str, Any], message_id: str):
    return ingestion.record_fraud_signal(store, data, message_id)


def streamed_vs_recomputed(store, experiment: OfferExperiment) -> tuple[dict, dict]:
    """(streamed shard fields per arm, the same fields recomputed from every user's totals)."""
    spec = spec_for(experiment)
    shards = store.aggregates.read(experiment.experiment_id)
    rows = [(v["arm"], v) for v in store.db.collection("userMetricTotals").values()
            if v.get("experimentId") == experiment.experiment_id]
    return streamed_fields(shards), recompute(rows, spec)


def stats_of(store, experiment: OfferExperiment) -> StreamedStatistics:
    return StreamedStatistics.from_shards(store.aggregates.read(experiment.experiment_id))


"""Repository of experiments (offerExperiments) and their lifecycle events (experimentEvents)."""
from __future__ import annotations

from typing import Any

from offerlab.domain.errors import NotFound
from offerlab.store import collections as C
from offerlab.store.client import db
from offerlab.store.documents import OfferExperiment


def experiment_ref(experiment_id: str):
    return db().collection(C.OFFER_EXPERIMENTS).document(experiment_id)


def get_experiment(experiment_id: str, transaction: Any = None) -> OfferExperiment:
    snap = experiment_ref(experiment_id).get(transaction=transaction)
    if not snap.exists:
        raise NotFound("No such experiment.")
    return OfferExperiment.from_firestore(snap.to_dict())




def new_experiment_ref():
    return db().collection(C.OFFER_EXPERIMENTS).document()


def event_id(experiment_id: str, version: int) -> str:
    """``{experimentId}_{version:06d}``: deterministic, so two transitions racing to the same version collide
    on ``create`` and at most one commits."""
    return f"{experiment_id}_{version:06d}"


def event_ref(experiment_id: str, version: int):
    return db().collection(C.EXPERIMENT_EVENTS).document(event_id(experiment_id, version))


def event_exists(experiment_id: str, version: int, transaction: Any = None) -> bool:
    return event_ref(experiment_id, version).get(transaction=transaction).exists


def list_events(experiment_id: str) -> list[dict]:
    """The experiment's lifecycle events in version order (ids sort by version)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 - lazy (cold start)

    query = db().collection(C.EXPERIMENT_EVENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return sorted((s.to_dict() for s in query.stream()), key=lambda e: e.get("version", 0))


def ids_with_status(statuses: list[str], transaction: Any = None) -> list[str]:
    """Ids of experiments in any of ``statuses`` (the kill-switch's "*" and get_offer's default)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.OFFER_EXPERIMENTS).where(filter=FieldFilter("status", "in", statuses))
    snaps = query.get(transaction=transaction) if transaction is not None else query.stream()
    return [s.id for s in snaps]


def running_experiments() -> list[OfferExperiment]:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.OFFER_EXPERIMENTS).where(filter=FieldFilter("status", "==", "RUNNING"))
    return [OfferExperiment.from_firestore(s.to_dict()) for s in query.stream()]


def experiments_with_status(statuses: list[str], transaction: Any = None) -> list[OfferExperiment]:
    """The experiments in any of ``statuses`` (few: live and shipped ones), read in ``transaction``."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415

    query = db().collection(C.OFFER_EXPERIMENTS).where(filter=FieldFilter("status", "in", statuses))
    snaps = query.get(transaction=transaction) if transaction is not None else query.stream()
    return [OfferExperiment.from_firestore(s.to_dict()) for s in snaps]

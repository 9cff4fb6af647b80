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

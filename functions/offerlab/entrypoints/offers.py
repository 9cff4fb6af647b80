"""get_offer (API.md §3, §10, §13): any signed-in user for their own uid; the service role for anyone (and
only it may say whether the user subscribes: ``subscriber``)."""
from __future__ import annotations

__all__ = ["get_offer"]

from firebase_functions import https_fn

from offerlab.api.offers import GetOffer
from offerlab.api.callable import handle
from offerlab.service import offers as svc
from offerlab.store.firestore_store import firestore_store as store


@https_fn.on_call()
def get_offer(req: https_fn.CallableRequest) -> dict:
    return handle(req, GetOffer, lambda c, p: svc.get_offer(store(), c, p.user_id, p.experiment_id, p.placement,
                                                            p.region, p.subscriber))

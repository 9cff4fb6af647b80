"""Request model of get_offer, in its own module: get_offer's instances import only what they need."""
from __future__ import annotations

from offerlab.api.models import ApiModel, Id, Placement, Region, UserId


class GetOffer(ApiModel):
    user_id: UserId | None = None
    experiment_id: Id | None = None
    placement: Placement | None = None
    region: Region | None = None
    # The backend's word that the user has (True) or has not (False) an active store subscription, from the
    # receipts it verified; accepted from the service role only (docs/regions.md §2, the trust model).
    subscriber: bool | None = None

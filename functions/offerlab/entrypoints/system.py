"""Operational callables: ``ping`` is the trivial round trip the benchmarks use as their baseline."""
from __future__ import annotations

__all__ = ["ping"]

from firebase_functions import https_fn

from offerlab.api.callable import handle
from offerlab.api.models import ApiModel, Text


class Ping(ApiModel):
    echo: Text = ""


@https_fn.on_call()
def ping(req: https_fn.CallableRequest) -> dict:
    """Any signed-in caller: who the token says you are, and your echo back. Touches no database."""
    return handle(req, Ping, lambda caller, p: {"ok": True, "uid": caller.uid, "echo": p.echo,
                                                   "roles": sorted(r.value for r in caller.roles)})

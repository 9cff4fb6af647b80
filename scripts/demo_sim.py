"""The demo's simulated world (scripts/demo.py): users, their purchases, and the bulk-loaded history.

The simulated truth of the price test ($9.99 → $12.99), per enrolled user:

* a user subscribes with probability 30 % at $9.99 (control) and 27 % at $12.99 (treatment): price elasticity;
* a subscriber renews a Geometric number of months (mean ``MEAN_RENEWALS``), same in both arms;
* 2 % of subscribers ask for a refund of their first payment, in both arms.

So the expected net LTV per user is ``p · price · (1 + R − 0.02)``, and the true lift is exactly
``0.27 · 12.99 / (0.30 · 9.99) − 1`` = +17.0 % whatever R is (``TRUE_LIFT_PERCENT``). Plus five fraudsters
(treatment, $400 card-testing purchases, flagged on the fraud-signals topic) and one $5,000 whale, which the
analysis must exclude / cap (docs/analytics.md §4).

Values are drawn per arm from a seeded generator in the order users are met, so a run is reproducible up to
the cohort's random salt (which decides who is in which arm).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import numpy as np

PRICES = {"CONTROL": 9.99, "TREATMENT": 12.99}
CONVERSION = {"CONTROL": 0.30, "TREATMENT": 0.27}
MEAN_RENEWALS = 3.0
REFUND_SHARE = 0.02
TRUE_LIFT_PERCENT = 100 * (CONVERSION["TREATMENT"] * PRICES["TREATMENT"] / (CONVERSION["CONTROL"] * PRICES["CONTROL"]) - 1)


class Outcomes:
    """Per-user purchase histories, drawn per arm from seeded streams."""

    def __init__(self, seed: int = 2026) -> None:
        self.rngs = {arm: np.random.default_rng(seed + i) for i, arm in enumerate(PRICES)}

    def draw(self, arm: str) -> dict[str, Any] | None:
        """``{purchase, renewals, refund}`` amounts of one user, or None for a user who never subscribes."""
        rng = self.rngs[arm]
        pays, renew_draw, refund_draw = rng.random(), rng.geometric(1 / (1 + MEAN_RENEWALS)) - 1, rng.random()
        if pays >= CONVERSION[arm]:
            return None
        price = PRICES[arm]
        return {"price": price, "renewals": int(renew_draw), "refund": bool(refund_draw < REFUND_SHARE)}


def events_of(user_id: str, outcome: dict[str, Any], start: datetime,
              month: timedelta = timedelta(days=30)) -> list[dict[str, Any]]:
    """The offer-metric-events messages (API.md §5) a subscriber's history produces. Only events after the
    user's first exposure count toward the experiment (earlier ones feed CUPED; domain/metrics.py), so the
    demo compresses a simulated month into ``month`` after ``start``."""
    price = outcome["price"]
    out = [{"type": "purchase", "value": price, "occurredAt": start}]
    if outcome["refund"]:
        out.append({"type": "refund", "value": price, "occurredAt": start + month / 15})
    out += [{"type": "renewal", "value": price, "occurredAt": start + month * (k + 1)}
            for k in range(outcome["renewals"])]
    return [{**e, "eventId": f"{user_id}-{i}", "userId": user_id, "currency": "USD",
             "occurredAt": e["occurredAt"].astimezone(timezone.utc).isoformat().replace("+00:00", "Z")}
            for i, e in enumerate(out)]


def totals_doc(experiment_id: str, user_id: str, arm: str, *, purchase: float = 0.0, purchases: int = 0,
               renewal: float = 0.0, renewals: int = 0, refund: float = 0.0, refunds: int = 0,
               at: datetime) -> dict[str, Any]:
    """A ``userMetricTotals`` document shaped as the metric ingestion writes it (domain/metrics.py)."""
    from offerlab.domain.metrics import empty_totals  # noqa: PLC0415 - needs functions/ on sys.path

    doc = empty_totals()
    doc["counts"].update({"purchase": purchases, "renewal": renewals, "refund": refunds})
    doc["amounts"].update({"purchase": float(purchase), "renewal": float(renewal), "refund": float(refund)})
    doc.update({"experimentId": experiment_id, "userId": user_id, "arm": arm, "firstExposedAt": at,
                "lastEventAt": at, "updatedAt": at, "lastRegion": None, "sandbox": False, "sandboxEvents": 0})
    return doc


def outcome_totals(experiment_id: str, user_id: str, arm: str, outcome: dict[str, Any], at: datetime) -> dict[str, Any]:
    price = outcome["price"]
    return totals_doc(experiment_id, user_id, arm, purchase=price, purchases=1, renewal=price * outcome["renewals"],
                      renewals=outcome["renewals"], refund=price if outcome["refund"] else 0.0,
                      refunds=int(outcome["refund"]), at=at)


def bulk_write(db, writes: list[tuple[Any, dict[str, Any]]], bar: Any = None) -> None:
    """Batched writes (500 a batch, Firestore's limit) straight into the emulator's Firestore; ``bar`` (a
    demo_ui progress bar, optional) advances per batch."""
    for start in range(0, len(writes), 500):
        batch = db.batch()
        chunk = writes[start:start + 500]
        for ref, data in chunk:
            batch.set(ref, data)
        batch.commit()
        if bar is not None:
            bar.advance(len(chunk))


def exposure_doc(experiment_id: str, user_id: str, arm: str, coverage: float, at: datetime) -> dict[str, Any]:
    return {"experimentId": experiment_id, "userId": user_id, "arm": arm, "firstExposedAt": at,
            "coverage": float(coverage), "stageIndex": 0, "experimentVersion": 1}


def chunks(items: list[Any], parts: int) -> Iterable[list[Any]]:
    size = -(-len(items) // parts)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def now() -> datetime:
    return datetime.now(timezone.utc)

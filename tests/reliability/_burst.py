"""A burst of metric events through the Pub/Sub emulator's REST API, and how fast and how completely the
suite applies it. Shared by tests/reliability/test_burst_ingestion.py (every event exactly once) and
benchmarks/bench_load.py (the sustained ingestion rate).

The events go the production way: published to ``offer-metric-events`` on the Pub/Sub emulator (REST,
as any publisher would), pulled by the emulator suite's bridge, delivered to ``ingest_offer_metric_event``.
Only the users' exposures are written straight into Firestore first (ingestion counts an event only for
an exposed user: service/metrics.py), as tests/integration/test_metric_ingestion.py does.
"""
from __future__ import annotations

import base64
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import requests

PROJECT = "demo-offerlab"
TOPIC = "offer-metric-events"
PUBLISH_BATCH = 100            # messages per REST publish request


@dataclass
class Burst:
    experiment_id: str
    users: list[str]
    events: list[dict]                         # the unique events, in publishing order before shuffling
    messages: list[dict]                       # what is published: the events plus duplicates, shuffled
    expected: dict[str, tuple[int, float]]     # per user: (purchases, amount) when each event counts once

    @property
    def duplicates(self) -> int:
        return len(self.messages) - len(self.events)


@dataclass
class Drain:
    published_seconds: float                   # first publish request → last one answered
    applied: int                               # unique events whose processed marker exists at the end
    all_applied_seconds: float | None          # first publish → every event applied (None: never)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since first publish, applied)

    def sustained_rate(self, total: int, low: float = 0.1, high: float = 0.9) -> float | None:
        """Events/s between the moments ``low`` and ``high`` of the events were applied: the steady state,
        without the workers' cold start at the head and the last stragglers at the tail."""
        def first_at(share: float) -> tuple[float, int] | None:
            return next(((t, n) for t, n in self.samples if n >= share * total), None)

        a, b = first_at(low), first_at(high)
        if a is None or b is None or b[0] <= a[0]:
            return None
        return (b[1] - a[1]) / (b[0] - a[0])


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def make_burst(unique: int, users: int, duplicates: int, seed: int = 2000) -> Burst:
    """``unique`` purchase events spread round-robin over ``users`` users of a fresh experiment id, each with
    its own amount, plus ``duplicates`` re-publications of randomly chosen events (a client retrying)."""
    rng = random.Random(seed)
    eid = f"burst-{uuid.uuid4().hex[:10]}"
    people = [f"bu-{uuid.uuid4().hex[:6]}-{i:04d}" for i in range(users)]
    at = iso(datetime.now(timezone.utc) + timedelta(seconds=1))  # after the exposures below: every event counts
    events = [{"eventId": f"{eid}-{i}", "userId": people[i % users], "type": "purchase",
               "value": round(1 + (i % 97) * 0.25, 2), "currency": "USD", "occurredAt": at, "experimentId": eid}
              for i in range(unique)]
    messages = events + [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(messages)
    expected: dict[str, tuple[int, float]] = {}
    for e in events:
        n, amount = expected.get(e["userId"], (0, 0.0))
        expected[e["userId"]] = (n + 1, amount + e["value"])
    return Burst(eid, people, events, messages, expected)


def expose_all(firestore_db, burst: Burst) -> None:
    """Every user of the burst first exposed (TREATMENT) now, in batched writes of 500."""
    from offerlab.store import exposures as exposures_repo
    from offerlab.store.documents import ExperimentExposure

    now = datetime.now(timezone.utc)
    for start in range(0, len(burst.users), 500):
        batch = firestore_db.batch()
        for user in burst.users[start:start + 500]:
            exposure = ExperimentExposure(experiment_id=burst.experiment_id, user_id=user, arm="TREATMENT",
                                          first_exposed_at=now, coverage=50.0, stage_index=0, experiment_version=1)
            batch.set(exposures_repo.exposure_ref(burst.experiment_id, user), exposure.to_firestore())
        batch.commit()


def publish(pubsub_host: str, messages: list[dict], per_second: float | None = None) -> float:
    """Publish through the emulator's REST API (``topics.publish``), PUBLISH_BATCH messages a request;
    at most ``per_second`` messages a second, or as fast as the emulator answers. Returns the seconds
    it took; every request must be answered 200 with one message id per message."""
    url = f"http://{pubsub_host}/v1/projects/{PROJECT}/topics/{TOPIC}"
    session = requests.Session()
    created = session.put(url, timeout=30)  # 409: the functions emulator created it when it registered the trigger
    assert created.status_code in (200, 409), created.text[:300]
    start = time.monotonic()
    for n, i in enumerate(range(0, len(messages), PUBLISH_BATCH)):
        chunk = messages[i:i + PUBLISH_BATCH]
        body = {"messages": [{"data": base64.b64encode(json.dumps(m).encode()).decode()} for m in chunk]}
        resp = session.post(f"{url}:publish", json=body, timeout=60)
        assert resp.status_code == 200 and len(resp.json()["messageIds"]) == len(chunk), resp.text[:300]
        if per_second:
            time.sleep(max(0.0, start + (n + 1) * PUBLISH_BATCH / per_second - time.monotonic()))
    return time.monotonic() - start


def count_applied(firestore_db, burst: Burst) -> int:
    """Processed markers of the burst's events (one aggregation query; the markers carry the event id)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from offerlab.store import collections as C

    prefix = f"{burst.experiment_id}-"
    query = (firestore_db.collection(C.PROCESSED_EVENTS)
             .where(filter=FieldFilter("eventId", ">=", prefix))
             .where(filter=FieldFilter("eventId", "<", prefix + "\uf8ff")))
    return int(query.count().get()[0][0].value)


def drain(firestore_db, burst: Burst, pubsub_host: str, *, timeout: float, per_second: float | None = None,
          every: float = 1.0) -> Drain:
    """Publish the burst and sample how many events are applied until all are, or ``timeout`` s pass."""
    start = time.monotonic()
    published = publish(pubsub_host, burst.messages, per_second)
    samples: list[tuple[float, int]] = []
    done_at = None
    while time.monotonic() - start < timeout:
        applied = count_applied(firestore_db, burst)
        samples.append((time.monotonic() - start, applied))
        if applied >= len(burst.events):
            done_at = samples[-1][0]
            break
        time.sleep(every)
    return Drain(published, samples[-1][1] if samples else 0, done_at, samples)


def totals_by_user(firestore_db, burst: Burst) -> dict[str, tuple[int, float]]:
    """Per user: (purchases counted, purchase amount) in userMetricTotals, read in one batched get."""
    from offerlab.store import metrics as metrics_repo

    refs = {metrics_repo.totals_ref(burst.experiment_id, user).path: user for user in burst.users}
    out = {}
    for snap in firestore_db.get_all([metrics_repo.totals_ref(burst.experiment_id, u) for u in burst.users]):
        data = snap.to_dict() or {}
        out[refs[snap.reference.path]] = (int((data.get("counts") or {}).get("purchase", 0)),
                                            round(float((data.get("amounts") or {}).get("purchase", 0.0)), 6))
    return out


def missing_markers(firestore_db, burst: Burst) -> list[str]:
    """Event ids of the burst without a processed marker (each checked by id, not by query)."""
    from offerlab.store import collections as C
    from offerlab.store.idempotency import marker_id

    col = firestore_db.collection(C.PROCESSED_EVENTS)
    missing = []
    for i in range(0, len(burst.events), 300):
        chunk = burst.events[i:i + 300]
        refs = {col.document(marker_id("metric", e["eventId"])).path: e["eventId"] for e in chunk}
        for snap in firestore_db.get_all([col.document(marker_id("metric", e["eventId"])) for e in chunk]):
            if not snap.exists:
                missing.append(refs[snap.reference.path])
    return missing

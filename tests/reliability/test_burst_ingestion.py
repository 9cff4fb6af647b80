"""A burst of 2,000 unique metric events (plus 100 duplicates) published at once through the Pub/Sub
emulator's REST API: every event is applied exactly once (a processed marker each, per-user totals equal to
one count per unique event), none is lost on the way.

Stock firebase-tools lost ~13 % of such a burst (its Pub/Sub bridge acknowledged deliveries whose POST to
the Functions emulator had failed); scripts/patch_functions_emulator.py makes the bridge redeliver them and
bounds its deliveries in flight (docs/reliability.md). About 40–60 s on 2 shared cores.
"""
from __future__ import annotations

import time

import pytest

from tests.reliability import _burst

UNIQUE = 2_000
DUPLICATES = 100
USERS = 400          # 5 events each: concurrent deliveries for one user's totals (blind increments)
DRAIN_TIMEOUT = 300.0


def test_a_burst_of_two_thousand_events_is_applied_exactly_once(firestore_db, pubsub_host):
    burst = _burst.make_burst(UNIQUE, USERS, DUPLICATES)
    _burst.expose_all(firestore_db, burst)
    drained = _burst.drain(firestore_db, burst, pubsub_host, timeout=DRAIN_TIMEOUT)
    assert drained.all_applied_seconds is not None, (
        f"{drained.applied}/{UNIQUE} events applied {DRAIN_TIMEOUT:.0f} s after the first publish; missing e.g. "
        f"{_burst.missing_markers(firestore_db, burst)[:5]}")
    time.sleep(5)  # a late duplicate would land here
    assert _burst.missing_markers(firestore_db, burst) == []
    assert _burst.count_applied(firestore_db, burst) == UNIQUE
    totals = _burst.totals_by_user(firestore_db, burst)
    wrong = {u: (totals.get(u), want) for u, want in burst.expected.items()
             if totals.get(u, (0, 0.0))[0] != want[0] or totals.get(u, (0, 0.0))[1] != pytest.approx(want[1])}
    assert wrong == {}, f"{len(wrong)} users' totals differ from one count per unique event, e.g. {list(wrong.items())[:3]}"
    assert sum(n for n, _ in totals.values()) == UNIQUE
    rate = drained.sustained_rate(UNIQUE)
    print(f"\nburst: {UNIQUE} unique + {burst.duplicates} duplicates published in {drained.published_seconds:.1f} s; "
          f"all applied {drained.all_applied_seconds:.1f} s after the first publish "
          f"({UNIQUE / drained.all_applied_seconds:.0f} events/s overall, "
          f"{rate:.0f} events/s sustained between 10 % and 90 %)" if rate else "")

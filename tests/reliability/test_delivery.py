"""Duplicate and out-of-order delivery, crashes between steps, concurrent clients (issue 9 §1), on the
real emulators. Every figure is checked against a reference: single in-order delivery, one tick fired
once, one caller.

Already covered (not repeated): tests/e2e/test_experiment_pubsub.py (one metric event delivered 3×),
tests/integration/test_idempotency.py (a crash inside one effect), tests/e2e/test_rollout_sweep.py
(rollout_sweep's same tick twice), tests/integration/test_experiment_transitions.py and
tests/integration/test_killswitch.py (concurrent transitions, duplicate kill-switch messages).
"""
from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter

from offerlab.store import experiments as experiments_repo
from offerlab.domain.types import SpilloverChannel
from offerlab.store import holdouts as holdouts_repo
from offerlab.store import metrics as metrics_repo
from offerlab.store import rollouts as rollouts_repo
from offerlab.store.idempotency import apply_once
from offerlab.store.transaction import run_in_transaction
from offerlab_client import CallableError
from tests.e2e.test_experiment_lifecycle import running_experiment
from tests.e2e.test_experiment_pubsub import poll, publisher  # noqa: F401 - fixture
from tests.e2e.test_get_offer import expected_arm
from tests.e2e.test_rollout_sweep import ask_all, running_with_plan, users_enrolled
from tests.integration import test_holdout_spillover as spill
from tests.integration.test_analytics import running_experiment as running_guardrailed
from tests.integration.test_guardrail_sweep import REFUND_PAUSE, seed_refunds

SCHEDULED = ("guardrail_sweep", "rollout_sweep", "kpi_snapshot", "ledger_sweep")
EVENT_TYPES = ("purchase", "renewal", "refund", "chargeback", "trial_start", "trial_conversion",
               "cancellation", "paywall_view")


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def settle(fingerprint, quiet: float = 3.0, timeout: float = 60.0):
    """Poll ``fingerprint()`` until it has not changed for ``quiet`` seconds (async triggers done)."""
    deadline = time.monotonic() + timeout
    last, since = fingerprint(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = fingerprint()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    return last


def _publish_in_waves(publisher, topic: str, messages: list[dict]) -> None:
    for i in range(0, len(messages), 10):  # ≤ 10 at once: the functions emulator spawns a worker per delivery
        for message in messages[i:i + 10]:
            publisher(topic, message)
        time.sleep(0.5)


# --- metric events: 2–3 deliveries each, shuffled == one delivery each, in order --------------------
def test_metric_events_delivered_two_or_three_times_shuffled_total_as_once_in_order(clients, publisher):
    (ref, cohort_a), (dup, cohort_b) = running_experiment(clients, stages=(100,)), running_experiment(clients, stages=(100,))
    users = []
    while len(users) < 5:
        u = f"dd-{uuid.uuid4().hex[:8]}"
        if expected_arm(u, ref, cohort_a) != "HOLDOUT" and expected_arm(u, dup, cohort_b) != "HOLDOUT":
            users.append(u)
    service = clients.service()
    for u in users:
        service.get_offer(user_id=u, experiment_id=ref["experimentId"])
        service.get_offer(user_id=u, experiment_id=dup["experimentId"])
    rng = random.Random(9)
    start = datetime.now(timezone.utc) + timedelta(seconds=5)
    plan = [(u, rng.choice(EVENT_TYPES), round(rng.uniform(0.5, 30), 2), start + timedelta(seconds=i))
            for i, u in enumerate(users * 4)]

    def event(eid, n, u, kind, value, at):
        return {"eventId": f"{eid}-{n}", "userId": u, "type": kind, "value": value, "currency": "USD",
                "occurredAt": iso(at), "experimentId": eid}

    in_order = [event(ref["experimentId"], n, *p) for n, p in enumerate(plan)]
    replayed = [event(dup["experimentId"], n, *p) for n, p in enumerate(plan) for _ in range(rng.choice((2, 3)))]
    rng.shuffle(replayed)
    _publish_in_waves(publisher, "offer-metric-events", in_order)
    _publish_in_waves(publisher, "offer-metric-events", replayed)

    def view(eid):
        out = {}
        for u in users:
            t = metrics_repo.find_totals(eid, u) or {"counts": {}, "amounts": {}}
            out[u] = ({k: v for k, v in t["counts"].items() if v},
                      {k: round(v, 6) for k, v in t["amounts"].items() if v})
        return out

    expected_events = len(plan)
    poll(lambda: view(dup["experimentId"]),
         lambda v: sum(sum(c.values()) for c, _ in v.values()) >= expected_events, timeout=60)
    reference = settle(lambda: view(ref["experimentId"]), quiet=3)
    replay = settle(lambda: view(dup["experimentId"]), quiet=3)
    assert sum(sum(c.values()) for c, _ in reference.values()) == expected_events
    assert replay == reference, f"{len(replayed)} deliveries of {expected_events} events"


# --- scheduled functions: the same tick twice, and random times --------------------------------------
def _fire(functions_url: str, name: str, tick: datetime | None) -> None:
    headers = {"X-CloudScheduler-ScheduleTime": iso(tick)} if tick else {}
    resp = requests.post(f"{functions_url}/{name}-0", headers=headers, timeout=120)
    assert resp.status_code == 200, (name, resp.status_code, resp.text[:300])


def _fire_all_twice(functions_url: str, tick: datetime | None) -> None:
    """Every scheduled function, each twice at once for the same tick (a duplicated scheduler delivery)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: _fire(functions_url, name, tick), [n for n in SCHEDULED for _ in range(2)]))


def _state(firestore_db, eid: str, since: str = "") -> tuple:
    """Everything a scheduled function may change about one experiment (snapshots of ticks >= ``since``:
    the emulator also runs each scheduled function once at wall-clock time when its worker starts)."""
    e = experiments_repo.get_experiment(eid)
    snaps = firestore_db.collection("experimentSnapshots").where(filter=FieldFilter("experimentId", "==", eid))
    return (e.status.value, e.coverage, e.version, tuple(x["eventType"] for x in experiments_repo.list_events(eid)),
            len(rollouts_repo.list_rollout_events(eid)), tuple(sorted(t for s in snaps.stream() if (t := s.get("tickId") or "") >= since)))


def test_scheduled_functions_fired_twice_per_tick_and_at_random_times_have_no_second_effect(
        clients, firestore_db, functions_url):
    # A healthy experiment whose plan may advance one stage at the tick, and one breaching its guardrail.
    gate = {"minHoursAtStage": 1, "minExposuresPerArm": 2}
    healthy, cohort = running_with_plan(clients, stages=[{"percentage": p, **gate} for p in (1, 5, 10)],
                                        auto_progress=True)
    ask_all(clients, healthy["experimentId"], users_enrolled(healthy, cohort, 1, "CONTROL", 2, "sc")
            + users_enrolled(healthy, cohort, 1, "TREATMENT", 2, "st"))
    breaching = running_guardrailed(clients, REFUND_PAUSE)["experimentId"]
    seed_refunds(firestore_db, breaching)
    ids = (healthy["experimentId"], breaching)
    tick = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)

    tick_id = tick.strftime("%Y%m%dT%H%M%SZ")

    def states():
        return [_state(firestore_db, i, since=tick_id) for i in ids]

    _fire_all_twice(functions_url, tick)
    # The fan-outs run asynchronously (a cold Python worker per concurrent delivery takes seconds here):
    # wait for the effects a single firing must have, then for quiet (a duplicate landing late).
    poll(states, lambda st: st[0][1] != 1 and st[1][0] == "PAUSED" and all(tick_id in x[5] for x in st), timeout=180)
    once = settle(states, quiet=8, timeout=120)
    (h_status, h_cov, _, _, h_rollouts, h_snaps), (b_status, _, _, b_events, _, b_snaps) = once
    assert (h_status, h_cov) == ("RUNNING", 5)           # one stage, not two
    assert h_rollouts == 3                                # created, started, and this one advance
    assert b_status == "PAUSED" and b_events.count("EXPERIMENT_PAUSED") == 1
    assert h_snaps == (tick_id,) and b_snaps == (tick_id,)

    # The same tick once more, then random times within the next stage's minimum hour (a retrying or
    # drifting scheduler): nothing may advance or act again; kpi_snapshot writes one snapshot per
    # distinct tick, no more. The later ticks' snapshots tell us when all of it has been processed.
    for name in SCHEDULED:
        _fire(functions_url, name, tick)
    rng = random.Random(31)
    later = sorted({tick + timedelta(seconds=rng.randrange(60, 50 * 60)) for _ in range(3)})
    later_ids = tuple(t.strftime("%Y%m%dT%H%M%SZ") for t in later)
    for at in later:
        names = list(SCHEDULED) * 2
        rng.shuffle(names)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda name: _fire(functions_url, name, at), names))
    poll(states, lambda st: all(set(later_ids) <= set(x[5]) for x in st), timeout=180)
    after = settle(states, quiet=8, timeout=120)
    for before, now in zip(once, after):
        assert now[:5] == before[:5]                       # status, coverage, version, events, rollout events
        assert now[5] == tuple(sorted(before[5] + later_ids))
    for eid in ids:
        report = poll(lambda: clients.analyst().verify_ledger(eid), lambda r: r["valid"], timeout=60)
        assert report["valid"], report


def test_a_handler_crashing_after_its_first_write_leaves_nothing_then_its_retry_applies_once(firestore_db):
    scope, event_id = "reliability-crash", f"evt-{uuid.uuid4()}"
    first = firestore_db.collection("reliabilityProbe").document(f"a-{uuid.uuid4().hex}")
    second = firestore_db.collection("reliabilityProbe").document(f"b-{uuid.uuid4().hex}")
    attempts = []

    def crashing(transaction):
        attempts.append("crash")
        transaction.set(first, {"n": 1})
        raise RuntimeError("the worker dies between the two writes")

    def working(transaction):
        attempts.append("ok")
        transaction.set(first, {"n": 1})
        transaction.set(second, {"n": 2})

    for _ in range(2):  # the platform redelivers; the crash repeats
        with pytest.raises(RuntimeError):
            apply_once(scope, event_id, crashing)
    assert not first.get().exists and not second.get().exists
    assert apply_once(scope, event_id, working) is True
    assert apply_once(scope, event_id, working) is False    # a late duplicate of the same event
    assert first.get().to_dict() == {"n": 1} and second.get().to_dict() == {"n": 2}
    assert attempts == ["crash", "crash", "ok"]
    # And a crash inside a plain transaction (no marker) also leaves nothing.
    third = firestore_db.collection("reliabilityProbe").document(f"c-{uuid.uuid4().hex}")

    def half(transaction):
        transaction.set(third, {"n": 3})
        raise ValueError("crash")

    with pytest.raises(ValueError):
        run_in_transaction(half)
    assert not third.get().exists


# --- concurrent clients ------------------------------------------------------------------------------
def test_fifty_parallel_get_offer_callers_record_exactly_one_exposure_per_user(clients, firestore_db):
    exp, _ = running_experiment(clients, stages=(100,))
    eid = exp["experimentId"]
    users = [f"cc-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    service = clients.service()
    calls = [u for u in users for _ in range(10)]  # 50 callers, 10 per user
    random.Random(5).shuffle(calls)
    with ThreadPoolExecutor(max_workers=16) as pool:  # ≤ 16: the emulator's worker pool (see brief)
        answers = list(pool.map(lambda u: (u, service.get_offer(user_id=u, experiment_id=eid)["arm"]), calls))
    for u in users:
        assert len({arm for who, arm in answers if who == u}) == 1  # every caller saw the same arm
    exposures = firestore_db.collection("experimentExposures").where(filter=FieldFilter("experimentId", "==", eid))
    by_user: dict[str, int] = {}
    for snap in exposures.stream():
        by_user[snap.get("userId")] = by_user.get(snap.get("userId"), 0) + 1
    exposed = {u for u in users if dict(answers)[u] != "NOT_ENROLLED"}
    assert by_user == {u: 1 for u in exposed}


def test_twenty_parallel_lifecycle_actions_on_one_experiment_leave_one_consistent_history(clients):
    exp, _ = running_experiment(clients, stages=(100,))
    eid = exp["experimentId"]
    pm = clients.experimenter()
    actions = [lambda: pm.pause_experiment(eid, "p"), lambda: pm.resume_experiment(eid)] * 10

    def run(action):
        try:
            action()
            return "OK"
        except CallableError as err:
            return err.status

    events_before = len(experiments_repo.list_events(eid))
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(run, actions))
    # Each action either happened or was refused with a documented code; nothing else.
    assert set(outcomes) <= {"OK", "FAILED_PRECONDITION", "ABORTED"}, outcomes
    ok = outcomes.count("OK")
    assert ok >= 1
    events = experiments_repo.list_events(eid)[events_before:]
    assert len(events) == ok                         # one event per successful action, none lost or doubled
    kinds = [e["eventType"] for e in events]
    assert all(a != b for a, b in zip(kinds, kinds[1:])), kinds  # strictly alternating: pause, resume, …
    final = experiments_repo.get_experiment(eid).status.value
    assert final == ("PAUSED" if kinds[-1].endswith("PAUSED") else "RUNNING")
    # The ledger records each of them once and verifies.
    report = poll(lambda: clients.analyst().verify_ledger(eid), lambda r: r["valid"] and r["entriesChecked"] >= ok)
    assert report["valid"]


def test_sixteen_concurrent_flagged_gifts_record_every_event_and_contaminate_each_recipient_once(firestore_db):
    """16 check_spillover calls at once (4 gifts into the holdout, each sent 4 times): 16 events, and the
    Firestore trigger marks each of the 4 recipients contaminated exactly once, naming one of its events."""
    cohort = spill.frozen_cohort(30, spill.FLAG_GIFTS)
    givers = spill.pick(lambda u: not spill.inside(cohort)(u), 4)
    recipients = spill.pick(spill.inside(cohort), 4, apart_from=cohort.cohort_id)
    calls = [(g, r) for g, r in zip(givers, recipients) for _ in range(4)]
    random.Random(16).shuffle(calls)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda gr: (gr, spill.check_spillover(spill.STORE, spill.BACKEND, *gr, SpilloverChannel.GIFT, None)),
                                calls))
    assert all(r["violation"] is True and r["action"] == "FLAG" for _, r in results)
    assert len({r["eventId"] for _, r in results}) == 16
    assert sum(len(spill.events_from(firestore_db, g)) for g in givers) == 16
    records = spill.wait_for(lambda: [holdouts_repo.get_contamination(cohort.cohort_id, r) for r in recipients]
                             if all(holdouts_repo.get_contamination(cohort.cohort_id, r) for r in recipients) else None)
    assert records, "the trigger did not mark every recipient within 30 s"
    events_of = {r: {res["eventId"] for (_, to), res in results if to == r} for r in recipients}
    for recipient, record in zip(recipients, records):
        assert record.spillover_event_id in events_of[recipient]
    time.sleep(3)  # late trigger deliveries must not add records
    assert holdouts_repo.count_contaminations(cohort.cohort_id) == 4

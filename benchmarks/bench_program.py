"""A program of experiments (API.md §10): the placement decision with scoped holdouts, and get_offer by placement.

Rows, each with its baseline measured in the same run:

1. The assignment decision ``PlacementRule.decide`` (domain/program.py) for a placement held by three
   experiments (30 % traffic each) and covered by three cohorts (5 % each: global, placement-scoped,
   offer-type-scoped), coverage 100 %, treatment 50 %. Baselines:
   * bare SHA-256 of exactly the hashes the decision needs for each user (the layer hash, the cohort hashes
     until one contains the user, then coverage and arm), in the plain form ``sha256(f"{salt}:{u}".encode())
     .digest()``; the hash list per user comes from an independent trace (checked to reach the same arms).
     Goal: the decision costs ≤ 1.3x those hashes.
   * GrowthBook's SDK (growthbook 4.0.0): the app evaluates the placement's three experiments, each in a
     GrowthBook namespace range (its mutual exclusion), per user: ``set_attributes`` + three ``run`` calls.
     GrowthBook has no holdout step here, so it does less work. Goal: ours ≥ 5x GrowthBook.
2. ``get_offer {placement}`` warm, repeat ask, over HTTP on the emulator, vs the ``ping`` baseline.
   Goal: p50 ≤ baseline + 2 ms.
3. Config reads per warm ``get_offer {placement}`` call, counted in-process on the emulator's Firestore
   (every DocumentReference.get and query stream of the process is counted). Goal: 0.

Row 1 runs anywhere (``functions/venv/bin/python benchmarks/run.py program`` prints it and skips nothing:
rows 2 and 3 need ``OFFERLAB_FUNCTIONS_URL``, i.e. ``scripts/with-emulators ...``).
"""
from __future__ import annotations

import os
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from typing import Callable

from benchmarks.harness import Table, percentile, time_calls
from offerlab.domain.holdouts import CohortView, Scope
from offerlab.domain.program import ExperimentRule, PlacementRule

USERS = int(os.environ.get("OFFERLAB_BENCH_USERS", "50000"))
ROUNDS = 7
SAMPLES = int(os.environ.get("OFFERLAB_BENCH_SAMPLES", "200"))
PLACEMENT = "paywall"
COHORTS = [("coh-global", "c0ffee01", 5.0, Scope()), ("coh-paywall", "c0ffee02", 5.0, Scope.of([PLACEMENT])),
           ("coh-price", "c0ffee03", 5.0, Scope.of(offer_types=["PRICE_CHANGE"]))]
EXPERIMENTS = [("exp-a", "a0a0a0a0", ((0, 3000),)), ("exp-b", "b0b0b0b0", ((3000, 6000),)),
               ("exp-c", "c0c0c0c0", ((6000, 9000),))]


def _bucket(digest: bytes) -> int:
    return int.from_bytes(digest[:8], "big") % 10000


def _trace(user: str) -> tuple[list[str], str]:
    """The salts the decision hashes for ``user`` (API.md §2 / docs/program.md §1), and the arm it reaches."""
    salts = [f"layer:{PLACEMENT}"]
    layer = _bucket(sha256(f"layer:{PLACEMENT}:{user}".encode()).digest())
    holder = next((e for e in EXPERIMENTS if any(s <= layer < t for s, t in e[2])), None)
    if holder is None:
        return salts, "NOT_ENROLLED"
    for _, salt, pct, _ in COHORTS:
        salts.append(salt)
        if _bucket(sha256(f"{salt}:{user}".encode()).digest()) < round(pct * 100):
            return salts, "HOLDOUT"
    salts += [f"{holder[1]}:coverage", f"{holder[1]}:arm"]
    arm = _bucket(sha256(f"{holder[1]}:arm:{user}".encode()).digest()) < 5000
    return salts, "TREATMENT" if arm else "CONTROL"


def _rule() -> PlacementRule:
    covering = [CohortView.of(cid, salt, pct, {}, scope) for cid, salt, pct, scope in COHORTS]
    slots = [ExperimentRule(experiment_id=eid, running=True, placement=PLACEMENT, segments=segs, covering=covering,
                            salt=salt, coverage=100, treatment_percentage=50) for eid, salt, segs in EXPERIMENTS]
    return PlacementRule(placement=PLACEMENT, slots=slots, shipped=None)


def _rate(fn: Callable[[], int]) -> float:
    start = time.perf_counter()
    items = fn()
    return items / (time.perf_counter() - start)


def decision_rows(table: Table) -> None:
    users = [f"user-{i:08d}" for i in range(USERS)]
    rule = _rule()
    traces = [_trace(u) for u in users]
    mismatches = sum(1 for u, (_, arm) in zip(users, traces) if rule.decide(u)[0].value != arm)
    assert mismatches == 0, f"the trace disagrees with the decision for {mismatches} users"
    work = [(u, salts) for u, (salts, _) in zip(users, traces)]
    hashes = sum(len(s) for _, s in work)

    def bare() -> int:
        for u, salts in work:
            for salt in salts:
                sha256(f"{salt}:{u}".encode()).digest()
        return len(work)

    def ours() -> int:
        decide = rule.decide
        for u in users:
            decide(u)
        return len(users)

    from growthbook import Experiment, GrowthBook  # noqa: PLC0415 - dev-only dependency

    gb = GrowthBook(attributes={"id": "warm-up"})
    gb_experiments = [Experiment(key=eid, variations=[0, 1], weights=[0.5, 0.5], coverage=1.0,
                                 namespace=(PLACEMENT, s[0][0] / 10000, s[0][1] / 10000)) for eid, _, s in EXPERIMENTS]
    gb_users = users[: USERS // 5]  # GrowthBook is slower: a fifth of the users keeps the run short

    def growthbook_runs() -> int:
        for u in gb_users:
            gb.set_attributes({"id": u})
            for experiment in gb_experiments:
                gb.run(experiment)
        return len(gb_users)

    rounds = [{name: _rate(fn) for name, fn in (("bare", bare), ("ours", ours), ("gb", growthbook_runs))}
              for _ in range(ROUNDS)]
    med = {k: statistics.median(r[k] for r in rounds) for k in ("bare", "ours", "gb")}
    vs_bare = statistics.median(r["bare"] / r["ours"] for r in rounds)
    vs_gb = statistics.median(r["ours"] / r["gb"] for r in rounds)
    table.row("program decision: PlacementRule.decide (3 exps, 3 cohorts)", f"{med['ours'] / 1e3:.0f}k decisions/s",
              f"bare SHA-256 of the needed hashes: {med['bare'] / 1e3:.0f}k users/s", vs_bare,
              f"cost / cost of its {hashes / len(users):.2f} hashes per user (goal <= 1.3x); median of {ROUNDS} rounds")
    table.row("GrowthBook 4.0.0: 3 namespaced gb.run per user", f"{med['gb'] / 1e3:.0f}k users/s",
              f"ours: {med['ours'] / 1e3:.0f}k decisions/s", vs_gb, "ours / GrowthBook (goal >= 5x); same rounds")


# --- over HTTP and in-process on the emulator --------------------------------------------------------------


def _client(uid: str, email: str | None = None, roles: tuple[str, ...] = ()):
    from offerlab_client import OfferlabClient, emulator_token  # noqa: PLC0415

    return OfferlabClient(os.environ["OFFERLAB_FUNCTIONS_URL"], emulator_token(uid, email=email, roles=roles))


def _placement_with_two_experiments() -> str:
    pm = _client("pm-uid", "pm@company.com", ("experimenter",))
    placement = f"bench-{uuid.uuid4().hex[:8]}"
    # BUNDLE, which no other benchmark runs: a cohort of all PROMO offers could not be frozen while the
    # monitoring benchmark's PROMO experiment runs on the same suite (API.md §10).
    for pct, scope in ((5, {"placements": [placement]}), (5, {"offerTypes": ["BUNDLE"]})):
        cohort = pm.call("create_holdout_cohort", {"name": f"bench {uuid.uuid4().hex[:4]}", "percentage": pct,
                                                   "scope": scope})
        pm.freeze_holdout_cohort(cohort["cohortId"])
    cohort_id = cohort["cohortId"]
    now = datetime.now(timezone.utc)
    for traffic in (50, 40):
        exp = pm.call("create_experiment", {
            "name": "bench program", "hypothesis": {"statement": "bench", "successCriteria": ["none"]},
            "kpis": [{"name": "LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
            "guardrails": [{"kpiName": "Refunds", "metric": "refund_rate", "maxThreshold": 0.1, "violationAction": "ALERT"}],
            "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "BUNDLE",
            "offerConfig": {"bundle": "pro+cloud"}, "controlConfig": {"bundle": "pro"}, "placement": placement,
            "trafficPercentage": traffic, "plannedStartDate": now.isoformat(),
            "plannedEndDate": (now + timedelta(days=7)).isoformat(), "approvers": ["ceo@company.com"]})
        pm.create_rollout_plan(exp["experimentId"], stages=[100])
        pm.submit_for_approval(exp["experimentId"])
        _client("ceo-uid", "ceo@company.com", ("approver",)).approve_experiment(exp["experimentId"])
        pm.start_experiment(exp["experimentId"])
    return placement


def _describe(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50) * 1e3:.1f} ms, p95 {percentile(samples, 95) * 1e3:.1f} ms"


def _count_reads(fn: Callable[[], object], calls: int) -> tuple[int, int]:
    """(Firestore reads, calls) while ``fn`` runs ``calls`` times: every document get and query stream/get."""
    from google.cloud.firestore_v1 import document, query  # noqa: PLC0415

    counted = {"reads": 0}
    patched = [(document.DocumentReference, "get"), (query.Query, "stream"), (query.Query, "get")]
    originals = [(cls, name, getattr(cls, name)) for cls, name in patched]

    def counting(original):
        def wrapper(*args, **kwargs):
            counted["reads"] += 1
            return original(*args, **kwargs)
        return wrapper

    for cls, name, original in originals:
        setattr(cls, name, counting(original))
    try:
        for _ in range(calls):
            fn()
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)
    return counted["reads"], calls


def emulator_rows(table: Table) -> None:
    from benchmarks.bench_callable import ping_latencies  # noqa: PLC0415

    placement = _placement_with_two_experiments()
    user = _client("bench-program-user")
    time_calls(lambda: user.get_placement_offer(placement), 20, warmup=0)  # warm the instance and its caches
    ping = ping_latencies(_client("bench-ping"), SAMPLES)
    repeat = time_calls(lambda: user.get_placement_offer(placement), SAMPLES, warmup=10)
    base = percentile(ping, 50)
    table.row("get_offer {placement}: repeat ask, warm", _describe(repeat), f"ping {_describe(ping)}",
              f"{(percentile(repeat, 50) - base) * 1e3:+.1f} ms",
              f"{SAMPLES} sequential calls; p50 minus ping p50 (goal <= +2 ms); 2 exps, 2 covering cohorts")

    from offerlab.domain.actors import Caller  # noqa: PLC0415
    from offerlab.service import offers  # noqa: PLC0415
    from offerlab.store.firestore_store import firestore_store  # noqa: PLC0415

    caller = Caller("bench-inprocess-user", None, frozenset())
    ask = lambda: offers.get_offer(firestore_store(), caller, None, None, placement)  # noqa: E731
    for _ in range(5):
        ask()  # first answers: the exposures are written, the views cached
    reads, calls = _count_reads(ask, 1000)
    table.row("get_offer {placement}: Firestore reads per warm call", f"{reads / calls:.3f} reads/call",
              "", "", f"{reads} reads in {calls} in-process calls within the cache TTL (goal 0)")


def run(table: Table) -> None:
    decision_rows(table)
    if os.environ.get("OFFERLAB_FUNCTIONS_URL"):
        emulator_rows(table)
    else:
        print("  (get_offer rows need the emulators: scripts/with-emulators ... benchmarks/run.py program)")

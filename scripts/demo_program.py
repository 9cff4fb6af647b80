"""The program's story for the demo (API.md §10): a global holdout, two price tests sharing one paywall
placement, a winner shipped through approval, and the holdout's read-out.

``story(ctx, cohort)`` is what scripts/demo.py calls: ``ctx`` has the demo's clients (``pm``, ``ceo``,
``cfo``, ``analyst``, ``service``, ``admin``), its Firestore client ``db`` and ``tag``; ``cohort`` is the demo's
global holdout (frozen before anything started: it covers both tests). It returns the figures the summary
shows (``summary_lines`` prints them). Standalone, on a fresh emulator suite:

    scripts/with-emulators functions/venv/bin/python scripts/demo_program.py

Paths, labelled as in the main demo: get_offer over HTTP for a sample of users; the tests' and the program's
per-user history is bulk-loaded simulated history (batched writes, as tests/integration/test_program.py does).
"""
from __future__ import annotations

import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

PLACEMENT = "paywall"
SAMPLE = 600                      # users who ask get_offer {placement} over HTTP
HISTORY_USERS = 3000              # per test, bulk-loaded
PROGRAM_USERS = 12000             # program-exposed users, bulk-loaded
TRUE_LIFTS = {"A": 0.12, "B": 0.03}  # the tests' true relative lifts on net LTV; A wins and ships
BASE_LTV = 12.0


def _bucket(salt: str, unit: str) -> int:  # API.md §2
    return int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8], "big") % 10000


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _body(cohort_id: str, name: str, price: float, tag: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {
        "name": f"{name} {tag}", "description": f"Premium monthly: $9.99 vs ${price}",
        "hypothesis": {"statement": f"${price} raises net LTV", "successCriteria": ["Net LTV lift > 5%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "direction": "INCREASE"}],
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.05, "violationAction": "ALERT"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"newPrice": price, "productId": f"premium_monthly_{int(price * 100)}"},
        "controlConfig": {"newPrice": 9.99, "productId": "premium_monthly_999"},
        "placement": f"{PLACEMENT}-{tag}", "trafficPercentage": 50,
        "plannedStartDate": _iso(now), "plannedEndDate": _iso(now + timedelta(days=30)),
        "approvers": ["ceo@company.com", "cfo@company.com"],
    }


def _write(db: Any, writes: list[tuple[Any, dict[str, Any]]]) -> None:
    for start in range(0, len(writes), 500):
        batch = db.batch()
        for ref, data in writes[start:start + 500]:
            batch.set(ref, data)
        batch.commit()


def _history(db: Any, scope_id: str, rows: list[tuple[str, str, float]], at: datetime, **extra: Any) -> None:
    """Exposures and per-user totals (one purchase of ``amount``) for ``rows`` of (user, arm, amount)."""
    from offerlab.domain.metrics import empty_totals  # noqa: PLC0415
    from offerlab.store import collections as C  # noqa: PLC0415

    writes = []
    for user, arm, amount in rows:
        writes.append((db.collection(C.EXPERIMENT_EXPOSURES).document(f"{scope_id}_{user}"), {
            "experimentId": scope_id, "userId": user, "arm": arm, "firstExposedAt": at, "coverage": 100.0,
            "experimentVersion": 1, "offerType": "PRICE_CHANGE", **extra}))
        totals = empty_totals()
        totals["counts"]["purchase"] = 1 if amount > 0 else 0
        totals["amounts"]["purchase"] = float(amount)
        totals.update({"experimentId": scope_id, "userId": user, "arm": arm, "firstExposedAt": at,
                       "lastEventAt": at + timedelta(days=3), "updatedAt": at})
        writes.append((db.collection(C.USER_METRIC_TOTALS).document(f"{scope_id}_{user}"), totals))
    _write(db, writes)


def _poll(fn, until, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def story(ctx: Any, cohort: dict[str, Any]) -> dict[str, Any]:
    """Run the story; returns the figures (JSON-ready) for the demo's summary."""
    rng = random.Random(443)
    tag = ctx.tag
    placement = f"{PLACEMENT}-{tag}"
    tests = {}
    for key, name, price in (("A", "Paywall price A", 12.99), ("B", "Paywall price B", 10.99)):
        exp = ctx.pm.call("create_experiment", _body(cohort["cohortId"], name, price, tag))
        ctx.pm.create_rollout_plan(exp["experimentId"], stages=[100])
        ctx.pm.submit_for_approval(exp["experimentId"])
        ctx.ceo.approve_experiment(exp["experimentId"], comment="pricing sign-off")
        ctx.cfo.approve_experiment(exp["experimentId"], comment="finance sign-off")
        tests[key] = ctx.pm.start_experiment(exp["experimentId"])
    segments = {k: [(s["start"], s["end"]) for s in e["trafficSegments"]] for k, e in tests.items()}

    # get_offer {placement} over HTTP for a sample: one experiment per user, the holdout held out.
    users = [f"prog-{tag}-{i:05d}" for i in range(SAMPLE)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(pool.map(lambda u: (u, ctx.service.get_placement_offer(placement, user_id=u)), users))
    in_holdout = {u for u in users if _bucket(cohort["salt"], u) < round(cohort["percentage"] * 100)}
    by_test = {k: sum(1 for a in answers.values() if a["experimentId"] == e["experimentId"]) for k, e in tests.items()}
    holdout_treated = sum(1 for u in in_holdout if answers[u]["arm"] in ("TREATMENT", "SHIPPED"))
    in_both = sum(1 for u in users if sum(
        ctx.service.get_offer(user_id=u, experiment_id=e["experimentId"]).get("reason") != "not_in_traffic"
        for e in tests.values()) > 1) if SAMPLE <= 600 else None

    # Both tests end; their history is bulk-loaded with the true lifts; A wins and ships through approval.
    at = datetime.now(timezone.utc) - timedelta(days=30)
    for key, exp in tests.items():
        rows = [(f"hist-{tag}-{key}-{i}", arm, max(0.0, rng.gauss(BASE_LTV * (1 + TRUE_LIFTS[key] * (arm == "TREATMENT")), 4.0)))
                for i in range(HISTORY_USERS) for arm in (("TREATMENT" if i % 2 else "CONTROL"),)]
        _history(ctx.db, exp["experimentId"], rows, at, placement=placement, servedArm=None)
        ctx.pm.complete_experiment(exp["experimentId"])
    analyses = {k: ctx.analyst.analyze_experiment(e["experimentId"], "net_ltv") for k, e in tests.items()}
    winner = tests["A"]["experimentId"]
    ctx.pm.ship_experiment(winner, "TREATMENT", "Price A won on net LTV")
    ctx.ceo.approve_experiment(winner, comment="ship A")
    shipped = ctx.cfo.approve_experiment(winner, comment="ship A")
    probe = next(u for u in users if u not in in_holdout)
    _poll(lambda: ctx.service.get_placement_offer(placement, user_id=probe), lambda a: a["arm"] == "SHIPPED")
    with ThreadPoolExecutor(max_workers=8) as pool:
        after = dict(pool.map(lambda u: (u, ctx.service.get_placement_offer(placement, user_id=u)), users))
    served_shipped = sum(1 for a in after.values() if a["arm"] == "SHIPPED")
    holdout_shipped = sum(1 for u in in_holdout if after[u]["arm"] == "SHIPPED")

    # The program's history (bulk-loaded): outside the holdout the shipped price A acts.
    scope_id = f"program:{cohort['cohortId']}"
    program_rows = []
    for i in range(PROGRAM_USERS):
        user = f"progh-{tag}-{i}"
        member = _bucket(cohort["salt"], user) < round(cohort["percentage"] * 100)
        amount = max(0.0, rng.gauss(BASE_LTV * (1 if member else 1 + TRUE_LIFTS["A"]), 4.0))
        program_rows.append((user, "HOLDOUT" if member else "PROGRAM", amount))
    _history(ctx.db, scope_id, program_rows, at, cohortId=cohort["cohortId"], placement=placement)
    readout = ctx.analyst.analyze_holdout(cohort["cohortId"], "net_ltv")
    health = ctx.analyst.get_holdout_health(cohort["cohortId"])
    lo, hi = readout["confidenceInterval"]
    ship_row = next((s for s in readout["shippedExperiments"] if s["experimentId"] == winner), {})
    return {
        "placement": placement,
        "tests": {k: {"experimentId": e["experimentId"], "trafficSegments": segments[k],
                      "sampleShare": by_test[k] / SAMPLE, "trueLiftPercent": 100 * TRUE_LIFTS[k],
                      "measuredLiftPercent": analyses[k]["correctedPercentChange"]} for k, e in tests.items()},
        "usersInBothTests": in_both, "holdoutUsersServedTreatment": holdout_treated,
        "ship": {"experimentId": winner, "status": shipped["status"], "approvedBy": sorted(shipped["ship"]["approvals"]),
                 "sampleServedShipped": served_shipped, "holdoutServedShipped": holdout_shipped,
                 "sampleHoldoutKeptStatusQuo": len(in_holdout)},
        "readout": {"analysisId": readout["analysisId"], "liftPercent": readout["liftPercent"],
                    "confidenceInterval": [lo, hi], "trueCumulativeLiftPercent": 100 * TRUE_LIFTS["A"],
                    "trueInsideInterval": lo < 100 * TRUE_LIFTS["A"] < hi,
                    "holdoutUsers": readout["holdoutUsers"], "comparisonUsers": readout["comparisonUsers"],
                    "shippedLiftPercent": ship_row.get("experimentLiftPercent"),
                    "shrunkLiftPercent": ship_row.get("shrunkLiftPercent")},
        "holdoutHealth": {"exposedUsers": health.get("exposedUsers"), "contaminatedUsers": health["contaminatedUsers"],
                          "health": health["health"]},
        "paths": {"getOffer": f"{SAMPLE} users over HTTP (get_offer {{placement}}), before and after the ship",
                  "history": f"{HISTORY_USERS} users per test and {PROGRAM_USERS} program users: bulk-loaded simulated history"},
    }


def summary_lines(figures: dict[str, Any]) -> list[str]:
    """The summary's lines for the program (the demo prints them)."""
    t, ship, r = figures["tests"], figures["ship"], figures["readout"]
    lo, hi = r["confidenceInterval"]
    return [
        f"placement          {figures['placement']}: A {100 * t['A']['sampleShare']:.0f}% / B {100 * t['B']['sampleShare']:.0f}% "
        f"of {SAMPLE} users, {figures['usersInBothTests']} in both, {figures['holdoutUsersServedTreatment']} holdout users treated",
        f"shipped            {ship['experimentId']} {ship['status']} (approved by {', '.join(ship['approvedBy'])}): "
        f"{ship['sampleServedShipped']} sample users served it, {ship['holdoutServedShipped']} holdout users",
        f"holdout read-out   {r['liftPercent']:+.1f}% [{lo:+.1f}, {hi:+.1f}] (true {r['trueCumulativeLiftPercent']:+.1f}%); "
        f"shipped A measured {r['shippedLiftPercent']:+.1f}%, shrunk {r['shrunkLiftPercent']:+.1f}%; "
        f"health {figures['holdoutHealth']['health']}, contaminated {figures['holdoutHealth']['contaminatedUsers']}",
    ]


def checks(figures: dict[str, Any]) -> dict[str, bool]:
    """The program's promises, for the demo's checks (the read-out interval is statistical: 95 %)."""
    return {
        "no user in two tests of the paywall": figures["usersInBothTests"] == 0,
        "no holdout user served a treatment or the shipped price": figures["holdoutUsersServedTreatment"] == 0
        and figures["ship"]["holdoutServedShipped"] == 0 and figures["holdoutHealth"]["contaminatedUsers"] == 0,
        "the winner shipped through two approvals": figures["ship"]["status"] == "SHIPPED",
    }


def main() -> int:
    from demo_standalone import run_standalone  # noqa: PLC0415 (only when run on its own)

    return run_standalone(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())

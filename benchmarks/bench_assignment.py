"""Assignment decision throughput (holdout + coverage + arm, pure; API.md §2), against three bare
SHA-256 computations and against GrowthBook's Python SDK, all measured in this run.

Configuration: holdout 10 %, coverage 100 %, treatment 50 %: 90 % of users go through all three
hashes (holdout users stop after one), i.e. 2.8 hashes per decision on average; the baseline always
computes three. Goals (issue 4): the decision within 2x of three bare hashes; >= 3x GrowthBook.
GrowthBook (growthbook 4.0.0, dev-only dependency): one SDK instance, ``set_attributes`` + ``run`` of an
``Experiment`` with two variations, 50/50 weights and full coverage, per user; it has no holdout step,
so it does less work per user than our decision.
"""
from __future__ import annotations

import os
import statistics
import time
from hashlib import sha256
from typing import Callable

from benchmarks.harness import Table
from offerlab.domain.assignment import AssignmentPlan, assign_arm

USERS = int(os.environ.get("OFFERLAB_BENCH_USERS", "50000"))
ROUNDS = 7
CONFIG = dict(experiment_salt="0f1e2d3c4b5a69788796a5b4c3d2e1f0", treatment_percentage=50, coverage=100,
              holdout_salt="a1b2c3d4e5f60718293a4b5c6d7e8f90", holdout_percentage=10)


def run(table: Table) -> None:
    users = [f"user-{i:08d}" for i in range(USERS)]
    holdout_salt, exp_salt = CONFIG["holdout_salt"], CONFIG["experiment_salt"]

    def three_hashes() -> int:
        for u in users:
            sha256(f"{holdout_salt}:{u}".encode()).digest()
            sha256(f"{exp_salt}:coverage:{u}".encode()).digest()
            sha256(f"{exp_salt}:arm:{u}".encode()).digest()
        return len(users)

    plan = AssignmentPlan(**CONFIG)

    def decisions() -> int:
        arm_of = plan.arm_of
        for u in users:
            arm_of(u)
        return len(users)

    def reference() -> int:
        for u in users:
            assign_arm(user_id=u, **CONFIG)
        return len(users)

    from growthbook import Experiment, GrowthBook  # noqa: PLC0415 - dev-only dependency

    gb = GrowthBook(attributes={"id": "warm-up"})
    experiment = Experiment(key="bench-exp", variations=[0, 1], weights=[0.5, 0.5], coverage=1.0)

    def growthbook_runs() -> int:
        for u in users[: USERS // 5]:  # GrowthBook is slower: a fifth of the users keeps the run short
            gb.set_attributes({"id": u})
            gb.run(experiment)
        return USERS // 5

    # Interleaved rounds: the machine is shared and noisy, so each ratio is taken within one round
    # (all forms measured back to back) and the median over rounds is reported.
    rounds = [{name: _rate(fn) for name, fn in (("bare", three_hashes), ("ours", decisions), ("ref", reference),
                                                 ("gb", growthbook_runs))} for _ in range(ROUNDS)]
    med = {k: statistics.median(r[k] for r in rounds) for k in ("bare", "ours", "ref", "gb")}
    ratio = {k: statistics.median(r[a] / r[b] for r in rounds)
             for k, (a, b) in {"ours": ("bare", "ours"), "ref": ("bare", "ref"), "gb": ("ours", "gb")}.items()}
    bare, ours, ref, gbr = med["bare"], med["ours"], med["ref"], med["gb"]
    table.row("assignment decision: AssignmentPlan.arm_of", f"{ours / 1e3:.0f}k decisions/s",
              f"3x bare SHA-256: {bare / 1e3:.0f}k users/s", ratio["ours"],
              f"cost of one decision / cost of 3 bare hashes (goal <= 2x); 1 core, median of {ROUNDS} rounds")
    table.row("assignment decision: assign_arm (reference form)", f"{ref / 1e3:.0f}k decisions/s",
              f"3x bare SHA-256: {bare / 1e3:.0f}k users/s", ratio["ref"], "keyword call, salts formatted per call")
    table.row("GrowthBook 4.0.0 gb.run(Experiment)", f"{gbr / 1e3:.0f}k assignments/s",
              f"ours: {ours / 1e3:.0f}k decisions/s", ratio["gb"], "ours / GrowthBook (goal >= 3x); same rounds")


def _rate(fn: Callable[[], int]) -> float:
    start = time.perf_counter()
    items = fn()
    return items / (time.perf_counter() - start)

"""Cold start: time to import ``main.py`` in a fresh interpreter, against the bare Firebase SDK imports.

Every function instance imports main.py before serving its first request; the SDK's own imports are
the floor. Measured as the median of fresh-process imports (process start-up itself subtracted).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Table

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
REPEATS = 7

# The floor for a callable instance (get_offer), and for an instance that loads every trigger kind.
SDK_CALLABLE = "import firebase_functions.https_fn, firebase_admin"
SDK_ALL = "import firebase_functions.https_fn, firebase_functions.pubsub_fn, firebase_functions.scheduler_fn, " \
          "firebase_functions.firestore_fn, firebase_admin"
PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def _import_seconds(stmt: str, target: str | None = None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "FUNCTION_TARGET"}
    if target:
        env["FUNCTION_TARGET"] = target  # what Cloud Functions and the emulator set per instance
    samples = []
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", PROBE.format(stmt=stmt)], cwd=FUNCTIONS, env=env,
                             capture_output=True, text=True, check=True).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


def run(table: Table) -> None:
    sdk_callable, sdk_all = _import_seconds(SDK_CALLABLE), _import_seconds(SDK_ALL)
    get_offer = _import_seconds("import main", target="get_offer")
    everything = _import_seconds("import main")
    scipy = _import_seconds("import scipy.stats")
    note = f"median of {REPEATS} fresh processes"
    table.row("cold start: import main.py as get_offer's instance", f"{get_offer * 1e3:.0f} ms",
              f"https_fn + firebase_admin {sdk_callable * 1e3:.0f} ms", get_offer / sdk_callable, note)
    table.row("cold start: import main.py, all functions (discovery)", f"{everything * 1e3:.0f} ms",
              f"all trigger SDK modules {sdk_all * 1e3:.0f} ms", everything / sdk_all, note)
    table.row("cold start: import scipy.stats (kept out of main)", f"{scipy * 1e3:.0f} ms",
              f"https_fn + firebase_admin {sdk_callable * 1e3:.0f} ms", scipy / sdk_callable, "for scale")

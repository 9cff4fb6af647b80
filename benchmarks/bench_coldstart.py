"""Cold start: time to import ``main.py`` in a fresh interpreter, against the bare Firebase SDK imports.

Every function instance imports main.py before serving its first request; the SDK's own imports are
the floor. Measured as the median of fresh-process imports (process start-up itself subtracted).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Table

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
REPEATS = 7

SDK = "import firebase_functions.https_fn, firebase_functions.pubsub_fn, firebase_functions.scheduler_fn, " \
      "firebase_functions.firestore_fn, firebase_admin"
PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def _import_seconds(stmt: str) -> float:
    samples = []
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", PROBE.format(stmt=stmt)], cwd=FUNCTIONS,
                             capture_output=True, text=True, check=True).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


def run(table: Table) -> None:
    sdk = _import_seconds(SDK)
    main = _import_seconds("import main")
    scipy = _import_seconds("import scipy.stats")
    table.row("cold start: import main.py", f"{main * 1e3:.0f} ms", f"bare SDK imports {sdk * 1e3:.0f} ms",
              main / sdk, f"median of {REPEATS} fresh processes")
    table.row("cold start: import scipy.stats (kept out of main)", f"{scipy * 1e3:.0f} ms",
              f"bare SDK imports {sdk * 1e3:.0f} ms", scipy / sdk, "for scale")

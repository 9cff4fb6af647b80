"""Run every benchmark module (or those named) and print one table.

    make bench                               all of them, with the emulator suite up
    scripts/with-emulators functions/venv/bin/python benchmarks/run.py ledger assignment

Modules that need the emulators (the callable round-trips) read OFFERLAB_FUNCTIONS_URL; pure ones
run anywhere: `functions/venv/bin/python benchmarks/run.py assignment`.
"""
from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "functions")]

from benchmarks.harness import Table  # noqa: E402

# The baseline row (trivial callable round trip) comes first; the order is the table's order.
ORDER = ["callable", "coldstart", "assignment", "program", "regions", "holdouts", "offers", "ledger", "stats", "load"]


def main(names: list[str]) -> int:
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    chosen = names or sorted(available, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    table, failed = Table(), []
    for name in chosen:
        print(f"== {name}", flush=True)
        try:
            importlib.import_module(f"benchmarks.bench_{name}").run(table)
        except Exception:  # a broken benchmark must not hide the others' rows
            traceback.print_exc()
            failed.append(name)
    print()
    print(table.render())
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

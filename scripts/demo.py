"""`make demo`: a scenario played through the real callables on the emulator suite.

Run by `make demo` (which starts the suite); artifacts go to out/. Grows with each capability.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

from offerlab_client import OfferlabClient, PermissionDenied, emulator_token  # noqa: E402

OUT = ROOT / "out"


def step(text: str) -> None:
    print(f"\n▶ {text}", flush=True)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    url = os.environ["OFFERLAB_FUNCTIONS_URL"]
    pm = OfferlabClient(url, emulator_token("pm-uid", email="pm@company.com", roles=["experimenter"]))
    analyst = OfferlabClient(url, emulator_token("analyst-uid", email="analyst@company.com", roles=["analyst"]))
    summary: dict = {}

    step("ping the functions")
    started = time.perf_counter()
    print("  ", pm.ping(echo="hello"))
    summary["pingMs"] = round((time.perf_counter() - started) * 1e3, 1)

    step("create and freeze a 10% holdout cohort (experimenter)")
    cohort = pm.create_holdout_cohort(name="Premium-Test-Holdout", percentage=10,
                                      description="Holdout for premium pricing test")
    frozen = pm.freeze_holdout_cohort(cohort["cohortId"])
    print(f"   cohort {frozen['cohortId']} status={frozen['status']} salt={frozen['salt']}")
    summary["cohort"] = {"id": frozen["cohortId"], "status": frozen["status"], "percentage": frozen["percentage"]}

    step("an analyst may not create cohorts")
    try:
        analyst.create_holdout_cohort(name="nope", percentage=5)
        summary["analystRefused"] = False
    except PermissionDenied as err:
        print(f"   refused as expected: {err}")
        summary["analystRefused"] = True

    (OUT / "summary.json").write_text(json.dumps(summary, indent=2))
    step(f"summary (also in {OUT / 'summary.json'})")
    print(json.dumps(summary, indent=2))
    return 0 if summary["analystRefused"] and frozen["status"] == "FROZEN" else 1


if __name__ == "__main__":
    sys.exit(main())

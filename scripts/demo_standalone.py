"""Run one chapter of the demo on its own (``scripts/demo_program.py``, ``scripts/demo_regions.py``): the demo's
people as clients of the running suite, a frozen global holdout, the chapter's story, its summary lines and
its checks. Exits non-zero when a check fails, as ``make demo`` does.
"""
from __future__ import annotations

import json
import os
import uuid
from types import ModuleType


def run_standalone(chapter: ModuleType) -> int:
    """``chapter``: a module with ``story(ctx, cohort)``, ``summary_lines(figures)`` and ``checks(figures)``."""
    from offerlab.store.client import db  # noqa: PLC0415 (needs the emulator's environment)
    from offerlab_client import OfferlabClient, emulator_token  # noqa: PLC0415

    url = os.environ["OFFERLAB_FUNCTIONS_URL"]

    def as_(uid: str, email: str | None, *roles: str) -> OfferlabClient:
        return OfferlabClient(url, emulator_token(uid, email=email, roles=list(roles)))

    class Context:
        pm = as_("pm-uid", "pm@company.com", "experimenter")
        ceo = as_("ceo-uid", "ceo@company.com", "approver")
        cfo = as_("cfo-uid", "cfo@company.com", "approver")
        analyst = as_("analyst-uid", "analyst@company.com", "analyst")
        service = as_("backend", None, "service")
        admin = as_("admin-uid", "admin@company.com", "admin")
        tag = uuid.uuid4().hex[:6]

    ctx = Context()
    ctx.db = db()
    cohort = ctx.pm.create_holdout_cohort(name=f"Global holdout {ctx.tag}", percentage=10)
    cohort = ctx.pm.freeze_holdout_cohort(cohort["cohortId"])
    figures = chapter.story(ctx, cohort)
    print(json.dumps(figures, indent=2, default=str))
    for line in chapter.summary_lines(figures):
        print("   " + line)
    results = chapter.checks(figures)
    for name, ok in results.items():
        print(f"   {'✔' if ok else '✘'} {name}")
    return 0 if all(results.values()) else 1

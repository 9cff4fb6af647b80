"""The README's picture of the console: the experiment page of `make demo`'s price test, as the analyst sees it.

    scripts/with-emulators sh -c 'functions/venv/bin/python scripts/demo.py && functions/venv/bin/python scripts/console_screenshot.py'

Run after scripts/demo.py in the same suite (the demo's experiments, exposures and analyses are in Firestore):
it finds the experiment with the most analyses, signs in to the console as analyst@company.com in Debian's
Chromium (Playwright, the offline flags of notes/emulators.md) and writes docs/console-experiment.png (the top
of the page: shipping when it shipped, the monitor, the rollout, the latest analysis) and
out/console/demo-experiment.png (all of it).
"""
from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions"), str(ROOT / "scripts")]

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from console_people import PASSWORD  # noqa: E402
from offerlab.store.client import db  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def main() -> None:
    # Holdout read-outs live beside the analyses (kind HOLDOUT, a cohortId and no experimentId): not counted.
    counts = Counter(e for e in (d.to_dict().get("experimentId") for d in db().collection("experimentAnalyses").stream()) if e)
    if not counts:
        sys.exit("no analysis in Firestore: run scripts/demo.py first, in the same suite")
    experiment_id = counts.most_common(1)[0][0]
    url = os.environ["OFFERLAB_CONSOLE_URL"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1366, "height": 1500})
        page.goto(url)
        page.get_by_label("Email").fill("analyst@company.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("roles")).to_have_text("analyst")
        page.evaluate("id => { location.hash = '#/experiments/' + id; }", experiment_id)
        expect(page.get_by_role("img", name="Exposures per arm").first).to_be_visible(timeout=60_000)
        expect(page.locator("[data-analysis-card]")).to_be_visible(timeout=60_000)
        expect(page.locator("#rollout")).to_be_visible(timeout=60_000)
        # Every panel has loaded (the stage check of an active rollout, the shipping panel of a shipped test).
        expect(page.get_by_text(re.compile(r"^Loading "))).to_have_count(0, timeout=60_000)
        page.wait_for_load_state("networkidle")
        docs = ROOT / "docs" / "console-experiment.png"
        page.screenshot(path=str(docs))
        out = ROOT / "out" / "console"
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "demo-experiment.png"), full_page=True)
        browser.close()
    print(f"experiment {experiment_id}: {docs.relative_to(ROOT)} and out/console/demo-experiment.png")


if __name__ == "__main__":
    main()

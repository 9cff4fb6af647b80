"""The program of experiments in a real browser (API.md §10), continuing from a completed experiment:

the PM creates a holdout cohort scoped to a placement and freezes it; an experiment in that placement runs
(created through the back office) and its users' history is seeded; the PM completes it, runs an analysis
(the always-valid interval beside the fixed-horizon one) and proposes shipping TREATMENT with a reason; the
CEO and the CFO approve the ship from their inboxes (the request and its evidence shown); the experiment page
shows it SHIPPED (arm, ship approvals, covering cohort); the analyst checks the cohort's health (exposed
users, no contamination) and runs its read-out (lift, interval, the shipped experiment's measured and shrunk
lift), compared with the stored analysis; the app page's get_offer {placement} answers SHIPPED for a user
outside the holdout and the status quo for a member; the admin unships with a reason and the user is back on
the status quo. Every step asserts on what the page shows, against what the server holds.
"""
from __future__ import annotations

import json
import random
import re
import time
import uuid
from hashlib import sha256

from playwright.sync_api import Page, expect

from offerlab.store import collections as C
from tests.console.conftest import Console
from tests.console.test_controls import give_reason, open_experiment
from tests.e2e.test_experiment_lifecycle import experiment_body
from tests.integration.test_analytics import T0, seed, totals_doc

COHORT = "Annual paywall holdout"
TTL = 25  # seconds for every warm instance's offer cache to see a ship or unship (docs/program.md §6: 2 x 5 s)


def bucket(salt: str, unit: str) -> int:  # API.md §2, written out again: the test must not trust the code under test
    return int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8], "big") % 10000


def member(cohort: dict, user: str) -> bool:
    return bucket(cohort["salt"], user) < round(cohort["percentage"] * 100)


def fmt_pct(value: float, digits: int = 2) -> str:
    """format.ts pct(value, digits, signed=true)."""
    return f"{'+' if value > 0 else ''}{value:.{digits}f} %"


def fmt_interval(ci) -> str:
    return f"[{fmt_pct(ci[0])}, {fmt_pct(ci[1])}]"


def seed_history(db, experiment_id: str, cohort: dict, rng: random.Random) -> int:
    """What the run left behind, written as the integration tests do (store/bulk_load.py keeps the streamed
    sums consistent): 400 users per arm, net LTV ~20 in CONTROL and 10 % more in TREATMENT; and the
    cohort's program exposures (docs/program.md §5): 2,000 users of the placement, members held out, the
    others served the shipped offer and spending 20 % more, with their evaluation records. Returns the program's
    exposed users."""
    users = []
    for arm, mean in (("CONTROL", 20.0), ("TREATMENT", 22.0)):
        for i in range(400):
            user = f"{experiment_id[:6]}-{arm[0]}{i}"
            users.append((user, arm, totals_doc(experiment_id, user, arm, purchase=max(0.0, rng.gauss(mean, 8.0)))))
    seed(db, experiment_id, users)
    scope_id, writes = f"program:{cohort['cohortId']}", []
    for i in range(2000):
        user = f"prog-{i}"
        held = member(cohort, user)
        arm = "HOLDOUT" if held else "PROGRAM"
        writes.append((db.collection(C.EXPERIMENT_EXPOSURES).document(f"{scope_id}_{user}"), {
            "experimentId": scope_id, "userId": user, "arm": arm, "firstExposedAt": T0, "coverage": 100.0,
            "experimentVersion": 1, "cohortId": cohort["cohortId"], "inHoldout": held,
            "placement": cohort["scope"]["placements"][0], "offerType": "PRICE_CHANGE",
            "servedArm": "HOLDOUT" if held else "SHIPPED"}))
        # The evaluation record get_offer writes beside a program exposure (docs/program.md §5).
        writes.append((db.collection(C.HOLDOUT_ASSIGNMENTS).document(f"{cohort['cohortId']}_{user}"), {
            "cohortId": cohort["cohortId"], "userId": user, "inHoldout": held, "bucket": bucket(cohort["salt"], user),
            "assignedAt": T0}))
        writes.append((db.collection(C.USER_METRIC_TOTALS).document(f"{scope_id}_{user}"),
                       totals_doc(scope_id, user, arm, purchase=max(0.0, rng.gauss(20.0 if held else 24.0, 8.0)))))
    for start in range(0, len(writes), 500):
        batch = db.batch()
        for ref, data in writes[start:start + 500]:
            batch.set(ref, data)
        batch.commit()
    return 2000


def ask_offer(page: Page, placement: str, user: str, until: str | None = None) -> dict:
    """The app page's get_offer for `user` in `placement`; with `until`, asked again (as an app would on
    its next launch) until the arm is that one, within the offer caches' lifetime."""
    page.get_by_label("Placement (optional)").fill(placement)
    page.get_by_label("User id (optional)").fill(user)
    answer_box = page.get_by_test_id("offer-answer")
    deadline = time.monotonic() + TTL
    while True:
        before = int(answer_box.get_attribute("data-answers") or 0) if answer_box.count() else 0
        page.get_by_role("button", name=f"get_offer for {user}").click()
        expect(answer_box).to_have_attribute("data-answers", str(before + 1))
        answer = json.loads(answer_box.inner_text())
        if until is None or answer["arm"] == until or time.monotonic() > deadline:
            return answer
        page.wait_for_timeout(1000)


def test_ship_approve_serve_read_out_and_unship(console: Console, clients, firestore_db):
    rng = random.Random(20261201)
    placement = f"annual-paywall-{uuid.uuid4().hex[:6]}"

    # --- the PM: a holdout scoped to the placement (and to TRIAL offers), frozen --------------------------------
    pm = console.sign_in("pm@company.com")
    pm.get_by_role("link", name="Holdouts").click()
    pm.get_by_label("Cohort name").fill(COHORT)
    pm.get_by_label("Share of users held out (%)").fill("10")
    pm.get_by_label("Placements (comma separated)").fill(placement)
    pm.get_by_label("Trial", exact=True).check()
    pm.get_by_role("button", name="Create cohort").click()
    cohort_panel = pm.locator("section[data-cohort]").filter(has_text=COHORT)
    expect(cohort_panel.locator("h2")).to_contain_text("Draft")
    expect(cohort_panel).to_contain_text(f"placements {placement}; offer types Trial")
    cohort_panel.get_by_role("button", name=f"Freeze {COHORT}").click()
    expect(cohort_panel.locator("h2")).to_contain_text("Frozen")
    cohort_id = cohort_panel.get_attribute("data-cohort")
    cohort = firestore_db.collection(C.HOLDOUT_COHORTS).document(cohort_id).get().to_dict()
    assert cohort["scope"] == {"placements": [placement], "offerTypes": ["TRIAL"]} and cohort["status"] == "FROZEN"
    cohort["cohortId"] = cohort_id

    # --- an experiment of that placement ran (the back office), its history is seeded; the PM completes it ---------
    pm_client = clients.experimenter()
    body = experiment_body(
        cohort_id, placement=placement, name="Annual price: $69.99", description="Annual plan: $59.99 vs $69.99",
        hypothesis={"statement": "A $69.99 annual price raises net LTV by 10 %", "expectedImpact": "+10 % net LTV",
                    "risksIdentified": ["Lower conversion"], "successCriteria": ["Net LTV interval above 0"]},
        offerConfig={"price": 69.99, "period": "annual", "productId": "annual_6999"},
        controlConfig={"price": 59.99, "period": "annual", "productId": "annual_5999"})
    eid = pm_client.call("create_experiment", body)["experimentId"]
    pm_client.create_rollout_plan(eid, stages=[100])
    pm_client.submit_for_approval(eid)
    clients.approver("ceo").approve_experiment(eid)
    clients.approver("cfo").approve_experiment(eid)
    started = pm_client.start_experiment(eid)
    assert started["coveringCohortIds"] == [cohort_id]
    exposed = seed_history(firestore_db, eid, cohort, rng)

    open_experiment(pm, eid)
    expect(pm.get_by_test_id("placement")).to_have_text(placement)
    pm.get_by_role("button", name="Complete experiment").click()
    expect(pm.locator("article.experiment h1")).to_contain_text("Completed")
    shipping = pm.locator("#shipping")
    expect(shipping.locator("[data-ship-state]")).to_have_attribute("data-ship-state", "NOT_SHIPPED")
    expect(shipping).to_contain_text("No analysis recorded")

    pm.get_by_label("Metric").select_option("net_ltv")
    pm.get_by_role("button", name="Run analysis").click()
    card = pm.locator("[data-analysis-card]")
    expect(card).to_be_visible()
    analysis = firestore_db.collection(C.EXPERIMENT_ANALYSES).document(card.get_attribute("data-analysis-card")).get().to_dict()
    assert analysis["sampleSizes"] == {"CONTROL": 400, "TREATMENT": 400}
    fixed, always = analysis["confidenceInterval"], analysis["sequential"]["confidenceInterval"]
    assert always[0] < fixed[0] < fixed[1] < always[1]  # the always-valid interval is the wider one
    expect(card.locator("[data-figure=fixed-interval]")).to_contain_text(fmt_interval(fixed))
    expect(card.locator("[data-figure=always-valid-interval]")).to_contain_text(fmt_interval(always))
    expect(pm.locator(f"tr[data-analysis='{analysis['analysisId']}']")).to_contain_text(fmt_interval(always))
    expect(shipping).to_contain_text(f"always valid {fmt_interval(always)}")

    # --- the PM proposes shipping TREATMENT with a reason --------------------------------------------------------
    shipping.get_by_label("Arm to ship").select_option("TREATMENT")
    give_reason(pm, "Propose shipping", "Why this arm", "Net LTV up, interval above zero")
    expect(pm.locator("article.experiment h1")).to_contain_text("Ship pending approval")
    expect(shipping.locator("[data-ship-state]")).to_have_attribute("data-ship-state", "PENDING")
    expect(shipping.get_by_role("table", name="Ship approvals").locator("tr[data-approver='ceo@company.com']")).to_contain_text("Waiting")
    stored = firestore_db.collection(C.OFFER_EXPERIMENTS).document(eid).get().to_dict()
    assert stored["status"] == "SHIP_PENDING_APPROVAL" and stored["ship"]["arm"] == "TREATMENT"
    assert stored["ship"]["reason"] == "Net LTV up, interval above zero" and stored["ship"]["requestedBy"] == "pm@company.com"
    Console.shot(pm, "13-ship-proposed")

    # --- the CEO and the CFO approve the ship from their inboxes ------------------------------------------------
    for email, comment in (("ceo@company.com", "Ship it"), ("cfo@company.com", "Revenue case holds")):
        approver = console.sign_in(email)
        approver.get_by_role("link", name="Approvals").click()
        item = approver.locator("section.inbox-item").filter(has_text=body["name"])
        expect(item.locator(".panel-actions")).to_contain_text("Ship")
        expect(item.locator(".ship-request")).to_contain_text(f"Ship TREATMENT to every user of placement {placement}")
        expect(item.locator(".ship-request")).to_contain_text("Net LTV up, interval above zero")
        expect(item.get_by_test_id("ship-evidence")).to_contain_text(f"always valid {fmt_interval(always)}")
        expect(item.get_by_role("table", name="Ship approvals").locator(f"tr[data-approver='{email}']")).to_contain_text("Waiting")
        if email == "cfo@company.com":
            expect(item.get_by_role("table", name="Ship approvals").locator("tr[data-approver='ceo@company.com']")).to_contain_text("Ship it")
            Console.shot(approver, "14-inbox-ship-cfo")
        item.get_by_label("Comment (optional)").fill(comment)
        item.get_by_role("button", name="Approve shipping").click()
        expect(approver.get_by_text("Nothing waits for your approval.")).to_be_visible()
    stored = firestore_db.collection(C.OFFER_EXPERIMENTS).document(eid).get().to_dict()
    assert stored["status"] == "SHIPPED" and stored["ship"]["coveringCohortIds"] == [cohort_id]
    assert set(stored["ship"]["approvals"]) == {"ceo@company.com", "cfo@company.com"}

    # --- the experiment page shows it shipped: arm, approvals, covering cohort -------------------------------------
    pm.reload()
    expect(pm.locator("article.experiment h1")).to_contain_text("Shipped")
    expect(shipping.locator("[data-ship-state]")).to_have_attribute("data-ship-state", "SHIPPED")
    expect(shipping.get_by_test_id("ship-arm")).to_have_text("TREATMENT")
    expect(shipping).to_contain_text('"price":69.99')
    expect(shipping.get_by_test_id("ship-covering")).to_contain_text(f"{COHORT} · 10 % held out")
    ship_approvals = shipping.get_by_role("table", name="Ship approvals")
    expect(ship_approvals.locator("tr[data-approver='cfo@company.com']")).to_contain_text("Revenue case holds")
    expect(ship_approvals.locator("tr[data-approver='ceo@company.com']")).to_contain_text("Approved")
    expect(pm.get_by_role("button", name="Unship…")).to_have_count(0)  # admin only
    expect(pm.locator("#timeline")).to_contain_text("Experiment shipped")
    Console.shot(pm, "15-experiment-shipped")

    # --- the analyst: the cohort's health and its read-out ------------------------------------------------------
    analyst = console.sign_in("analyst@company.com")
    analyst.get_by_role("link", name="Holdouts").click()
    cohort_panel = analyst.locator(f"section[data-cohort='{cohort_id}']")
    cohort_panel.get_by_role("button", name="Check health").click()
    health = clients.analyst().get_holdout_health(cohort_id)
    assert health["exposedUsers"] == exposed and health["evaluatedUsers"] == exposed and health["contaminatedUsers"] == 0
    assert health["health"] == "HEALTHY" and health["srmPValue"] > 0.001
    expect(cohort_panel.get_by_test_id("exposed-users")).to_have_text(f"{exposed:,} ({health['exposedHoldoutUsers']:,} held out)")
    expect(cohort_panel.get_by_test_id("contaminated")).to_have_text("0 (0.00 %)")
    expect(cohort_panel.locator(".health")).to_have_attribute("data-health", "HEALTHY")
    cohort_panel.get_by_label("Read-out metric").select_option("net_ltv")
    cohort_panel.get_by_role("button", name="Holdout read-out").click()
    readout = cohort_panel.locator(".readout")
    expect(readout).to_be_visible()
    stored = firestore_db.collection(C.EXPERIMENT_ANALYSES).document(readout.get_attribute("data-analysis")).get().to_dict()
    assert stored["kind"] == "HOLDOUT" and stored["cohortId"] == cohort_id
    assert stored["holdoutUsers"] + stored["comparisonUsers"] == exposed
    assert stored["confidenceInterval"][0] > 0  # the seeded 20 % lift is found
    expect(readout.locator("[data-figure=lift]")).to_contain_text(fmt_pct(stored["liftPercent"]))
    expect(readout.locator("[data-figure=interval]")).to_contain_text(fmt_interval(stored["confidenceInterval"]))
    (shipped,) = stored["shippedExperiments"]
    assert shipped["experimentId"] == eid and 0 < shipped["shrunkLiftPercent"] < shipped["experimentLiftPercent"]
    row = readout.locator(f"tr[data-experiment='{eid}']")
    expect(row).to_contain_text(body["name"])
    expect(row).to_contain_text(fmt_pct(shipped["experimentLiftPercent"]))
    expect(row).to_contain_text(fmt_pct(shipped["shrunkLiftPercent"]))
    Console.shot(analyst, "16-holdout-readout")

    # --- the app's side: SHIPPED outside the holdout, the status quo inside -----------------------------------------
    outside = next(u for u in (f"app-user-{i}" for i in range(1000)) if not member(cohort, u))
    inside = next(u for u in (f"app-user-{i}" for i in range(1000)) if member(cohort, u))
    admin = console.sign_in("admin@company.com")
    admin.get_by_role("link", name="App integration").click()
    answer = ask_offer(admin, placement, outside, until="SHIPPED")
    assert answer == {"userId": outside, "arm": "SHIPPED", "experimentId": eid,
                      "offerConfig": {"price": 69.99, "period": "annual", "productId": "annual_6999"},
                      "placement": placement, "reason": "shipped"}
    expect(admin.get_by_test_id("offer-summary")).to_contain_text(f"Shipped {outside} in placement {placement}")
    assert clients.service().get_placement_offer(placement, user_id=outside) == answer
    Console.shot(admin, "17-app-shipped")
    answer = ask_offer(admin, placement, inside)
    assert answer == {"userId": inside, "arm": "HOLDOUT", "experimentId": eid,
                      "offerConfig": {"price": 59.99, "period": "annual", "productId": "annual_5999"},
                      "placement": placement, "reason": "holdout"}
    expect(admin.get_by_test_id("offer-summary")).to_contain_text("reason: holdout")
    expect(admin.get_by_test_id("offer-summary").locator("code")).to_contain_text('"price":59.99')

    # --- the admin unships; everyone is back on the status quo --------------------------------------------------
    open_experiment(admin, eid)
    give_reason(admin, "Unship", "Reason for unshipping", "Store review asked for the old price")
    expect(admin.locator("article.experiment h1")).to_contain_text("Completed")
    expect(admin.locator("#shipping [data-ship-state]")).to_have_attribute("data-ship-state", "UNSHIPPED")
    expect(admin.locator("#shipping")).to_contain_text("Store review asked for the old price")
    stored = firestore_db.collection(C.OFFER_EXPERIMENTS).document(eid).get().to_dict()
    assert stored["status"] == "COMPLETED" and stored["ship"]["unshippedBy"] == "admin@company.com"
    admin.get_by_role("link", name="App integration").click()
    answer = ask_offer(admin, placement, outside, until="NOT_ENROLLED")
    assert answer["arm"] == "NOT_ENROLLED" and answer["offerConfig"] is None, answer
    assert re.search(r"no offer", admin.get_by_test_id("offer-summary").inner_text())

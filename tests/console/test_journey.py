"""The console's end-to-end journey in a real browser, on the real emulators:

the PM signs in, creates and freezes a holdout, creates an experiment with a deliberately invalid field (sees
the server's error at that field; nothing is written), fixes it and submits it with a rollout plan; the CEO
and the CFO approve it from their inboxes; an approver sees no start button (and the server refuses an
approver's start); the PM starts it; users ask for their offer; the analyst sees the live monitor and runs an
analysis; the ledger verifies and the board report and the CSV export come out. Every step asserts on what
the page shows, compared with what the server holds. Screenshots: out/console/.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from offerlab_client import PermissionDenied
from tests.console.conftest import Console, experiment_id_from

NAME = "Annual plan price test"
COHORT = "Console holdout"
PLACEMENT = "annual_paywall"
USERS = 160  # users who ask get_offer once the experiment runs


def panel(page: Page, title: str):
    return page.locator("section.panel").filter(has=page.get_by_role("heading", name=title, exact=False))


def fill_experiment(page: Page, treatment: str) -> None:
    panel(page, "What and why").get_by_label("Name", exact=True).fill(NAME)
    page.get_by_label("Description").fill("Annual plan: $59.99 vs $69.99")
    page.get_by_label("Hypothesis").fill("A $69.99 annual price raises net LTV by 10% without hurting conversion much")
    page.get_by_label("Expected impact").fill("+10% net LTV")
    page.get_by_label("Risks identified (one per line)").fill("Lower conversion\nMore refunds in the first week")
    page.get_by_label("Success criteria (one per line)").fill("Net LTV lift above 5% with the interval above 0")
    kpi = page.get_by_role("group", name="KPI 1")
    kpi.get_by_label("Name").fill("Net LTV")
    kpi.get_by_label("Type").select_option("PRIMARY")
    kpi.get_by_label("Metric").select_option("net_ltv")
    kpi.get_by_label("Baseline").fill("40")
    guard = page.get_by_role("group", name="Guardrail 1")
    guard.get_by_label("KPI name").fill("Refund rate")
    guard.get_by_label("Metric").select_option("refund_rate")
    guard.get_by_label("Max threshold").fill("0.05")
    guard.get_by_label("On violation").select_option("PAUSE")
    page.get_by_label("Holdout cohort").select_option(label=f"{COHORT} · 10 % · Frozen · global")
    page.get_by_label("Placement", exact=True).fill(PLACEMENT)
    page.get_by_label("Traffic of the placement (%)").fill("80")
    page.get_by_label("Treatment share of enrolled users (%)").fill(treatment)
    page.get_by_label("Treatment offer (JSON)").fill('{"price": 69.99, "period": "annual", "productId": "annual_6999"}')
    page.get_by_label("Control offer, the status quo (JSON)").fill('{"price": 59.99, "period": "annual", "productId": "annual_5999"}')
    page.get_by_label("Approvers (emails, comma separated)").fill("ceo@company.com, cfo@company.com")
    page.get_by_label("Stages (% of users, in order)").fill("20, 50")
    page.get_by_label("Minimum exposures per arm").fill("5")


def experiments_named(db, name: str) -> list:
    return [d for d in db.collection("offerExperiments").where("name", "==", name).stream()]


def approve_from_inbox(console: Console, email: str, comment: str) -> Page:
    page = console.sign_in(email)
    page.get_by_role("link", name="Approvals").click()
    item = page.locator("section.inbox-item").filter(has_text=NAME)
    expect(item).to_be_visible()
    # What the approver needs to decide: the hypothesis, the risks, the checklist and who already approved.
    expect(item.locator("blockquote")).to_have_text(re.compile("A \\$69.99 annual price raises net LTV"))
    expect(item.locator("ul.risks")).to_contain_text("More refunds in the first week")
    expect(item.locator("li[data-item=approvals]")).to_contain_text("Waiting for")
    expect(item.locator("li[data-item=frozen_holdout]")).to_have_class(re.compile(r"\bok\b"))
    expect(item.locator(f"tr[data-approver='{email}']")).to_contain_text("Waiting")
    Console.shot(page, f"04-inbox-{email.split('@')[0]}")
    item.get_by_label("Comment (optional)").fill(comment)
    item.get_by_role("button", name="Approve launch").click()
    expect(page.get_by_text("Nothing waits for your approval.")).to_be_visible()
    expect(panel(page, "Approved by you")).to_contain_text(NAME)
    return page


@pytest.mark.timeout(900)
def test_the_console_journey(console: Console, clients, firestore_db):
    # --- the PM: a frozen holdout -------------------------------------------------------------------------
    pm = console.sign_in("pm@company.com")
    expect(pm.get_by_test_id("roles")).to_have_text("experimenter")
    expect(pm.get_by_role("link", name="Approvals")).to_have_count(0)  # not an approver
    expect(pm.get_by_text("No experiments yet")).to_be_visible()
    Console.shot(pm, "01-experiments-empty")
    pm.get_by_role("link", name="Holdouts").click()
    pm.get_by_label("Cohort name").fill(COHORT)
    pm.get_by_label("Share of users held out (%)").fill("10")
    pm.get_by_role("button", name="Create cohort").click()
    cohort = pm.locator("section[data-cohort]").filter(has_text=COHORT)
    expect(cohort.locator("h2")).to_contain_text("Draft")
    cohort.get_by_role("button", name=f"Freeze {COHORT}").click()
    expect(cohort.locator("h2")).to_contain_text("Frozen")
    Console.shot(pm, "02-holdouts")

    # --- the PM: an experiment with a deliberately invalid field ---------------------------------------------
    pm.get_by_role("link", name="Experiments").click()
    pm.get_by_role("link", name="New experiment").click()
    fill_experiment(pm, treatment="100")
    pm.get_by_role("button", name="Create experiment").click()
    field = pm.locator("[data-field=treatmentPercentage]")
    expect(field.locator(".field-errors")).to_contain_text("must be above 0 and below 100")
    treatment = pm.get_by_label("Treatment share of enrolled users (%)")
    expect(treatment).to_have_attribute("aria-invalid", "true")
    expect(treatment).to_have_accessible_description(re.compile("must be above 0 and below 100"))
    expect(treatment).to_be_focused()  # the keyboard is taken to the refused field
    expect(pm.get_by_role("alert").filter(has_text="INVALID_ARGUMENT")).to_be_visible()
    assert experiments_named(firestore_db, NAME) == [], "a refused create wrote an experiment"
    Console.shot(pm, "03a-create-invalid-field")

    treatment.fill("50")
    pm.get_by_role("button", name="Create experiment").click()
    expect(pm.locator("article.experiment h1")).to_contain_text(NAME)
    eid = experiment_id_from(pm)
    stored = firestore_db.collection("offerExperiments").document(eid).get().to_dict()
    assert stored["treatmentPercentage"] == 50 and stored["approvers"] == ["ceo@company.com", "cfo@company.com"]
    assert (stored["placement"], stored["trafficPercentage"]) == (PLACEMENT, 80)
    expect(pm.get_by_test_id("placement")).to_have_text(PLACEMENT)
    expect(pm.locator("article.experiment .page-head")).to_contain_text("(80 % of its traffic)")
    plan = firestore_db.collection("rolloutPlans").document(eid).get().to_dict()
    assert [s["percentage"] for s in plan["stages"]] == [20, 50] and plan["stages"][0]["minExposuresPerArm"] == 5
    expect(pm.locator("article.experiment h1")).to_contain_text("Draft")
    checklist = pm.locator("#checklist")
    expect(checklist.locator("li[data-item=approvals]")).to_have_class(re.compile(r"\bbad\b"))
    expect(checklist.locator("li[data-item=rollout_plan]")).to_contain_text("20 % → 50 %")
    expect(pm.get_by_role("button", name="Start experiment")).to_have_count(0)  # not approved yet
    Console.shot(pm, "03b-experiment-draft")
    pm.get_by_role("button", name="Submit for approval").click()
    expect(pm.locator("article.experiment h1")).to_contain_text("Pending approval")

    # --- the CEO and the CFO approve from their inboxes ----------------------------------------------------
    approve_from_inbox(console, "ceo@company.com", "Pricing sign-off")
    cfo = approve_from_inbox(console, "cfo@company.com", "Revenue at risk is bounded by the rollout")
    stored = firestore_db.collection("offerExperiments").document(eid).get().to_dict()
    assert stored["status"] == "APPROVED" and set(stored["approvals"]) == {"ceo@company.com", "cfo@company.com"}

    # --- an approver cannot start it: no start button, and the server refuses ----------------------------------
    cfo.get_by_role("link", name=NAME).click()
    expect(cfo.locator("article.experiment h1")).to_contain_text("Approved")
    expect(cfo.locator("tr[data-approver='cfo@company.com']")).to_contain_text("Revenue at risk is bounded")
    expect(cfo.get_by_role("button", name="Start experiment")).to_have_count(0)
    expect(cfo.get_by_role("toolbar", name="Experiment commands")).to_contain_text("Reject")
    Console.shot(cfo, "05-experiment-approver-view")
    with pytest.raises(PermissionDenied):
        clients.approver("cfo").start_experiment(eid)
    assert firestore_db.collection("offerExperiments").document(eid).get().get("status") == "APPROVED"

    # --- the PM starts it -------------------------------------------------------------------------------
    pm.reload()
    expect(pm.locator("#checklist")).to_contain_text("All 12 checks pass.")
    expect(pm.locator("#checklist li[data-item=holdout_coverage]")).to_contain_text("scope (global) includes the experiment")
    pm.get_by_role("button", name="Start experiment").click()
    expect(pm.locator("article.experiment h1")).to_contain_text("Running")
    expect(pm.locator("#monitor")).to_contain_text("Stage")
    expect(pm.locator("#monitor .monitor-head")).to_contain_text("20 %")
    Console.shot(pm, "06-experiment-running")

    # --- users ask for their offer (the app's side), then the analyst watches -------------------------------------
    service = clients.service()
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda i: service.get_placement_offer(PLACEMENT, user_id=f"console-user-{i}"), range(USERS)))
    arms = Counter(a["arm"] for a in answers if a["experimentId"] == eid)
    # 80 % of the placement's traffic: the others are nobody's (API.md §10).
    assert {a["reason"] for a in answers if a["experimentId"] is None} <= {"not_in_traffic"}
    exposed = {arm: arms.get(arm, 0) for arm in ("CONTROL", "TREATMENT", "HOLDOUT")}
    assert sum(exposed.values()) > 0, arms

    analyst = console.sign_in("analyst@company.com")
    expect(analyst.get_by_role("link", name="New experiment")).to_have_count(0)
    row = analyst.locator(f"tr[data-experiment='{eid}']")
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("20 %")
    expect(row.locator("[data-column=placement]")).to_contain_text(PLACEMENT)
    expect(row.locator("[data-column=placement]")).to_contain_text("80 % of its traffic")
    row.get_by_role("link", name=NAME).click()
    monitor = analyst.locator("#monitor")
    chart = monitor.get_by_role("img", name=re.compile("Exposures per arm"))
    expect(chart).to_have_attribute(
        "aria-label", f"Exposures per arm: CONTROL {exposed['CONTROL']}, TREATMENT {exposed['TREATMENT']}, HOLDOUT {exposed['HOLDOUT']}")
    expect(monitor.locator(".monitor-head")).to_contain_text(f"{sum(exposed.values())}")
    expect(analyst.get_by_role("button", name="Start experiment")).to_have_count(0)
    expect(analyst.get_by_role("button", name=re.compile("Pause experiment"))).to_have_count(0)  # read-only role
    expect(analyst.locator("#rollout")).to_contain_text("Can the rollout progress?")
    Console.shot(analyst, "07-monitor-analyst")

    analyst.get_by_label("Metric").select_option("net_ltv")
    analyst.get_by_role("button", name="Run analysis").click()
    card = analyst.locator("[data-analysis-card]")
    expect(card).to_be_visible()
    analysis_id = card.get_attribute("data-analysis-card")
    stored = firestore_db.collection("experimentAnalyses").document(analysis_id).get().to_dict()
    assert stored["experimentId"] == eid and stored["metric"] == "net_ltv"
    expect(card.locator("h3")).to_contain_text(stored["dataQuality"].capitalize())
    expect(card).to_contain_text("Recommendation: " + stored["recommendation"].replace("_", " ").lower().capitalize())
    expect(analyst.locator(f"tr[data-analysis='{analysis_id}']")).to_contain_text(
        f"{stored['sampleSizes']['CONTROL']} / {stored['sampleSizes']['TREATMENT']}")
    Console.shot(analyst, "08-analysis")

    # --- the ledger verifies; the board report and the CSV export --------------------------------------------------
    analyst.get_by_role("link", name="Audit", exact=True).click()
    analyst.get_by_label("Ledger of").select_option(eid)
    trail = analyst.locator("#trail")
    for _ in range(20):  # the ledger triggers seal entries asynchronously
        if trail.locator("tbody tr").filter(has_text="Experiment started").count():
            break
        trail.get_by_role("button", name="Refresh").click()
        analyst.wait_for_timeout(1500)
    expect(trail.locator("tbody tr").filter(has_text="Experiment created")).to_have_count(1)
    expect(trail.locator("tbody tr").filter(has_text="Experiment started")).to_have_count(1)
    analyst.get_by_role("button", name="Verify ledger").click()
    verdict = analyst.locator("#verify .verification")
    expect(verdict).to_have_attribute("data-valid", "true")
    server = clients.analyst().verify_ledger(eid)
    assert server["valid"] is True
    expect(verdict).to_contain_text(f"{server['entriesChecked']} entries checked")
    assert server["entriesChecked"] >= trail.locator("tbody tr").count() >= 6
    # Checked against the checkpoint published outside the database (API.md §12).
    published = server["checkpoint"]
    assert published["signatureVerified"] is True
    expect(verdict.locator("[data-checkpoint-line]")).to_contain_text(
        f"checked against the checkpoint published at tree size {published['treeSize']}, root {published['rootHash']}: signature verified")

    # The signed checkpoint, its signature checked in the browser with the verifier key.
    checkpoint = clients.analyst().call("get_checkpoint", {"experimentId": eid})
    signed = analyst.locator("#checkpoint")
    expect(signed.locator("[data-signature]")).to_have_attribute("data-signature", "true")
    expect(signed).to_contain_text(checkpoint["rootHash"])
    expect(signed).to_contain_text(checkpoint["verifierKey"])

    # An inclusion proof of the start, recomputed in the browser from the entry's bytes (RFC 9162).
    started = next(e for e in clients.analyst().get_audit_trail(eid)["entries"] if e["eventType"] == "EXPERIMENT_STARTED")
    inclusion = analyst.locator("#inclusion")
    inclusion.get_by_label("Entry to prove").select_option(str(started["sequence"]))
    inclusion.get_by_role("button", name="Prove inclusion").click()
    result = inclusion.locator("[data-included]")
    expect(result).to_have_attribute("data-included", "true")
    expect(result).to_contain_text(f"Entry #{started['sequence']} is in the signed tree")
    proof = clients.analyst().call("get_inclusion_proof", {"experimentId": eid, "sequence": started["sequence"]})
    expect(result).to_contain_text(proof["leafHash"])
    for sibling in proof["proof"]:
        expect(result).to_contain_text(sibling)
    Console.shot(analyst, "09b-audit-proof")

    # A proof with one sibling hash altered on the wire does not verify in the browser.
    def tamper(route):
        response = route.fetch()
        body = response.json()
        hashes = body["result"]["proof"]
        hashes[0] = ("B" if hashes[0][0] != "B" else "C") + hashes[0][1:]
        route.fulfill(response=response, json=body)

    analyst.route("**/get_inclusion_proof", tamper)
    inclusion.get_by_role("button", name="Prove inclusion").click()
    expect(result).to_have_attribute("data-included", "false")
    expect(result).to_contain_text("differs")
    analyst.unroute("**/get_inclusion_proof")

    # A checkpoint whose root was rewritten on the wire fails its signature check in the browser.
    def rewrite(route):
        response = route.fetch()
        body = response.json()
        forged = ("A" if body["result"]["rootHash"][0] != "A" else "B") + body["result"]["rootHash"][1:]
        body["result"]["checkpoint"] = body["result"]["checkpoint"].replace(body["result"]["rootHash"], forged)
        body["result"]["rootHash"] = forged
        route.fulfill(response=response, json=body)

    analyst.route("**/get_checkpoint", rewrite)
    signed.get_by_role("button", name="Refresh").click()
    expect(signed.locator("[data-signature]")).to_have_attribute("data-signature", "false")
    expect(signed.locator("[data-signature]")).to_contain_text("no valid signature by the verifier key")
    analyst.unroute("**/get_checkpoint")
    signed.get_by_role("button", name="Refresh").click()
    expect(signed.locator("[data-signature]")).to_have_attribute("data-signature", "true")

    analyst.get_by_role("button", name="Show board report").click()
    report = analyst.frame_locator("iframe.report")
    expect(report.locator("body")).to_contain_text(NAME)
    with analyst.expect_download() as download:
        analyst.get_by_role("button", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(rows) > 2 and any(eid in cell for r in rows for cell in r), rows[:3]
    Console.shot(analyst, "09-audit")

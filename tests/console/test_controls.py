"""The experiment page's controls follow the role, and they act: the PM pauses and resumes the rollout with a
reason, the admin (only) sees kill and abort and kills with a reason; editing a submitted experiment warns,
saves, and voids the approvals. Each asserts on the page and on what the server then holds."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console.conftest import Console
from tests.e2e.test_experiment_lifecycle import experiment_body, frozen_cohort, running_experiment


def open_experiment(page: Page, experiment_id: str) -> None:
    Console.go(page, f"#/experiments/{experiment_id}")
    expect(page.locator("article.experiment h1")).to_be_visible()


def give_reason(page: Page, opener: str, field: str, reason: str) -> None:
    """A ReasonAction: open it, type the reason, confirm with the same command."""
    page.get_by_role("button", name=f"{opener}…", exact=True).click()
    page.get_by_label(field).fill(reason)
    page.get_by_role("button", name=opener, exact=True).click()


def test_rollout_and_lifecycle_controls_follow_the_role(console: Console, clients, firestore_db):
    experiment, _ = running_experiment(clients, stages=(10, 50))
    eid = experiment["experimentId"]

    pm = console.sign_in("pm@company.com")
    open_experiment(pm, eid)
    commands = pm.get_by_role("toolbar", name="Experiment commands")
    rollout = pm.get_by_role("toolbar", name="Rollout controls")
    expect(commands.get_by_role("button", name="Pause experiment…")).to_be_visible()
    expect(commands.get_by_role("button", name="Complete experiment")).to_be_visible()
    expect(commands.get_by_role("button", name="Kill experiment…")).to_have_count(0)  # admin only
    expect(rollout.get_by_role("button", name="Abort rollout…")).to_have_count(0)  # admin only
    # The stage has not met its requirements (24 h, 100 exposures per arm): progressing is offered but blocked.
    expect(rollout.get_by_role("button", name="Progress to next stage")).to_be_disabled()
    expect(pm.locator("#rollout")).to_contain_text("Not yet.")

    give_reason(pm, "Pause rollout", "Reason for pausing the rollout", "Support queue overloaded")
    expect(pm.locator("#rollout")).to_contain_text("Paused")
    plan = firestore_db.collection("rolloutPlans").document(eid).get().to_dict()
    assert plan["status"] == "PAUSED" and plan["statusReason"] == "Support queue overloaded"
    expect(pm.locator("#timeline")).to_contain_text("Rollout paused")
    pm.get_by_role("button", name="Resume rollout").click()
    expect(pm.locator("#rollout .kv")).to_contain_text("Active")
    assert firestore_db.collection("rolloutPlans").document(eid).get().get("status") == "ACTIVE"

    admin = console.sign_in("admin@company.com")
    open_experiment(admin, eid)
    expect(admin.get_by_role("toolbar", name="Rollout controls").get_by_role("button", name="Abort rollout…")).to_be_visible()
    Console.shot(admin, "11-controls-admin")
    give_reason(admin, "Kill experiment", "Reason for killing it", "Pricing error found in the store listing")
    expect(admin.locator("article.experiment h1")).to_contain_text("Killed")
    expect(admin.locator("article.experiment")).to_contain_text("Last reason: Pricing error found in the store listing")
    stored = firestore_db.collection("offerExperiments").document(eid).get().to_dict()
    assert stored["status"] == "KILLED" and stored["statusReason"] == "Pricing error found in the store listing"
    expect(admin.get_by_role("button", name="Kill experiment…")).to_have_count(0)  # nothing left to kill


def test_editing_a_submitted_experiment_warns_saves_and_voids_the_approvals(console: Console, clients, firestore_db):
    cohort = frozen_cohort(clients)
    pm_client = clients.experimenter()
    body = experiment_body(cohort["cohortId"])
    eid = pm_client.call("create_experiment", body)["experimentId"]
    pm_client.create_rollout_plan(eid, stages=[5, 50])
    pm_client.submit_for_approval(eid)
    clients.approver("ceo").approve_experiment(eid, comment="fine by me")

    pm = console.sign_in("pm@company.com")
    open_experiment(pm, eid)
    pm.get_by_role("link", name="Edit").click()
    # The form holds what the server holds.
    expect(pm.get_by_role("region", name="What and why").get_by_label("Name", exact=True)).to_have_value(body["name"])
    expect(pm.get_by_label("Treatment share of enrolled users (%)")).to_have_value("50")
    expect(pm.get_by_label("Stages (% of users, in order)")).to_have_value("5, 50")
    expect(pm.get_by_label("Holdout cohort")).to_have_value(cohort["cohortId"])
    expect(pm.get_by_role("note")).to_contain_text("saving an edit voids every approval")
    pm.get_by_label("Treatment share of enrolled users (%)").fill("40")
    Console.shot(pm, "12-edit-submitted")
    pm.get_by_role("button", name="Save changes").click()
    expect(pm.locator("article.experiment h1")).to_contain_text("Draft")
    expect(pm.locator("tr[data-approver='ceo@company.com']")).to_contain_text("Waiting")
    stored = firestore_db.collection("offerExperiments").document(eid).get().to_dict()
    assert stored["status"] == "DRAFT" and stored["treatmentPercentage"] == 40 and not stored.get("approvals")
    assert re.search(r"treatment 40 % of enrolled", pm.locator("article.experiment").inner_text())

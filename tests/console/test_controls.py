"""The experiment page's controls follow the role, and they act: the PM pauses and resumes the rollout with a
reason, the admin (only) sees kill and abort and kills with a reason; editing a submitted experiment warns,
saves, and voids the approvals; an acknowledged alert stops blocking the rollout. Each asserts on the page and
on what the server then holds."""
from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.console.conftest import Console
from tests.e2e.test_experiment_lifecycle import experiment_body, frozen_cohort, running_experiment
from tests.integration.test_analytics import running_experiment as analytics_running_experiment
from tests.integration.test_analytics import seed, totals_doc


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


def test_an_acknowledged_alert_no_longer_blocks_the_rollout(console: Console, clients, firestore_db):
    """A guardrail with violationAction ALERT is breached (check_guardrails, as the sweep would); the monitor
    shows each kind of guardrail; the alert blocks the stage (check_stage_progress's blocking list); the PM
    acknowledges it with a comment and the blocking list no longer names it."""
    guardrails = [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "ALERT"},
                  {"kpiName": "ARPU drop", "metric": "arpu", "maxRelativeDelta": 10, "violationAction": "ALERT"}]
    eid = analytics_running_experiment(clients, guardrails)["experimentId"]  # also a Churn Rate GUARDRAIL KPI
    tag = uuid.uuid4().hex[:6]
    seed(firestore_db, eid, [(f"{tag}-{arm[0]}{i}", arm, totals_doc(eid, f"{tag}-{arm[0]}{i}", arm, purchase=9.99, refunds=int(i % 3 == 0)))
                             for arm in ("CONTROL", "TREATMENT") for i in range(300)])
    pm_client = clients.experimenter()
    assert pm_client.check_guardrails(eid)["actionTaken"] == "ALERT"
    blocking_before = pm_client.check_stage_progress(eid)["blocking"]
    alert_lines = [b for b in blocking_before if "alert" in b]
    assert alert_lines, blocking_before

    pm = console.sign_in("pm@company.com")
    open_experiment(pm, eid)
    monitor = pm.locator("#monitor")
    expect(monitor.locator("tr[data-guardrail='Refund Rate']")).to_contain_text("Breached")
    expect(monitor.locator("tr[data-guardrail='Refund Rate']")).to_have_attribute("data-kind", "absolute")
    expect(monitor.locator("tr[data-guardrail='ARPU drop']")).to_have_attribute("data-kind", "relative")
    expect(monitor.locator("tr[data-guardrail='ARPU drop']")).to_contain_text("relative to control")
    expect(monitor.locator("tr[data-guardrail='Churn Rate']").first).to_have_attribute("data-kind", "kpi")
    blocking = pm.locator("#rollout .stage-check ul.bad-list")
    for line in alert_lines:
        expect(blocking).to_contain_text(line)
    alerts = pm.locator("#alerts")
    expect(alerts.locator("h2")).to_contain_text("Alerts (1 open)")
    Console.shot(pm, "18-alert-blocking")

    row = alerts.locator("tr[data-alert]").filter(has_text="Refund")
    row.get_by_role("button", name="Acknowledge…").click()
    row.get_by_label("What was done about it").fill("Refunds from a known test batch; support confirmed")
    row.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(alerts.locator("h2")).to_contain_text("Alerts (0 open)")
    expect(row.locator("[data-acknowledged]")).to_contain_text("Acknowledged by pm@company.com")
    expect(row.locator("[data-acknowledged]")).to_contain_text("Refunds from a known test batch; support confirmed")
    blocking_after = pm_client.check_stage_progress(eid)["blocking"]
    assert not [b for b in blocking_after if "alert" in b], blocking_after
    stage_check = pm.locator("#rollout .stage-check")
    for line in alert_lines:
        expect(stage_check).not_to_contain_text(line)
    for line in blocking_after:
        expect(stage_check.locator("ul.bad-list")).to_contain_text(line)
    alert = firestore_db.collection("experimentAlerts").document(row.get_attribute("data-alert")).get().to_dict()
    assert alert["acknowledged"] is True and alert["acknowledgementComment"] == "Refunds from a known test batch; support confirmed"
    expect(pm.locator("#timeline")).to_contain_text("Experiment alert acknowledged")
    Console.shot(pm, "19-alert-acknowledged")

"""The lifecycle over HTTP, as the back office calls it (issue 5 "Done when"): DRAFT → PENDING_APPROVAL →
APPROVED → RUNNING → PAUSED → RUNNING → COMPLETED with tokens of different roles, and every refusal case:
wrong role, wrong person, illegal transition, incomplete checklist, bad payload — each writing nothing."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from offerlab.store import experiments as repo
from offerlab_client import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated


def experiment_body(cohort_id, **over):
    now = datetime.now(timezone.utc)
    body = {
        "name": f"Premium price test {uuid.uuid4().hex[:6]}", "description": "Test $9.99 vs $12.99",
        "hypothesis": {"statement": "Increasing price to $12.99 will increase net LTV by 15%",
                       "expectedImpact": "+15% net LTV", "risksIdentified": ["Churn increase"],
                       "successCriteria": ["LTV increase >10%"]},
        "kpis": [{"name": "Net LTV", "type": "PRIMARY", "metric": "net_ltv", "baselineValue": 100,
                  "targetValue": 115, "direction": "INCREASE"},
                 {"name": "Churn Rate", "type": "GUARDRAIL", "metric": "churn_rate", "threshold": 0.05,
                  "direction": "MAINTAIN"}],
        "guardrails": [{"kpiName": "Refund Rate", "metric": "refund_rate", "maxThreshold": 0.02, "violationAction": "KILL"}],
        "holdoutCohortId": cohort_id, "treatmentPercentage": 50, "offerType": "PRICE_CHANGE",
        "offerConfig": {"newPrice": 12.99, "productId": "pro_1299"}, "controlConfig": {"newPrice": 9.99, "productId": "pro_999"},
        "plannedStartDate": now.isoformat().replace("+00:00", "Z"),
        "plannedEndDate": (now + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        "approvers": ["ceo@company.com", "cfo@company.com"],
        # Its own placement (experiments of one placement are mutually exclusive, API.md §10): the one its
        # cohort is scoped to when frozen_cohort made it, so the tests of a module never cover each other.
        "placement": PLACEMENT_OF.get(cohort_id) or f"p-{uuid.uuid4().hex[:12]}",
    }
    body.update(over)
    return body


# cohortId -> the placement its scope names (frozen_cohort): experiment_body puts the experiment there.
PLACEMENT_OF: dict[str, str] = {}


def frozen_cohort(clients, percentage=10):
    """A FROZEN cohort scoped to a placement of its own (API.md §10): a global one would cover every
    experiment later started in the module, and could not be frozen while another test's experiment runs."""
    pm = clients.experimenter()
    placement = f"p-{uuid.uuid4().hex[:12]}"
    cohort = pm.create_scoped_holdout_cohort(name=f"holdout {uuid.uuid4().hex[:6]}", percentage=percentage,
                                             placements=[placement])
    PLACEMENT_OF[cohort["cohortId"]] = placement
    return pm.freeze_holdout_cohort(cohort["cohortId"])


def running_experiment(clients, stages=(100,), treatment=50, holdout=10):
    """A RUNNING experiment over HTTP; returns (experiment, cohort)."""
    cohort = frozen_cohort(clients, holdout)
    pm = clients.experimenter()
    exp = pm.call("create_experiment", experiment_body(cohort["cohortId"], treatmentPercentage=treatment))
    pm.create_rollout_plan(exp["experimentId"], stages=list(stages))
    pm.submit_for_approval(exp["experimentId"])
    clients.approver("ceo").approve_experiment(exp["experimentId"])
    clients.approver("cfo").approve_experiment(exp["experimentId"])
    return pm.start_experiment(exp["experimentId"]), cohort


def version_of(experiment_id):
    return repo.get_experiment(experiment_id).version


def refused(exc, call, experiment_id=None):
    """The call fails with ``exc`` and (when an experiment is named) writes nothing."""
    before = version_of(experiment_id) if experiment_id else None
    with pytest.raises(exc) as err:
        call()
    if experiment_id:
        assert version_of(experiment_id) == before
    assert "Traceback" not in err.value.message
    return err.value


def test_the_full_lifecycle_with_every_refusal(clients, firestore_db):
    pm, ceo, cfo = clients.experimenter(), clients.approver("ceo"), clients.approver("cfo")
    other_pm = clients.experimenter("pm2")
    admin, analyst = clients.admin(), clients.analyst()
    cohort = frozen_cohort(clients)
    body = experiment_body(cohort["cohortId"])

    # --- create: who may, and what is valid
    refused(Unauthenticated, lambda: clients.anonymous().call("create_experiment", body))
    for caller in (analyst, ceo, clients.service(), clients.end_user("u1")):
        refused(PermissionDenied, lambda: caller.call("create_experiment", body))
    bad = refused(InvalidArgument, lambda: pm.call("create_experiment", {
        **body, "treatmentPercentage": 100, "kpis": [{**body["kpis"][0], "metric": "vibes"}], "surprise": 1}))
    assert set(bad.field_paths) == {"treatmentPercentage", "kpis.0.metric", "surprise"}
    bad = refused(InvalidArgument, lambda: pm.call("create_experiment", {**body, "approvers": ["pm@company.com"]}))
    assert bad.field_paths == ["approvers"]
    bad = refused(InvalidArgument, lambda: pm.call("create_experiment", {**body, "plannedEndDate": body["plannedStartDate"]}))
    exp = pm.call("create_experiment", body)
    eid = exp["experimentId"]
    assert exp["status"] == "DRAFT" and len(exp["salt"]) == 32 and exp["author"] == "pm@company.com"
    assert exp["version"] == 1

    # --- DRAFT: only the author submits; nothing else moves
    refused(PermissionDenied, lambda: other_pm.submit_for_approval(eid), eid)
    refused(FailedPrecondition, lambda: ceo.approve_experiment(eid), eid)
    refused(FailedPrecondition, lambda: pm.pause_experiment(eid, "x"), eid)
    checklist = refused(FailedPrecondition, lambda: pm.start_experiment(eid), eid).details["checklist"]
    assert {i["item"] for i in checklist if not i["ok"]} == {"approvals", "rollout_plan"}
    refused(NotFound, lambda: pm.submit_for_approval("no-such-experiment"))

    assert pm.submit_for_approval(eid)["status"] == "PENDING_APPROVAL"
    refused(FailedPrecondition, lambda: pm.submit_for_approval(eid), eid)

    # --- approvals: listed approvers with the role, never the author, once each
    refused(PermissionDenied, lambda: clients.approver("cto").approve_experiment(eid), eid)          # not listed
    refused(PermissionDenied, lambda: clients.as_("ceo-uid", "ceo@company.com", ("experimenter",)).approve_experiment(eid), eid)
    refused(PermissionDenied, lambda: clients.as_("pm-uid", "pm@company.com", ("approver",)).approve_experiment(eid), eid)
    refused(PermissionDenied, lambda: pm.approve_experiment(eid), eid)
    partial = ceo.approve_experiment(eid, comment="fine by me")
    assert partial["status"] == "PENDING_APPROVAL" and set(partial["approvals"]) == {"ceo@company.com"}
    refused(FailedPrecondition, lambda: ceo.approve_experiment(eid), eid)

    # --- an edit after submission voids the approvals and returns to DRAFT
    refused(PermissionDenied, lambda: other_pm.update_experiment(eid, offer_config={"newPrice": 11.99, "productId": "pro_1199"}), eid)
    refused(InvalidArgument, lambda: pm.call("update_experiment", {"experimentId": eid}), eid)
    edited = pm.update_experiment(eid, offer_config={"newPrice": 11.99, "productId": "pro_1199"})
    assert edited["status"] == "DRAFT" and edited["approvals"] == {} and edited["offerConfig"] == {"newPrice": 11.99, "productId": "pro_1199"}

    # --- a rejection returns to DRAFT with the reason
    pm.submit_for_approval(eid)
    refused(InvalidArgument, lambda: cfo.call("reject_experiment", {"experimentId": eid}), eid)
    rejected = cfo.reject_experiment(eid, reason="Needs a churn guardrail at 3%")
    assert rejected["status"] == "DRAFT" and rejected["statusReason"] == "Needs a churn guardrail at 3%"

    # --- approved, then the checklist: the rollout plan is missing
    pm.submit_for_approval(eid)
    ceo.approve_experiment(eid)
    assert cfo.approve_experiment(eid)["status"] == "APPROVED"
    checklist = refused(FailedPrecondition, lambda: pm.start_experiment(eid), eid).details["checklist"]
    assert [i["item"] for i in checklist if not i["ok"]] == ["rollout_plan"]
    assert [i["item"] for i in checklist] == ["frozen_holdout", "hypothesis", "primary_kpi", "guardrails",
                                              "spillover_isolation", "approvals", "kill_switch",
                                              "ledger_recording", "rollout_plan", "holdout_coverage",
                                              "placement_capacity", "compliance"]
    refused(PermissionDenied, lambda: other_pm.create_rollout_plan(eid), eid)
    refused(InvalidArgument, lambda: pm.create_rollout_plan(eid, stages=[5, 5]))
    refused(InvalidArgument, lambda: pm.create_rollout_plan(eid, stages=[0]))
    plan = pm.create_rollout_plan(eid, stages=[{"percentage": 10, "minHoursAtStage": 1}, 50])
    assert plan["status"] == "PLANNED" and [s["percentage"] for s in plan["stages"]] == [10, 50]
    assert plan["stages"][0]["minHoursAtStage"] == 1 and plan["stages"][1]["minHoursAtStage"] == 24
    assert plan["stages"][1]["minExposuresPerArm"] == 100

    # --- start, pause, resume, complete
    refused(PermissionDenied, lambda: other_pm.start_experiment(eid), eid)
    refused(PermissionDenied, lambda: ceo.start_experiment(eid), eid)
    running = pm.start_experiment(eid)
    assert running["status"] == "RUNNING" and running["coverage"] == 10 and running["stageIndex"] == 0
    refused(FailedPrecondition, lambda: pm.update_experiment(eid, offer_config={"newPrice": 1}), eid)
    refused(FailedPrecondition, lambda: pm.resume_experiment(eid), eid)
    refused(FailedPrecondition, lambda: cfo.reject_experiment(eid, "too late"), eid)
    refused(PermissionDenied, lambda: analyst.pause_experiment(eid, "x"), eid)
    refused(PermissionDenied, lambda: other_pm.pause_experiment(eid, "x"), eid)
    assert pm.pause_experiment(eid, reason="Checking refund numbers")["status"] == "PAUSED"
    refused(FailedPrecondition, lambda: pm.pause_experiment(eid, "again"), eid)
    refused(FailedPrecondition, lambda: pm.update_experiment(eid, name="renamed"), eid)
    assert pm.resume_experiment(eid)["status"] == "RUNNING"
    refused(PermissionDenied, lambda: pm.kill_experiment(eid, "no"), eid)
    done = pm.complete_experiment(eid)
    assert done["status"] == "COMPLETED" and done["endedAt"]
    for call in (lambda: pm.resume_experiment(eid), lambda: pm.pause_experiment(eid, "x"),
                 lambda: admin.kill_experiment(eid, "x"), lambda: pm.complete_experiment(eid),
                 lambda: pm.update_experiment(eid, name="x")):
        refused(FailedPrecondition, call, eid)

    # --- the ledger sees every step, in order, with the actor
    events = repo.list_events(eid)
    assert [e["eventType"] for e in events] == [
        "EXPERIMENT_CREATED", "EXPERIMENT_SUBMITTED", "EXPERIMENT_APPROVAL_RECORDED", "EXPERIMENT_UPDATED",
        "EXPERIMENT_SUBMITTED", "EXPERIMENT_REJECTED", "EXPERIMENT_SUBMITTED", "EXPERIMENT_APPROVAL_RECORDED",
        "EXPERIMENT_APPROVED", "EXPERIMENT_STARTED", "EXPERIMENT_PAUSED", "EXPERIMENT_RESUMED", "EXPERIMENT_COMPLETED"]
    assert [e["version"] for e in events] == list(range(1, 14))
    assert [e["actor"] for e in events][5] == "cfo@company.com"
    assert events[5]["payload"]["reason"] == "Needs a churn guardrail at 3%"
    assert events[3]["payload"]["approvalsVoided"] == ["ceo@company.com"]
    assert events[10]["payload"]["reason"] == "Checking refund numbers"
    stored = firestore_db.collection("offerExperiments").document(eid).get().to_dict()
    assert stored["version"] == 13 and stored["lastChange"]["action"] == "EXPERIMENT_COMPLETED"
    assert stored["lastChange"]["version"] == 13 and stored["lastChange"]["actor"] == "pm@company.com"


def test_an_admin_kills_and_acts_for_any_author(clients):
    running, _ = running_experiment(clients, stages=(5,))
    eid = running["experimentId"]
    admin = clients.admin()
    refused(InvalidArgument, lambda: admin.call("kill_experiment", {"experimentId": eid}), eid)
    assert admin.pause_experiment(eid, "admin pause")["status"] == "PAUSED"
    killed = admin.kill_experiment(eid, reason="Refund spike")
    assert killed["status"] == "KILLED" and killed["statusReason"] == "Refund spike"
    last = repo.list_events(eid)[-1]
    assert last["eventType"] == "EXPERIMENT_KILLED" and last["actor"] == "admin@company.com"
    assert last["payload"] == {"reason": "Refund spike", "source": "kill_experiment"}
    refused(FailedPrecondition, lambda: admin.kill_experiment(eid, "again"), eid)


def test_the_checklist_reports_an_unfrozen_leaky_cohort(clients):
    pm = clients.experimenter()
    cohort = pm.create_holdout_cohort(name="leaky", percentage=5, spillover_policy={"gift": "ALLOW"})
    exp = pm.call("create_experiment", experiment_body(cohort["cohortId"], guardrails=[],
                                                      kpis=[experiment_body("x")["kpis"][1]]))
    pm.create_rollout_plan(exp["experimentId"])
    pm.submit_for_approval(exp["experimentId"])
    clients.approver("ceo").approve_experiment(exp["experimentId"])
    clients.approver("cfo").approve_experiment(exp["experimentId"])
    err = refused(FailedPrecondition, lambda: pm.start_experiment(exp["experimentId"]), exp["experimentId"])
    failing = {i["item"] for i in err.details["checklist"] if not i["ok"]}
    assert failing == {"frozen_holdout", "primary_kpi", "guardrails", "spillover_isolation"}

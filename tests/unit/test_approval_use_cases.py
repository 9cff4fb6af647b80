"""Approvals on the in-memory store: submit, approve (one event per approval; APPROVED only when every
listed approver approved), reject (back to DRAFT, every approval voided) and the start's approval check;
every refusal writes nothing. The same over HTTP with token roles: tests/e2e/test_experiment_lifecycle.py,
tests/reliability/test_roles.py."""
import pytest

from offerlab.api import experiments as m
from offerlab.api import rollouts as rm
from offerlab.domain.actors import Caller, Role
from offerlab.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from offerlab.service import experiments as svc
from offerlab.service import rollout_plans
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import ADMIN, CEO, CFO, OTHER_PM, PM, assert_chain, definition, frozen_cohort, refused

CTO = Caller("cto-uid", "cto@company.com", frozenset({Role.APPROVER}))
# Listed as an approver by email, but without the approver role in the token.
CFO_WITHOUT_ROLE = Caller("cfo-uid", "cfo@company.com", frozenset({Role.EXPERIMENTER}))


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def cohort_id(store):
    return frozen_cohort(store).cohort_id


def submitted(store, cohort_id, **over):
    e = svc.create_experiment(store, PM, definition(cohort_id, **over))
    return svc.submit_for_approval(store, PM, e.experiment_id)


def test_submission_asks_every_listed_approver(store, cohort_id):
    e = submitted(store, cohort_id)
    doc, events = assert_chain(store, e.experiment_id)
    assert doc.status.value == "PENDING_APPROVAL" and doc.approvals == {}
    assert events[-1]["eventType"] == "EXPERIMENT_SUBMITTED"
    assert events[-1]["payload"] == {"approvers": ["ceo@company.com", "cfo@company.com"]}
    refused(store, FailedPrecondition, lambda: svc.submit_for_approval(store, PM, e.experiment_id))


def test_each_approval_is_recorded_and_the_last_one_approves(store, cohort_id):
    e = submitted(store, cohort_id)
    first = svc.approve_experiment(store, CEO, e.experiment_id, "numbers look right")
    assert first.status.value == "PENDING_APPROVAL" and set(first.approvals) == {"ceo@company.com"}
    assert first.approvals["ceo@company.com"].comment == "numbers look right"
    _, events = assert_chain(store, e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_APPROVAL_RECORDED" and events[-1]["actor"] == "ceo@company.com"
    assert events[-1]["payload"] == {"approver": "ceo@company.com", "comment": "numbers look right",
                                     "approved": ["ceo@company.com"], "required": ["ceo@company.com", "cfo@company.com"]}
    last = svc.approve_experiment(store, CFO, e.experiment_id, None)
    assert last.status.value == "APPROVED" and set(last.approvals) == {"ceo@company.com", "cfo@company.com"}
    _, events = assert_chain(store, e.experiment_id)
    assert events[-1]["eventType"] == "EXPERIMENT_APPROVED" and events[-1]["fromStatus"] == "PENDING_APPROVAL"
    assert events[-1]["payload"]["approved"] == ["ceo@company.com", "cfo@company.com"]


def test_approving_twice_or_out_of_turn_is_refused_and_writes_nothing(store, cohort_id):
    draft = svc.create_experiment(store, PM, definition(cohort_id))
    refused(store, FailedPrecondition, lambda: svc.approve_experiment(store, CEO, draft.experiment_id, None))
    refused(store, FailedPrecondition, lambda: svc.reject_experiment(store, CEO, draft.experiment_id, "no"))
    e = submitted(store, cohort_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    err = refused(store, FailedPrecondition, lambda: svc.approve_experiment(store, CEO, e.experiment_id, "again"))
    assert "already approved" in err.value.message
    svc.approve_experiment(store, CFO, e.experiment_id, None)
    refused(store, FailedPrecondition, lambda: svc.approve_experiment(store, CFO, e.experiment_id, None))  # APPROVED


def test_only_listed_approvers_with_the_role_approve_and_never_the_author(store, cohort_id):
    e = submitted(store, cohort_id)
    for who in (CTO, OTHER_PM, ADMIN, CFO_WITHOUT_ROLE):
        refused(store, PermissionDenied, lambda: svc.approve_experiment(store, who, e.experiment_id, None))
        refused(store, PermissionDenied, lambda: svc.reject_experiment(store, who, e.experiment_id, "no"))
    # The author listed as an approver is refused at creation, and at any edit.
    refused(store, InvalidArgument, lambda: svc.create_experiment(store, PM, definition(
        cohort_id, approvers=["pm@company.com", "ceo@company.com"])))
    refused(store, InvalidArgument, lambda: svc.update_experiment(store, PM, m.UpdateExperiment(
        experiment_id=e.experiment_id, approvers=["ceo@company.com", "pm@company.com"])))


def test_a_listed_admin_approver_may_approve(store, cohort_id):
    e = submitted(store, cohort_id, approvers=["admin@company.com"])
    assert svc.approve_experiment(store, ADMIN, e.experiment_id, None).status.value == "APPROVED"


def test_a_rejection_after_approval_withdraws_consent_until_the_start(store, cohort_id):
    e = submitted(store, cohort_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    svc.approve_experiment(store, CFO, e.experiment_id, None)
    rejected = svc.reject_experiment(store, CEO, e.experiment_id, "the market moved")
    assert rejected.status.value == "DRAFT" and rejected.approvals == {} and rejected.status_reason == "the market moved"
    _, events = assert_chain(store, e.experiment_id)
    assert events[-1]["fromStatus"] == "APPROVED" and events[-1]["payload"] == {
        "reason": "the market moved", "approvalsVoided": ["ceo@company.com", "cfo@company.com"]}
    # Resubmitted, the approvals start from nothing.
    again = svc.submit_for_approval(store, PM, e.experiment_id)
    assert again.approvals == {} and again.status_reason is None


def test_an_edit_while_pending_voids_the_approvals_given_so_far(store, cohort_id):
    e = submitted(store, cohort_id)
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    edited = svc.update_experiment(store, PM, m.UpdateExperiment(experiment_id=e.experiment_id, name="renamed"))
    assert edited.status.value == "DRAFT" and edited.approvals == {} and edited.name == "renamed"
    _, events = assert_chain(store, e.experiment_id)
    assert events[-1]["payload"] == {"changedFields": ["name"], "approvalsVoided": ["ceo@company.com"]}


def test_the_start_lists_the_approvers_still_missing(store, cohort_id):
    e = submitted(store, cohort_id)
    rollout_plans.create_rollout_plan(store, PM, rm.CreateRolloutPlan(experiment_id=e.experiment_id, stages=[5, 50]))
    svc.approve_experiment(store, CEO, e.experiment_id, None)
    err = refused(store, FailedPrecondition, lambda: svc.start_experiment(store, PM, e.experiment_id))
    items = {i["item"]: i for i in err.value.details["checklist"]}
    assert items["approvals"]["ok"] is False and "cfo@company.com" in items["approvals"]["detail"]
    assert "ceo@company.com" not in items["approvals"]["detail"]
    assert {k for k, v in items.items() if not v["ok"]} == {"approvals"}


def test_the_launch_checklist_is_readable_by_whoever_decides_and_reading_it_writes_nothing():
    """get_launch_checklist: what start_experiment would decide now, for an approver too (who may not start)."""
    from offerlab.domain.errors import FailedPrecondition  # noqa: PLC0415
    from tests.unit.scenarios import ANALYST, CEO, PM, approved, definition, frozen_cohort, unchanged  # noqa: PLC0415

    store = InMemoryStore()
    cohort = frozen_cohort(store)
    draft = svc.create_experiment(store, PM, definition(cohort.cohort_id))
    seen = unchanged(store, lambda: svc.get_launch_checklist(store, CEO, draft.experiment_id))
    assert seen["ready"] is False and seen["status"] == "DRAFT"
    failing = {i["item"] for i in seen["checklist"] if not i["ok"]}
    assert failing == {"approvals", "rollout_plan"}
    with pytest.raises(FailedPrecondition) as err:  # the start refuses with exactly that list
        svc.start_experiment(store, PM, draft.experiment_id)
    assert err.value.details["checklist"] == seen["checklist"] and err.value.details["warnings"] == seen["warnings"]
    ready = approved(store, cohort.cohort_id)
    seen = unchanged(store, lambda: svc.get_launch_checklist(store, ANALYST, ready.experiment_id))
    assert seen["ready"] is True and all(i["ok"] for i in seen["checklist"])
    assert [w["item"] for w in seen["warnings"]] == ["power"]

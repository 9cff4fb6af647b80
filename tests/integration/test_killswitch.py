"""The kill-switch handler on the real Firestore emulator (service layer; the Pub/Sub path is e2e)."""
import uuid

from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service.killswitch import handle_kill_switch
from offerlab.store import experiments as repo
from tests.integration.test_experiment_transitions import PM, approved, assert_chain, definition
from offerlab.store.firestore_store import firestore_store

STORE = firestore_store()  # the store the functions use, on the emulator


def _running(cohort_id):
    e = approved(cohort_id)
    return svc.start_experiment(STORE, PM, e.experiment_id)


def _cohort():
    cohort = holdouts_svc.create_holdout_cohort(STORE, PM, f"ks {uuid.uuid4().hex[:6]}", 5, "", None)
    return holdouts_svc.freeze_holdout_cohort(STORE, PM, cohort.cohort_id).cohort_id


def test_one_experiment_is_killed_once_with_actor_and_reason(firestore_db):
    e = _running(_cohort())
    msg = {"experimentId": e.experiment_id, "reason": "refund spike", "actor": "oncall@company.com"}
    report = handle_kill_switch(STORE, msg, f"m-{uuid.uuid4().hex}")
    assert report.killed == [e.experiment_id]
    doc, events = assert_chain(e.experiment_id)
    assert doc.status.value == "KILLED" and doc.status_reason == "refund spike" and doc.ended_at is not None
    last = events[-1]
    assert last["eventType"] == "EXPERIMENT_KILLED" and last["actor"].startswith("oncall@company.com")
    assert last["payload"]["reason"] == "refund spike" and last["payload"]["source"] == "experiment-kill-switch"
    # The same message again, or a new one: nothing more is written.
    again = handle_kill_switch(STORE, msg, "m-other")
    assert again.killed == [] and e.experiment_id in again.skipped
    assert repo.get_experiment(e.experiment_id).version == doc.version


def test_a_draft_can_be_killed_by_id_and_unknown_ids_are_skipped(firestore_db):
    draft = svc.create_experiment(STORE, PM, definition(_cohort()))
    report = handle_kill_switch(STORE, {"experimentId": draft.experiment_id, "reason": "r", "actor": "a"}, f"m-{uuid.uuid4().hex}")
    assert report.killed == [draft.experiment_id]
    missing = handle_kill_switch(STORE, {"experimentId": "no-such-exp", "reason": "r", "actor": "a"}, f"m-{uuid.uuid4().hex}")
    assert missing.killed == [] and "no-such-exp" in missing.skipped


def test_star_kills_every_running_or_paused_experiment_only(firestore_db):
    cohort = _cohort()
    running = _running(cohort)
    paused = _running(cohort)
    svc.pause_experiment(STORE, PM, paused.experiment_id, "investigating")
    approved_only = approved(cohort)
    message_id = f"m-{uuid.uuid4().hex}"
    report = handle_kill_switch(STORE, {"experimentId": "*", "reason": "incident 42", "actor": "cto@company.com"}, message_id)
    assert {running.experiment_id, paused.experiment_id} <= set(report.killed)
    assert approved_only.experiment_id not in report.killed
    assert repo.get_experiment(approved_only.experiment_id).status.value == "APPROVED"
    for e in (running, paused):
        assert repo.get_experiment(e.experiment_id).status.value == "KILLED"
    redelivered = handle_kill_switch(STORE, {"experimentId": "*", "reason": "incident 42", "actor": "cto@company.com"}, message_id)
    assert running.experiment_id not in redelivered.killed


def test_malformed_messages_are_rejected(firestore_db):
    for bad in ({"reason": "r", "actor": "a"}, {"experimentId": "x", "actor": "a"}, {"experimentId": "x", "reason": "r"},
                [], "kill", {"experimentId": "a/b", "reason": "r", "actor": "a"}):
        assert handle_kill_switch(STORE, bad, f"m-{uuid.uuid4().hex}").rejected

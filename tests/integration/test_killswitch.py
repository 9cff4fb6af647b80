"""The kill-switch handler on the real Firestore emulator (service layer; the Pub/Sub path is e2e): one pass
of ``"*"`` over the real store — the status query lists what to kill, each kill is applied once per
(message, experiment) by the real ``apply_once``, a redelivery kills nothing twice.

Everything else the handler decides (one experiment, drafts, unknown ids, an experiment that does not obey
the kill switch, contention, malformed messages) is unit-tested on the in-memory store:
tests/unit/test_killswitch_use_cases.py."""
import uuid

from offerlab.service import experiments as svc
from offerlab.service import holdouts as holdouts_svc
from offerlab.service.killswitch import handle_kill_switch
from offerlab.store import experiments as repo
from offerlab.store.firestore_store import firestore_store
from tests.integration.test_experiment_transitions import PM, approved, assert_chain
from tests.placements import scoped

STORE = firestore_store()  # the store the functions use, on the emulator


def _running(cohort_id):
    e = approved(cohort_id)
    return svc.start_experiment(STORE, PM, e.experiment_id)


def _cohort():
    cohort = scoped(holdouts_svc.create_holdout_cohort, STORE, PM, f"ks {uuid.uuid4().hex[:6]}", 5, "", None)
    return holdouts_svc.freeze_holdout_cohort(STORE, PM, cohort.cohort_id).cohort_id


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
        doc, events = assert_chain(e.experiment_id)
        assert doc.status.value == "KILLED" and events[-1]["payload"]["reason"] == "incident 42"
        assert events[-1]["actor"] == "cto@company.com (via experiment-kill-switch)"
    versions = {e.experiment_id: repo.get_experiment(e.experiment_id).version for e in (running, paused)}
    redelivered = handle_kill_switch(STORE, {"experimentId": "*", "reason": "incident 42", "actor": "cto@company.com"}, message_id)
    assert running.experiment_id not in redelivered.killed and paused.experiment_id not in redelivered.killed
    assert {eid: repo.get_experiment(eid).version for eid in versions} == versions

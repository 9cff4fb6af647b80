"""The experiment-kill-switch handler (API.md §5) on the in-memory store.

One experiment: killed from any non-terminal state; ``"*"``: every RUNNING or PAUSED experiment that obeys
the kill switch. Each kill is the ordinary KILL transition (EXPERIMENT_KILLED with the actor and reason),
once per (message, experiment): a redelivered message kills nothing twice; one experiment failing does
not stop the others; a malformed message is rejected with nothing written. The Pub/Sub delivery itself:
tests/e2e/test_experiment_pubsub.py; one pass over the real store: tests/integration/test_killswitch.py.
"""
import uuid

import pytest

from offerlab.domain.errors import Aborted
from offerlab.service import experiments as svc
from offerlab.service import killswitch
from offerlab.service.killswitch import handle_kill_switch
from tests.unit.fakes import InMemoryStore
from tests.unit.scenarios import PM, approved, assert_chain, definition, frozen_cohort, running, unchanged


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def cohort_id(store):
    return frozen_cohort(store, 5).cohort_id


def message_id():
    return f"m-{uuid.uuid4().hex}"


def test_one_experiment_is_killed_once_with_actor_and_reason(store, cohort_id):
    e = running(store, cohort_id)
    msg = {"experimentId": e.experiment_id, "reason": "refund spike", "actor": "oncall@company.com"}
    mid = message_id()
    commits = store.db.commits
    report = handle_kill_switch(store, msg, mid)
    assert report.killed == [e.experiment_id] and report.skipped == {} and report.rejected == ""
    assert store.db.commits == commits + 1  # the kill, its event, the plan's close and the marker: one commit
    doc, events = assert_chain(store, e.experiment_id)
    assert doc.status.value == "KILLED" and doc.status_reason == "refund spike" and doc.ended_at is not None
    last = events[-1]
    assert last["eventType"] == "EXPERIMENT_KILLED" and last["actor"].startswith("oncall@company.com")
    assert last["actor"] == "oncall@company.com (via experiment-kill-switch)"
    assert last["payload"] == {"reason": "refund spike", "source": "experiment-kill-switch", "messageId": mid}
    assert store.plans.find(e.experiment_id).status.value == "ABORTED"
    # The same message again, or a new one: nothing more is written.
    again = unchanged(store, lambda: handle_kill_switch(store, msg, mid))
    assert again.killed == [] and again.skipped == {e.experiment_id: "message already processed"}
    other = unchanged(store, lambda: handle_kill_switch(store, msg, "m-other"))
    assert other.killed == [] and e.experiment_id in other.skipped
    assert store.experiments.get(e.experiment_id).version == doc.version


def test_a_draft_can_be_killed_by_id_and_unknown_ids_are_skipped(store, cohort_id):
    draft = svc.create_experiment(store, PM, definition(cohort_id))
    report = handle_kill_switch(store, {"experimentId": draft.experiment_id, "reason": "r", "actor": "a"}, message_id())
    assert report.killed == [draft.experiment_id]
    assert store.experiments.get(draft.experiment_id).status.value == "KILLED"
    missing = unchanged(store, lambda: handle_kill_switch(
        store, {"experimentId": "no-such-exp", "reason": "r", "actor": "a"}, message_id()))
    assert missing.killed == [] and "no-such-exp" in missing.skipped


def test_star_kills_every_running_or_paused_experiment_only(store, cohort_id):
    live = running(store, cohort_id)
    paused = running(store, cohort_id)
    svc.pause_experiment(store, PM, paused.experiment_id, "investigating")
    approved_only = approved(store, cohort_id)
    draft = svc.create_experiment(store, PM, definition(cohort_id))
    mid = message_id()
    star = {"experimentId": "*", "reason": "incident 42", "actor": "cto@company.com"}
    report = handle_kill_switch(store, star, mid)
    assert sorted(report.killed) == sorted([live.experiment_id, paused.experiment_id])
    assert store.experiments.get(approved_only.experiment_id).status.value == "APPROVED"
    assert store.experiments.get(draft.experiment_id).status.value == "DRAFT"
    for e in (live, paused):
        doc, events = assert_chain(store, e.experiment_id)
        assert doc.status.value == "KILLED" and events[-1]["payload"]["reason"] == "incident 42"
    redelivered = unchanged(store, lambda: handle_kill_switch(store, star, mid))
    assert redelivered.killed == [] and redelivered.skipped == {}  # nothing RUNNING or PAUSED is left to list
    assert unchanged(store, lambda: handle_kill_switch(store, star, message_id())).killed == []


def test_an_experiment_that_does_not_obey_the_kill_switch_is_skipped(store, cohort_id):
    obeys = running(store, cohort_id)
    exempt = running(store, cohort_id)
    store.db.collection("offerExperiments")[exempt.experiment_id]["killSwitch"]["enabled"] = False
    report = handle_kill_switch(store, {"experimentId": "*", "reason": "incident", "actor": "cto"}, message_id())
    assert report.killed == [obeys.experiment_id]
    assert report.skipped == {exempt.experiment_id: "the experiment does not obey the kill-switch"}
    assert store.experiments.get(exempt.experiment_id).status.value == "RUNNING"
    by_id = unchanged(store, lambda: handle_kill_switch(
        store, {"experimentId": exempt.experiment_id, "reason": "r", "actor": "a"}, message_id()))
    assert by_id.killed == [] and exempt.experiment_id in by_id.skipped
    # Skipped, not processed: no marker was written, so nothing stops a later message that may act.
    assert not any(k.startswith(f"{killswitch.KILL_SWITCH_SCOPE}:") and k.endswith(exempt.experiment_id)
                   for k in store.docs("processedEvents"))


def test_one_experiment_failing_does_not_stop_the_others(store, cohort_id, monkeypatch):
    first, second = running(store, cohort_id), running(store, cohort_id)
    real = store.experiments.ids_with_status
    monkeypatch.setattr(store.experiments, "ids_with_status",  # one listed, then deleted before its turn
                        lambda statuses: ["vanished"] + real(statuses))
    report = handle_kill_switch(store, {"experimentId": "*", "reason": "r", "actor": "a"}, message_id())
    assert sorted(report.killed) == sorted([first.experiment_id, second.experiment_id])
    assert "vanished" in report.skipped


def test_contention_is_raised_for_redelivery_and_the_redelivery_finishes_the_job(store, cohort_id, monkeypatch):
    first, second = running(store, cohort_id), running(store, cohort_id)
    contended = max(first.experiment_id, second.experiment_id)  # listed last (ids in order): the other is killed first
    real = killswitch.transition_experiment
    calls = []

    def busy_once(uow, experiment_id, *args, **kwargs):
        calls.append(experiment_id)
        if experiment_id == contended and calls.count(contended) == 1:
            raise Aborted("The resource is busy; please retry.")
        return real(uow, experiment_id, *args, **kwargs)

    monkeypatch.setattr(killswitch, "transition_experiment", busy_once)
    star, mid = {"experimentId": "*", "reason": "r", "actor": "a"}, message_id()
    with pytest.raises(Aborted):  # transient: the delivery is retried
        handle_kill_switch(store, star, mid)
    assert store.experiments.get(contended).status.value == "RUNNING"
    retry = handle_kill_switch(store, star, mid)
    assert retry.killed == [contended]
    for e in (first, second):
        _, events = assert_chain(store, e.experiment_id)
        assert [x["eventType"] for x in events].count("EXPERIMENT_KILLED") == 1


@pytest.mark.parametrize("bad", [
    {"reason": "r", "actor": "a"}, {"experimentId": "x", "actor": "a"}, {"experimentId": "x", "reason": "r"},
    [], "kill", None, {"experimentId": "a/b", "reason": "r", "actor": "a"},
    {"experimentId": "x", "reason": "   ", "actor": "a"}, {"experimentId": "x", "reason": "r" * 4001, "actor": "a"},
])
def test_malformed_messages_are_rejected_and_write_nothing(store, cohort_id, bad):
    running(store, cohort_id)
    report = unchanged(store, lambda: handle_kill_switch(store, bad, message_id()))
    assert report.rejected and report.killed == [] and report.skipped == {}

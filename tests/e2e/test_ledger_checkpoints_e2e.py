"""Signed checkpoints, proofs and offline verification end to end on the emulators (API.md §12,
docs/ledger.md §11–12): an experiment's life produces checkpoints that verify with the published key,
every entry's inclusion proof verifies, the first and last checkpoints are consistent, the checkpoints
in the Storage emulator are the ones served, and the offline command verifies the exported report and
rejects a tampered copy."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from offerlab.ledger import merkle, note
from offerlab.ledger.checkpoint import Checkpoint
from offerlab.store import collections as C
from offerlab.store.checkpoints import GcsCheckpointPublisher
from offerlab_client import InvalidArgument

ROOT = Path(__file__).resolve().parents[2]
STATES = ["DRAFT", "PENDING_APPROVAL", "APPROVED", "RUNNING", "PAUSED", "RUNNING", "COMPLETED"]


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.3):
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as err:  # functions still loading
            value = err
        if value and not isinstance(value, Exception):
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting (last value: {value!r})")


@pytest.fixture(scope="module")
def vkey() -> str:
    key = os.environ.get("OFFERLAB_LEDGER_VERIFIER_KEY")
    assert key, "scripts/emulators.py exports the emulators' verifier key"
    return key


@pytest.fixture(scope="module")
def life(clients, firestore_db):
    """An experiment moved through its states (each transition an experimentEvents document, as the
    lifecycle service writes them), with rollout events in between; returns its id."""
    wait_for(lambda: clients.analyst().get_ledger_statistics(), timeout=180)
    experiment_id = f"exp-ckpt-{uuid.uuid4().hex[:10]}"
    firestore_db.collection(C.OFFER_EXPERIMENTS).document(experiment_id).set({
        "experimentId": experiment_id, "name": "Checkpointed price test", "status": "DRAFT", "version": 1,
        "lastChange": {"action": "EXPERIMENT_CREATED", "actor": "pm@company.com", "at": datetime.now(timezone.utc),
                       "version": 1}})
    previous = None
    for version, state in enumerate(STATES, start=1):
        firestore_db.collection(C.EXPERIMENT_EVENTS).document(f"{experiment_id}_{version}").set({
            "experimentId": experiment_id, "eventType": f"EXPERIMENT_{state}", "actor": "pm@company.com",
            "fromStatus": previous, "toStatus": state, "version": version, "payload": {"comment": f"to {state}"},
            "occurredAt": datetime.now(timezone.utc)})
        if state == "RUNNING":
            firestore_db.collection(C.ROLLOUT_EVENTS).document(f"{experiment_id}_{version}").set({
                "experimentId": experiment_id, "eventType": "ROLLOUT_STAGE_ENTERED", "actor": "system",
                "fromStage": None, "toStage": 5.0, "version": version, "occurredAt": datetime.now(timezone.utc)})
        previous = state
        time.sleep(0.05)
    expected = 1 + len(STATES) + 2  # the created document + each transition + two rollout events
    wait_for(lambda: len(clients.analyst().get_audit_trail(experiment_id)["entries"]) >= expected)
    return experiment_id


def _published(chain_id: str, key: note.Verifier) -> list[Checkpoint]:
    publisher = GcsCheckpointPublisher()
    return [Checkpoint.parse(note.open_note(publisher.read(chain_id, size), [key]).text)
            for size in publisher.sizes(chain_id)]


def test_the_life_produces_checkpoints_that_verify_with_the_published_key(clients, life, vkey):
    key = note.Verifier.parse(vkey)
    published = wait_for(lambda: (lambda p: p if len(p) >= 3 else None)(_published(life, key)))
    assert all(c.origin.endswith("/" + life) for c in published)
    response = clients.analyst().get_checkpoint(life)
    assert response["verifierKey"] == vkey
    latest = Checkpoint.parse(note.open_note(response["checkpoint"], [key]).text)
    assert latest.size == response["treeSize"] and latest.root_b64 == response["rootHash"]
    assert latest.size == len(clients.analyst().get_audit_trail(life)["entries"])
    assert _published(life, key)[-1] == latest  # what is served is what is in the bucket


def test_every_entrys_inclusion_proof_and_first_to_last_consistency_verify(clients, life, vkey):
    key = note.Verifier.parse(vkey)
    auditor = clients.approver()
    latest = Checkpoint.parse(note.open_note(auditor.get_checkpoint(life)["checkpoint"], [key]).text)
    trail = auditor.get_audit_trail(life)["entries"]
    for entry in trail:
        proof = auditor.get_inclusion_proof(life, entry["sequence"], tree_size=latest.size)
        leaf = base64.b64decode(proof["leafHash"])
        assert proof["leafIndex"] == entry["leafIndex"] == entry["sequence"] - 1
        assert leaf == merkle.leaf_hash(entry["canonical"].encode())  # the proof is about this entry's bytes
        assert merkle.verify_inclusion(proof["leafIndex"], latest.size, leaf,
                                       [base64.b64decode(h) for h in proof["proof"]], latest.root)
    first = _published(life, key)[0]
    consistency = auditor.get_consistency_proof(life, first.size, latest.size)
    assert merkle.verify_consistency(first.size, latest.size, first.root, latest.root,
                                     [base64.b64decode(h) for h in consistency["proof"]])


def test_proof_requests_beyond_the_tree_or_reversed_are_invalid(clients, life):
    analyst = clients.analyst()
    size = analyst.get_checkpoint(life)["treeSize"]
    with pytest.raises(InvalidArgument):
        analyst.get_inclusion_proof(life, size + 1, tree_size=size)
    with pytest.raises(InvalidArgument):
        analyst.get_inclusion_proof(life, 1, tree_size=size + 100)
    with pytest.raises(InvalidArgument):
        analyst.get_consistency_proof(life, 3, 2)
    with pytest.raises(InvalidArgument):
        analyst.get_consistency_proof(life, 1, size + 100)
    assert analyst.get_checkpoint(life)["treeSize"] == size  # nothing was written


def test_the_offline_command_verifies_the_export_and_rejects_a_tampered_copy(clients, life, vkey, tmp_path):
    response = clients.analyst().export_audit_report(life, "json")
    assert response.status_code == 200
    exported = tmp_path / "report.json"
    exported.write_bytes(response.content)
    report = json.loads(response.content)
    assert report["checkpoint"]["verifierKey"] == vkey and report["attestation"]
    assert [leaf["leafIndex"] for leaf in report["ledger"]["leaves"]] == list(range(report["checkpoint"]["treeSize"]))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}  # offline: no emulator needed

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "offerlab_client.verify", str(path), "--key", vkey],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    ok = run(exported)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: "), ok.stdout + ok.stderr
    text = response.content.decode("utf-8")
    at = text.index('"actor": "pm@company.com"') + len('"actor": "p')
    tampered = tmp_path / "tampered.json"
    tampered.write_text(text[:at] + "n" + text[at + 1:], encoding="utf-8")  # one byte: pm@ → nm@
    bad = run(tampered)
    assert bad.returncode == 1 and bad.stdout.startswith("FAILED: ") and bad.stdout.count("\n") == 1, bad.stdout
    csv_export = clients.analyst().export_audit_report(life, "csv").content.decode("utf-8-sig")
    assert "checkpoint" in csv_export and "leafIndex" in csv_export

"""The offline verifier and the witness on reports built by the real report builder over the in-memory
ledger (tests/unit/ledger_fakes.py): a clean export verifies; a one-byte edit anywhere, a malformed
note, an unknown key, an inconsistent checkpoint are each refused with one line and a non-zero exit."""
from __future__ import annotations

import json

import pytest

from offerlab.ledger import note
from offerlab.service import audit_report
from offerlab.service import ledger as svc
from offerlab_client import verify, witness
from tests.unit.ledger_fakes import LOG_KEY, fake_ledger
from tests.unit.test_ledger_service import CHAIN, _event, _life

VKEY = LOG_KEY.verifier.vkey


@pytest.fixture()
def ledger_and_report():
    ledger = fake_ledger()
    ledger.repo.experiments[CHAIN] = {"experimentId": CHAIN, "name": "Prix 12,99 €", "status": "COMPLETED"}
    _life(ledger)
    return ledger, audit_report.render_json(audit_report.build_report(ledger, CHAIN))


def test_a_clean_export_verifies(ledger_and_report):
    _, exported = ledger_and_report
    report = json.loads(exported)
    result = verify.verify_report(report, [VKEY])
    assert result.ok, result.problems
    assert result.entries == result.tree_size == report["checkpoint"]["treeSize"] == len(report["ledger"]["leaves"])
    assert all("leafIndex" in item for item in report["timeline"] + report["approvals"])
    assert result.line.startswith("OK: ")


def _edits(exported: str):
    """One-byte edits inside each part of the export (a character replaced by another)."""
    report = json.loads(exported)
    third_leaf = exported.index('"canonical": "', exported.index('"canonical": "', exported.index('"canonical": "') + 1) + 1)
    targets = {
        "history section": exported.index(json.dumps(report["timeline"][1]["actor"])) + 3,
        "entry bytes": third_leaf + 40,
        "experiment document": exported.index(json.dumps(report["experiment"]["name"], ensure_ascii=False)) + 3,
        "checkpoint root": exported.index(report["checkpoint"]["rootHash"]) + 3,
    }
    for name, at in targets.items():
        replacement = "x" if exported[at] != "x" else "y"
        yield name, exported[:at] + replacement + exported[at + 1:]


def test_a_one_byte_edit_anywhere_is_caught(ledger_and_report):
    _, exported = ledger_and_report
    seen = set()
    for name, tampered in _edits(exported):
        result = verify.verify_report(json.loads(tampered), [VKEY])
        assert not result.ok, name
        seen.add(name)
        assert result.line.startswith("FAILED: ") and "\n" not in result.line
    assert seen == {"history section", "entry bytes", "experiment document", "checkpoint root"}


def test_the_command_exits_non_zero_with_one_line(ledger_and_report, tmp_path, capsys):
    _, exported = ledger_and_report
    good = tmp_path / "report.json"
    good.write_text(exported, encoding="utf-8")
    assert verify.main([str(good), "--key", VKEY]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    report = json.loads(exported)
    cases = {
        "malformed": {**report, "checkpoint": {**report["checkpoint"], "note": "not a note"}},
        "unknown key": report,
        "tampered": {**report, "approvals": [{**report["approvals"][0], "approver": "mallory@company.com"}]},
    }
    other_key = note.Signer.generate("someone.else/ledger").verifier.vkey
    expected = {"malformed": "not a well-formed signed note", "unknown key": "unknown key",
                "tampered": "approvals section differs"}
    for name, data in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        code = verify.main([str(path), "--key", other_key if name == "unknown key" else VKEY])
        out = capsys.readouterr().out
        assert code == 1 and out.count("\n") == 1 and expected[name] in out, (name, out)
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert verify.main([str(tmp_path / "broken.json"), "--key", VKEY]) == 2


def test_earlier_and_later_checkpoints_are_checked_for_consistency(ledger_and_report):
    ledger, exported = ledger_and_report
    report = json.loads(exported)
    sizes = ledger.publisher.sizes(CHAIN)
    earlier = ledger.publisher.read(CHAIN, sizes[0])
    assert verify.verify_report(report, [VKEY], [earlier]).ok
    # a later checkpoint needs the consistency proof from the report's tree size
    svc.record_source_event(ledger, _event(50, "COMPLETED", "ARCHIVED"), "k50")
    later = svc.get_checkpoint(ledger, CHAIN)
    size = report["checkpoint"]["treeSize"]
    missing = verify.verify_report(report, [VKEY], [later["checkpoint"]])
    assert not missing.ok and "consistency proof" in missing.problems[0]
    proof = svc.get_consistency_proof(ledger, CHAIN, size, later["treeSize"])
    assert verify.verify_report(report, [VKEY], [later["checkpoint"]], [proof]).ok
    forged = {**proof, "proof": proof["proof"][::-1]} if len(proof["proof"]) > 1 else {**proof, "proof": []}
    assert not verify.verify_report(report, [VKEY], [later["checkpoint"]], [forged]).ok


def test_the_witness_cosigns_consistent_checkpoints_and_refuses_a_fork(ledger_and_report, tmp_path):
    ledger, exported = ledger_and_report
    report = json.loads(exported)
    w = note.Signer.generate("board.example/witness", note.COSIGNATURE_V1)
    state = tmp_path / "state"
    first = ledger.publisher.read(CHAIN, ledger.publisher.sizes(CHAIN)[0])
    witness.cosign(first, VKEY, w, state, now=1_700_000_000)
    current = report["checkpoint"]["note"]
    with pytest.raises(witness.WitnessRefusal):  # larger, and no proof
        witness.cosign(current, VKEY, w, state)
    first_size = int(first.split("\n")[1])
    proof = svc.get_consistency_proof(ledger, CHAIN, first_size, report["checkpoint"]["treeSize"])
    cosigned = witness.cosign(current, VKEY, w, state, proof, now=1_700_000_100)
    result = verify.verify_report(report, [VKEY, w.verifier.vkey], [cosigned])
    assert result.ok and result.witnesses == ["board.example/witness"], result.problems
    # without the cosigned checkpoint, a required witness is missing
    assert not verify.verify_report(report, [VKEY, w.verifier.vkey]).ok
    # a fork: another root at the size the witness already cosigned
    fork_text = current.split("\n\n")[0].split("\n")
    fork_text[2] = "A" * 43 + "="
    forked = note.sign("\n".join(fork_text) + "\n", [LOG_KEY])
    with pytest.raises(witness.WitnessRefusal, match="forked"):
        witness.cosign(forked, VKEY, w, state)

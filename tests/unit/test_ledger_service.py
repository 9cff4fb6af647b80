"""The ledger's use cases on in-memory fakes (tests/unit/ledger_fakes.py): sealing grows the Merkle tree
without reading the chain, state changes issue signed checkpoints, proofs verify against them, bad
proof requests change nothing, and every kind of tampering — including a consistent rewrite of all
entries and the head — is detected and named."""
from __future__ import annotations

import base64
import copy

import pytest

from offerlab.domain.errors import FailedPrecondition, InvalidArgument
from offerlab.ledger import merkle, note
from offerlab.ledger.chain import GENESIS_HASH, entry_doc_id, seal
from offerlab.ledger.checkpoint import Checkpoint, origin
from offerlab.ledger.drafts import SourceEvent, SourceKind
from offerlab.ledger.head import grow, new_head_state
from offerlab.service import ledger as svc
from offerlab.store.checkpoints import CheckpointConflict
from tests.unit.ledger_fakes import LOG_KEY, fake_ledger

CHAIN = "exp-svc-1"
STATES = ["DRAFT", "PENDING_APPROVAL", "APPROVED", "RUNNING", "PAUSED", "RUNNING", "COMPLETED"]


def _event(n: int, from_status: str | None, to_status: str) -> SourceEvent:
    return SourceEvent(kind=SourceKind.EXPERIMENT_EVENT, document=f"experimentEvents/{CHAIN}_{n}", before=None,
                       after={"experimentId": CHAIN, "eventType": f"EXPERIMENT_{to_status}", "actor": "pm@company.com",
                              "fromStatus": from_status, "toStatus": to_status, "version": n,
                              "payload": {"comment": f"step {n}"}},
                       recorded_at=f"2026-11-25T10:00:{n:02d}.000000Z")


def _rollout(n: int) -> SourceEvent:
    return SourceEvent(kind=SourceKind.ROLLOUT_EVENT, document=f"rolloutEvents/{CHAIN}_{n}", before=None,
                       after={"experimentId": CHAIN, "eventType": "ROLLOUT_STAGE", "actor": "system",
                              "fromStage": n, "toStage": n + 1, "version": n},
                       recorded_at=f"2026-11-25T11:00:{n:02d}.000000Z")


def _life(ledger) -> None:
    previous = None
    for n, state in enumerate(STATES, start=1):
        svc.record_source_event(ledger, _event(n, previous, state), f"k{n}")
        svc.record_source_event(ledger, _rollout(n), f"r{n}")  # not a state change: no checkpoint of its own
        previous = state


def _published(ledger) -> list[Checkpoint]:
    out = []
    for size in ledger.publisher.sizes(CHAIN):
        opened = note.open_note(ledger.publisher.read(CHAIN, size), [LOG_KEY.verifier])
        out.append(Checkpoint.parse(opened.text))
    return out


def test_an_experiments_life_issues_signed_checkpoints_at_each_state_change():
    ledger = fake_ledger()
    _life(ledger)
    published = _published(ledger)
    assert [c.origin for c in published] == [origin(LOG_KEY.name, CHAIN)] * len(published)
    # the lifecycle event of state n is entry 2n−1 (each is followed by a rollout event)
    assert [c.size for c in published] == [2 * n - 1 for n in range(1, len(STATES) + 1)]
    for cp in published:
        entries = sorted((e for e in ledger.repo.entries.values()), key=lambda e: e["sequence"])[:cp.size]
        assert cp.root == merkle.root(merkle.leaf_hash(e["canonical"].encode()) for e in entries)
    assert ledger.repo.heads[CHAIN]["checkpointSize"] == published[-1].size
    assert ledger.repo.heads[CHAIN]["checkpointDue"] is True  # the last rollout event came after it
    svc.sweep(ledger)
    assert _published(ledger)[-1].size == 2 * len(STATES) and not ledger.repo.heads[CHAIN]["checkpointDue"]


def test_every_entrys_inclusion_proof_and_the_consistency_of_first_and_last_checkpoint_verify():
    ledger = fake_ledger()
    _life(ledger)
    response = svc.get_checkpoint(ledger, CHAIN)
    opened = note.open_note(response["checkpoint"], [note.Verifier.parse(response["verifierKey"])])
    latest = Checkpoint.parse(opened.text)
    assert latest.size == response["treeSize"] == 2 * len(STATES)
    for sequence in range(1, latest.size + 1):
        proof = svc.get_inclusion_proof(ledger, CHAIN, sequence)
        assert proof["leafIndex"] == sequence - 1 and proof["treeSize"] == latest.size
        leaf = base64.b64decode(proof["leafHash"])
        entry = ledger.repo.entries[entry_doc_id(CHAIN, sequence)]
        assert leaf == merkle.leaf_hash(entry["canonical"].encode())
        assert merkle.verify_inclusion(sequence - 1, latest.size, leaf, [base64.b64decode(p) for p in proof["proof"]],
                                       latest.root)
    first = _published(ledger)[0]
    consistency = svc.get_consistency_proof(ledger, CHAIN, first.size, latest.size)
    assert merkle.verify_consistency(first.size, latest.size, first.root, latest.root,
                                     [base64.b64decode(p) for p in consistency["proof"]])


@pytest.mark.parametrize("call", [
    lambda l: svc.get_inclusion_proof(l, CHAIN, 99),
    lambda l: svc.get_inclusion_proof(l, CHAIN, 1, tree_size=99),
    lambda l: svc.get_inclusion_proof(l, CHAIN, 5, tree_size=4),
    lambda l: svc.get_consistency_proof(l, CHAIN, 3, 2),
    lambda l: svc.get_consistency_proof(l, CHAIN, 1, 99),
])
def test_proofs_beyond_the_tree_or_reversed_sizes_are_invalid_and_write_nothing(call):
    ledger = fake_ledger()
    _life(ledger)
    before, writes = ledger.repo.snapshot(), ledger.repo.writes
    objects = dict(ledger.publisher.objects)
    with pytest.raises(InvalidArgument):
        call(ledger)
    assert ledger.repo.snapshot() == before and ledger.repo.writes == writes and ledger.publisher.objects == objects


def test_a_redelivered_event_is_recorded_once():
    ledger = fake_ledger()
    svc.record_source_event(ledger, _event(1, None, "DRAFT"), "same-key")
    svc.record_source_event(ledger, _event(1, None, "DRAFT"), "same-key")
    assert len(ledger.repo.entries) == 1


def test_without_a_signing_key_the_ledger_still_seals_and_the_checkpoint_callable_refuses():
    ledger = fake_ledger(signer=None)
    _life(ledger)
    assert len(ledger.repo.entries) == 2 * len(STATES) and not ledger.publisher.objects
    with pytest.raises(FailedPrecondition):
        svc.get_checkpoint(ledger, CHAIN)
    assert svc.verify_ledger(ledger, CHAIN)["valid"]


def test_the_publisher_is_create_only():
    ledger = fake_ledger()
    _life(ledger)
    size = ledger.publisher.sizes(CHAIN)[-1]
    with pytest.raises(CheckpointConflict):
        ledger.publisher.publish(CHAIN, size, "forged\n")


def _ids(ledger):
    return sorted(i for i in ledger.repo.entries if i.startswith(CHAIN))


def _codes(ledger):
    result = svc.verify_ledger(ledger, CHAIN)
    return result, {e["code"] for e in result["errors"]}


def _tamper_edit(ledger):
    ledger.repo.entries[_ids(ledger)[2]]["actor"] = "mallory"


def _tamper_delete(ledger):
    del ledger.repo.entries[_ids(ledger)[2]]


def _tamper_insert(ledger):
    copy_of = copy.deepcopy(ledger.repo.entries[_ids(ledger)[2]])
    ledger.repo.entries[_ids(ledger)[2] + "-copy"] = copy_of


def _tamper_reorder(ledger):
    a, b = _ids(ledger)[2:4]
    ledger.repo.entries[a], ledger.repo.entries[b] = ledger.repo.entries[b], ledger.repo.entries[a]


def _tamper_truncate(ledger):
    for doc_id in _ids(ledger)[-3:]:
        del ledger.repo.entries[doc_id]


def _tamper_truncate_and_head(ledger):
    """The tail deleted and the head rewritten to match: only the published checkpoint knows better."""
    _rewrite(ledger, keep=5, edit=None)


def _rewrite(ledger, keep: int | None, edit: int | None):
    ordered = [ledger.repo.entries[i] for i in _ids(ledger)]
    drafts = [dict(e) for e in ordered[:keep]]
    if edit is not None:
        drafts[edit]["payload"] = {**drafts[edit]["payload"], "comment": "rewritten"}
    state = new_head_state()
    sealed, nodes, head = grow(CHAIN, state, drafts)
    for doc_id in _ids(ledger):
        del ledger.repo.entries[doc_id]
    for entry in sealed:
        ledger.repo.entries[entry_doc_id(CHAIN, entry["sequence"])] = entry
    ledger.repo.nodes[CHAIN] = {(lv, ix): h for lv, ix, h in nodes}
    ledger.repo.heads[CHAIN] = {**head, "checkpointSize": 0, "checkpointDue": True}


def _tamper_consistent_rewrite(ledger):
    """Entry 3 edited, every entry re-sealed, tree nodes and head rebuilt: self-consistent in the database."""
    _rewrite(ledger, keep=None, edit=2)


@pytest.mark.parametrize("tamper, expected", [
    (_tamper_edit, {"FIELDS_MISMATCH"}),  # the hashed bytes are intact: the tree still matches
    (_tamper_delete, {"MISSING_ENTRY", "PREV_HASH_MISMATCH", "COUNT_MISMATCH", "HEAD_ROOT_MISMATCH",
                      "BEHIND_CHECKPOINT"}),
    (_tamper_insert, {"ENTRY_ID_MISMATCH", "DUPLICATE_SEQUENCE", "COUNT_MISMATCH"}),
    (_tamper_reorder, {"ENTRY_ID_MISMATCH"}),  # entries are read in their claimed order: the tree matches
    (_tamper_truncate, {"TRUNCATED", "BEHIND_CHECKPOINT"}),
    (_tamper_truncate_and_head, {"BEHIND_CHECKPOINT"}),
    (_tamper_consistent_rewrite, {"CONSISTENT_REWRITE"}),
], ids=lambda v: getattr(v, "__name__", ""))
def test_each_tampering_is_detected_and_named(tamper, expected):
    ledger = fake_ledger()
    _life(ledger)
    svc.sweep(ledger)  # a checkpoint of the whole chain is published
    assert svc.verify_ledger(ledger, CHAIN)["valid"]
    tamper(ledger)
    result, codes = _codes(ledger)
    assert not result["valid"] and codes == expected
    if tamper is _tamper_consistent_rewrite:
        message = next(e["message"] for e in result["errors"] if e["code"] == "CONSISTENT_REWRITE")
        assert "rewritten together with the head" in message
        # Without the published checkpoint (what the retention-locked bucket prevents) it would be invisible.
        ledger.publisher.objects.clear()
        assert svc.verify_ledger(ledger, CHAIN)["valid"] is True


def test_the_log_refuses_to_sign_a_tree_that_does_not_extend_its_published_checkpoint():
    ledger = fake_ledger()
    _life(ledger)
    svc.sweep(ledger)
    _tamper_consistent_rewrite(ledger)
    svc.record_source_event(ledger, _event(99, "COMPLETED", "ARCHIVED"), "k99")  # a state change after the rewrite
    sizes_before = ledger.publisher.sizes(CHAIN)
    with pytest.raises(svc.LedgerIntegrityError):
        svc.issue_checkpoint(ledger, CHAIN)
    with pytest.raises(FailedPrecondition):
        svc.get_checkpoint(ledger, CHAIN)
    assert ledger.publisher.sizes(CHAIN) == sizes_before


def test_sealing_reads_only_the_head_and_the_batch():
    """grow() works from the head's frontier: a chain of any length seals with the same inputs."""
    entries = seal(CHAIN, [{"eventType": f"E{i}"} for i in range(37)], 0, GENESIS_HASH)
    state = new_head_state()
    sealed, nodes, head = grow(CHAIN, state, [dict(e) for e in entries[:20]])
    sealed2, nodes2, head2 = grow(CHAIN, head, [dict(e) for e in entries[20:]])
    leaves = [merkle.leaf_hash(e["canonical"].encode()) for e in sealed + sealed2]
    assert base64.b64decode(head2["rootHash"]) == merkle.root(leaves)
    assert len(head2["frontier"]) == bin(37).count("1") and head2["treeSize"] == 37
    assert len(nodes) + len(nodes2) == 2 * 37 - bin(37).count("1")  # every perfect node, once

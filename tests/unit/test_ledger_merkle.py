"""The Merkle tree (RFC 9162 §2.1) against transparency-dev/merkle's vectors, and by properties.

tests/unit/data/rfc6962-vectors.json holds transparency-dev/merkle's reference values (leaves, every
node and root of the 8-leaf tree, expected inclusion and consistency proofs) and its 196 verification
probes (happy paths and every mangling they ship: flipped bits, extra or missing components, wrong
indices and sizes), each with the expected verdict.
"""
import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.ledger import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc6962-vectors.json").read_text())
LEAVES = [bytes.fromhex(h) for h in VECTORS["leafInputsHex"]]


def _b64(value):
    return base64.b64decode(value) if value else b""


def _reference_root(data: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1's recursive definition (independent of merkle.py)."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1 << ((len(data) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _reference_root(data[:k]) + _reference_root(data[k:])).digest()


class Tree:
    """A tree grown with merkle.append, its completed nodes kept as the store keeps them."""

    def __init__(self, data: list[bytes]):
        self.frontier: list[bytes] = []
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0
        for item in data:
            self.frontier, created = merkle.append(self.frontier, self.size, merkle.leaf_hash(item))
            for level, index, value in created:
                assert (level, index) not in self.nodes  # each perfect node is completed exactly once
                self.nodes[(level, index)] = value
            self.size += 1

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


def test_roots_and_nodes_of_the_reference_tree():
    tree = Tree([])
    for size in range(len(LEAVES) + 1):
        tree = Tree(LEAVES[:size])
        expected = bytes.fromhex(VECTORS["rootHashesHex"][size])
        assert merkle.root_from_frontier(tree.frontier) == expected
        assert merkle.root(merkle.leaf_hash(x) for x in LEAVES[:size]) == expected
        assert merkle.root_at(size, tree.node) == expected
    for level, row in enumerate(VECTORS["nodeHashesHex"]):
        for index, value in enumerate(row):
            assert tree.node(level, index).hex() == value


@pytest.mark.parametrize("case", VECTORS["referenceInclusionProofs"], ids=lambda c: f"{c['index']}:{c['size']}")
def test_inclusion_proofs_match_the_reference(case):
    tree = Tree(LEAVES[:case["size"]])
    proof = merkle.inclusion_proof(case["index"], case["size"], tree.node)
    assert [p.hex() for p in proof] == case["proofHex"]


@pytest.mark.parametrize("case", VECTORS["referenceConsistencyProofs"], ids=lambda c: f"{c['size1']}:{c['size2']}")
def test_consistency_proofs_match_the_reference(case):
    tree = Tree(LEAVES[:case["size2"]])
    proof = merkle.consistency_proof(case["size1"], case["size2"], tree.node)
    assert [p.hex() for p in proof] == case["proofHex"]


@pytest.mark.parametrize("probe", VECTORS["inclusionProbes"], ids=lambda p: p["file"])
def test_inclusion_probes(probe):
    ok = merkle.verify_inclusion(probe["leafIdx"], probe["treeSize"], _b64(probe["leafHash"]),
                                 [_b64(p) for p in probe["proof"] or []], _b64(probe["root"]))
    assert ok is not probe["wantErr"], probe["desc"]


@pytest.mark.parametrize("probe", VECTORS["consistencyProbes"], ids=lambda p: p["file"])
def test_consistency_probes(probe):
    ok = merkle.verify_consistency(probe["size1"], probe["size2"], _b64(probe["root1"]), _b64(probe["root2"]),
                                   [_b64(p) for p in probe["proof"] or []])
    assert ok is not probe["wantErr"], probe["desc"]


def test_the_probes_include_failures_so_the_tests_can_fail():
    assert sum(p["wantErr"] for p in VECTORS["inclusionProbes"]) > 50
    assert sum(p["wantErr"] for p in VECTORS["consistencyProbes"]) > 50


DATA = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=120, deadline=None)
@given(DATA, st.data())
def test_every_inclusion_proof_verifies_and_any_tampering_fails(data, draw):
    tree = Tree(data)
    size = draw.draw(st.integers(1, len(data)))
    index = draw.draw(st.integers(0, size - 1))
    root = _reference_root(data[:size])
    leaf = merkle.leaf_hash(data[index])
    proof = merkle.inclusion_proof(index, size, tree.node)
    assert set(merkle.inclusion_nodes(index, size)) <= set(tree.nodes)
    assert merkle.verify_inclusion(index, size, leaf, proof, root)
    # Tampered proofs must fail: a flipped bit, a dropped or extra hash, the wrong index or size.
    if proof:
        i = draw.draw(st.integers(0, len(proof) - 1))
        bit = draw.draw(st.integers(0, 255))
        flipped = bytearray(proof[i])
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not merkle.verify_inclusion(index, size, leaf, proof[:i] + [bytes(flipped)] + proof[i + 1:], root)
        assert not merkle.verify_inclusion(index, size, leaf, proof[:-1], root)
    assert not merkle.verify_inclusion(index, size, leaf, proof + [leaf], root)
    assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(data[index] + b"x"), proof, root)
    other = draw.draw(st.integers(0, size - 1))
    if merkle.leaf_hash(data[other]) != leaf:
        assert not merkle.verify_inclusion(other, size, leaf, proof, root)
    assert not merkle.verify_inclusion(index, size, leaf, proof, _reference_root(data[:size] + [b"more"]))


@settings(max_examples=120, deadline=None)
@given(DATA, st.data())
def test_every_consistency_proof_verifies_and_any_tampering_fails(data, draw):
    tree = Tree(data)
    new = draw.draw(st.integers(1, len(data)))
    old = draw.draw(st.integers(1, new))
    old_root, new_root = _reference_root(data[:old]), _reference_root(data[:new])
    proof = merkle.consistency_proof(old, new, tree.node)
    assert set(merkle.consistency_nodes(old, new)) <= set(tree.nodes)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        i = draw.draw(st.integers(0, len(proof) - 1))
        flipped = bytearray(proof[i])
        flipped[draw.draw(st.integers(0, 31))] ^= 0x01
        assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:i] + [bytes(flipped)] + proof[i + 1:])
        assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not merkle.verify_consistency(old, new, old_root, new_root, proof + [old_root])
    # A rewritten history: the old tree with one leaf changed is not consistent with the new one.
    forged = list(data[:old])
    j = draw.draw(st.integers(0, old - 1))
    forged[j] = forged[j] + b"forged"
    assert not merkle.verify_consistency(old, new, _reference_root(forged), new_root, proof)
    if old < new:
        assert not merkle.verify_consistency(new, old, new_root, old_root, proof)


def test_append_refuses_a_frontier_of_the_wrong_shape_and_proofs_beyond_the_tree():
    with pytest.raises(ValueError):
        merkle.append([], 1, merkle.leaf_hash(b""))
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(4, 3)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(0, 3)

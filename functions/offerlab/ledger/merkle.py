"""The Merkle tree of a ledger chain: RFC 9162 §2.1 (the same hashes as RFC 6962 §2.1), pure.

    leaf hash   = SHA-256(0x00 ‖ entry bytes)                     RFC 9162 §2.1.1
    node hash   = SHA-256(0x01 ‖ left ‖ right)
    MTH({})     = SHA-256()                                        (the empty tree)
    MTH(D[n])   = node(MTH(D[0:k]), MTH(D[k:n]))   k = the largest power of two < n

The tree is kept as it grows, never rebuilt: a *frontier* (the roots of the perfect subtrees that
make up [0, size), largest first — transparency-dev calls it a compact range) is enough to append a
leaf and to compute the root, and every perfect subtree that an append completes is handed back as a
node ``(level, index, hash)`` so the store can keep it. Level 0 holds the leaf hashes; the node
``(level, index)`` is the root of leaves [index·2^level, (index+1)·2^level). An append completes one
node per trailing one-bit of the old size plus the leaf: two on average, log2(n) at most.

Proofs (RFC 9162 §2.1.3 inclusion, §2.1.4 consistency) are built from those perfect nodes only: every
sibling in a proof is either a perfect subtree or the root of a right border [k, n), itself a fold of
at most log2(n) perfect nodes. ``inclusion_nodes``/``consistency_nodes`` say which nodes a proof needs
(so the store fetches them in one batch), ``inclusion_proof``/``consistency_proof`` build it from a
lookup, and ``verify_inclusion``/``verify_consistency`` are RFC 9162 §2.1.3.2 and §2.1.4.2.

Test vectors: tests/unit/data/rfc6962-vectors.json (transparency-dev/merkle's testdata and reference
values), checked in tests/unit/test_ledger_merkle.py together with hypothesis properties.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

_sha256 = hashlib.sha256

HASH_SIZE = 32
EMPTY_ROOT = _sha256(b"").digest()

Node = tuple[int, int]                      # (level, index) of a perfect subtree
NodeLookup = Callable[[int, int], bytes]    # (level, index) → its hash


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a leaf whose data is ``data``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2): where MTH splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


# --- the frontier: appending without reading the tree ---------------------------------------------------

def frontier_levels(size: int) -> list[int]:
    """Levels of the frontier's subtrees for a tree of ``size`` leaves, largest first (its one-bits)."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def append(frontier: Sequence[bytes], size: int, leaf: bytes) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append one leaf hash to a tree of ``size`` leaves described by ``frontier``.

    Returns the new frontier and the perfect nodes this append completed, the leaf first.
    """
    if len(frontier) != bin(size).count("1"):
        raise ValueError("frontier does not match the tree size")
    hashes = list(frontier)
    created = [(0, size, leaf)]
    current, level = leaf, 0
    while size >> level & 1:               # the subtree of this level is complete: merge it
        current = node_hash(hashes.pop(), current)
        level += 1
        created.append((level, size >> level, current))
    hashes.append(current)
    return hashes, created


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """MTH of the tree the frontier describes: fold from the right (the smallest subtree)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over a sequence of leaf hashes, in one pass with a frontier (no recursion, O(log n) memory)."""
    frontier: list[bytes] = []
    size = 0
    for leaf in leaf_hashes:
        current, level = leaf, 0
        while size >> level & 1:
            current = node_hash(frontier.pop(), current)
            level += 1
        frontier.append(current)
        size += 1
    return root_from_frontier(frontier)


# --- which perfect nodes a range, a proof needs --------------------------------------------------------

def _range_nodes(lo: int, hi: int, out: list[Node]) -> None:
    """Perfect nodes whose fold (as MTH splits) is MTH(D[lo:hi]); ``lo`` is a multiple of the split."""
    size = hi - lo
    if size & (size - 1) == 0 and lo % size == 0:   # a perfect subtree
        level = size.bit_length() - 1
        out.append((level, lo >> level))
        return
    k = _split(size)
    _range_nodes(lo, lo + k, out)
    _range_nodes(lo + k, hi, out)


def _range_hash(lo: int, hi: int, node: NodeLookup) -> bytes:
    size = hi - lo
    if size & (size - 1) == 0 and lo % size == 0:
        level = size.bit_length() - 1
        return node(level, lo >> level)
    k = _split(size)
    return node_hash(_range_hash(lo, lo + k, node), _range_hash(lo + k, hi, node))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH make up PATH(index, D[size]) (RFC 9162 §2.1.3.1), in proof order."""
    if not 0 <= index < size:
        raise ValueError("index is beyond the tree size")
    ranges: list[tuple[int, int]] = []

    def path(m: int, lo: int, hi: int) -> None:
        if hi - lo == 1:
            return
        k = _split(hi - lo)
        if m < k:
            path(m, lo, lo + k)
            ranges.append((lo + k, hi))
        else:
            path(m - k, lo + k, hi)
            ranges.append((lo, lo + k))

    path(index, 0, size)
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH make up PROOF(m, D[n]) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 < old_size <= new_size:
        raise ValueError("consistency needs 0 < old size <= new size")
    ranges: list[tuple[int, int]] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            ranges.append((lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            ranges.append((lo, lo + k))

    if old_size < new_size:
        subproof(old_size, 0, new_size, True)
    return ranges


def nodes_of(ranges: Iterable[tuple[int, int]]) -> list[Node]:
    """Every perfect node the ranges need, without duplicates, in a stable order."""
    out: list[Node] = []
    for lo, hi in ranges:
        _range_nodes(lo, hi, out)
    return list(dict.fromkeys(out))


def inclusion_nodes(index: int, size: int) -> list[Node]:
    return nodes_of(inclusion_ranges(index, size))


def consistency_nodes(old_size: int, new_size: int) -> list[Node]:
    return nodes_of(consistency_ranges(old_size, new_size))


def root_nodes(size: int) -> list[Node]:
    """The perfect nodes that fold to MTH(D[size]) (the frontier's nodes)."""
    return nodes_of([(0, size)]) if size else []


def inclusion_proof(index: int, size: int, node: NodeLookup) -> list[bytes]:
    return [_range_hash(lo, hi, node) for lo, hi in inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, node: NodeLookup) -> list[bytes]:
    return [_range_hash(lo, hi, node) for lo, hi in consistency_ranges(old_size, new_size)]


def root_at(size: int, node: NodeLookup) -> bytes:
    return _range_hash(0, size, node) if size else EMPTY_ROOT


# --- verification (what an auditor runs) ----------------------------------------------------------------

def _hashes_ok(*values: object) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or None when the proof cannot be one."""
    if not 0 <= index < size or not _hashes_ok(leaf, *proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    computed = root_from_inclusion(index, size, leaf, proof)
    return computed is not None and _hashes_ok(expected_root) and computed == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2. Consistency from the empty tree is refused: it proves nothing (as
    transparency-dev's verifier, whose probes tests/unit/data/rfc6962-vectors.json holds)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:  # nothing to prove: the same tree (transparency-dev compares the roots only)
        return not proof and old_root == new_root
    if not _hashes_ok(old_root, new_root, *proof):
        return False
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root

"""A chain's head and how sealing moves it (docs/ledger.md §4, §11), pure.

The head document records the chain's last sequence and hash (the hash chain) and its Merkle tree's
frontier (merkle.py): enough to seal the next entries and grow the tree without reading the chain.
The Firestore repository and the unit tests' in-memory fake both seal through ``grow``.
"""
from __future__ import annotations

import base64
from typing import Any

from offerlab.ledger import merkle
from offerlab.ledger.chain import CANONICAL_FIELD, GENESIS_HASH, seal


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def new_head_state() -> dict[str, Any]:
    """The head of a chain without entries."""
    return {"lastSequence": 0, "headHash": GENESIS_HASH, "count": 0, "treeSize": 0, "frontier": [],
            "rootHash": _b64(merkle.EMPTY_ROOT), "checkpointSize": 0}


class MalformedHead(Exception):
    """The chain's head is not the sequencer's (edited or replaced): nothing is sealed after it."""


def grow(chain_id: str, state: dict[str, Any], drafts: list[dict[str, Any]]):
    """Seal ``drafts`` after the head ``state`` and grow its tree: (entries, nodes, new head fields).

    Pure (shared by the Firestore repository and the in-memory fake of the unit tests). Raises
    MalformedHead when the head is not one the sequencer wrote.
    """
    last, head_hash, count = state.get("lastSequence"), state.get("headHash"), state.get("count")
    hexes = state.get("frontier")
    if type(last) is not int or type(head_hash) is not str or type(count) is not int or type(hexes) is not list:
        raise MalformedHead(chain_id)
    try:
        frontier = [bytes.fromhex(h) for h in hexes]
    except (TypeError, ValueError):
        raise MalformedHead(chain_id) from None
    if state.get("treeSize") != last or len(frontier) != bin(last).count("1"):
        raise MalformedHead(chain_id)
    sealed = seal(chain_id, drafts, last, head_hash)
    nodes: list[tuple[int, int, bytes]] = []
    size = last
    for entry in sealed:
        frontier, created = merkle.append(frontier, size, merkle.leaf_hash(entry[CANONICAL_FIELD].encode("utf-8")))
        nodes.extend(created)
        size += 1
    head = {"chainId": chain_id, "lastSequence": size, "headHash": sealed[-1]["hash"], "count": count + len(sealed),
            "treeSize": size, "frontier": [h.hex() for h in frontier],
            "rootHash": _b64(merkle.root_from_frontier(frontier)),
            "checkpointSize": state.get("checkpointSize") if type(state.get("checkpointSize")) is int else 0,
            "checkpointDue": True}
    return sealed, nodes, head



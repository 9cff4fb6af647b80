"""In-memory fakes of the ledger's repository and checkpoint publisher (service.ledger's protocols), so
the sealing, checkpoint and proof logic has unit tests without the emulators. They seal through the same
pure ``ledger.head.grow`` as the Firestore repository, and the publisher is create-only like Cloud
Storage with ``ifGenerationMatch=0``."""
from __future__ import annotations

import base64
import copy
from typing import Any, Iterable

from offerlab.ledger.chain import entry_doc_id
from offerlab.ledger.head import grow, new_head_state
from offerlab.ledger.note import Signer
from offerlab.service.ledger import Ledger
from offerlab.store.checkpoints import CheckpointConflict


class FakeLedgerRepository:
    def __init__(self) -> None:
        self.markers: set[tuple[str, str]] = set()
        self.pending: dict[str, dict[str, dict[str, Any]]] = {}
        self.heads: dict[str, dict[str, Any]] = {}
        self.entries: dict[str, dict[str, Any]] = {}          # document id → entry
        self.nodes: dict[str, dict[tuple[int, int], bytes]] = {}
        self.checkpoints: dict[str, dict[int, dict[str, Any]]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def snapshot(self) -> Any:
        return copy.deepcopy((self.markers, self.pending, self.heads, self.entries, self.nodes, self.checkpoints))

    def record_once(self, scope, event_key, records) -> bool:
        if (scope, event_key) in self.markers:
            return False
        self.markers.add((scope, event_key))
        for chain_id, pending_id, draft, alert in records:
            self.pending.setdefault(chain_id, {})[pending_id] = {**draft, "chainId": chain_id}
            if alert is not None:
                self.alerts[pending_id] = {**alert, "alertId": pending_id}
            self.writes += 1
        return True

    def pending_exists(self, chain_id, pending_id) -> bool:
        return pending_id in self.pending.get(chain_id, {})

    def count_pending(self, chain_id) -> int:
        return len(self.pending.get(chain_id, {}))

    def sequence_pending(self, chain_id, limit: int = 100) -> list[dict[str, Any]]:
        queue = self.pending.get(chain_id, {})
        ids = sorted(queue, key=lambda i: (queue[i].get("recordedAt") or "", i))[:limit]
        if not ids:
            return []
        state = self.heads.get(chain_id) or new_head_state()
        sealed, nodes, head = grow(chain_id, state, [queue[i] for i in ids])
        for entry in sealed:
            self.entries[entry_doc_id(chain_id, entry["sequence"])] = copy.deepcopy(entry)
        for level, index, value in nodes:
            assert (level, index) not in self.nodes.setdefault(chain_id, {})  # created once, like Firestore's create
            self.nodes[chain_id][(level, index)] = value
        for i in ids:
            del queue[i]
        self.heads[chain_id] = head
        self.writes += 1
        return sealed

    def chains_with_pending(self) -> list[str]:
        return [c for c, q in self.pending.items() if q]

    def read_head(self, chain_id):
        return copy.deepcopy(self.heads.get(chain_id))

    def read_chain(self, chain_id):
        return [(i, copy.deepcopy(e)) for i, e in self.entries.items() if e.get("experimentId") == chain_id]

    def read_entries(self, chain_id, after_sequence, limit):
        prefix = f"{chain_id}_"
        ids = sorted(i for i in self.entries if i.startswith(prefix) and i > entry_doc_id(chain_id, after_sequence))
        return [copy.deepcopy(self.entries[i]) for i in ids[:limit]]

    def read_entry(self, chain_id, sequence):
        return copy.deepcopy(self.entries.get(entry_doc_id(chain_id, sequence)))

    def read_nodes(self, chain_id, nodes: Iterable[tuple[int, int]]):
        stored = self.nodes.get(chain_id, {})
        return {n: stored[n] for n in nodes if n in stored}

    def record_checkpoint(self, chain_id, size, record):
        self.checkpoints.setdefault(chain_id, {})[size] = dict(record, treeSize=size)
        head = self.heads[chain_id]
        if size >= head.get("checkpointSize", 0):
            head["checkpointSize"] = size
            head["checkpointDue"] = head["treeSize"] > size
        self.writes += 1

    def read_checkpoint(self, chain_id, size):
        return self.checkpoints.get(chain_id, {}).get(size)

    def chains_due_checkpoint(self):
        return [c for c, h in self.heads.items() if h.get("checkpointDue")]

    def alerts_of_chain(self, chain_id):
        return [a for a in self.alerts.values() if a.get("chainId") == chain_id]

    def read_experiment(self, experiment_id):
        return self.experiments.get(experiment_id)

    def read_cohort(self, cohort_id):
        return None

    def ledger_statistics(self, active, completed, killed):
        return {"totalEntries": len(self.entries), "totalChains": len(self.heads)}


class FakePublisher:
    """Create-only objects, like a bucket written with ``ifGenerationMatch=0``."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, int], str] = {}

    def publish(self, chain_id, size, note_text) -> str:
        key = (chain_id, size)
        if key in self.objects and self.objects[key] != note_text:
            raise CheckpointConflict(f"{chain_id}/{size}")
        self.objects.setdefault(key, note_text)
        return f"ledger/{chain_id}/checkpoints/{size:020d}"

    def read(self, chain_id, size):
        return self.objects.get((chain_id, size))

    def sizes(self, chain_id, at_least=0):
        return sorted(s for c, s in self.objects if c == chain_id and s >= at_least)


LOG_KEY = Signer(name="offerlab.test/ledger", seed=bytes(range(32)))


def fake_ledger(signer: Signer | None = LOG_KEY) -> Ledger:
    return Ledger(FakeLedgerRepository(), FakePublisher(), signer, sleep=lambda seconds: None)


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()

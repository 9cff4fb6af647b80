"""Ledger benchmarks: verification throughput in memory, the canonical encoder against the reference,
and — when the emulator suite is up — the latency from an event document's write to its sealed entry.

    functions/venv/bin/python benchmarks/run.py ledger                      in-memory rows only
    OFFERLAB_PORT_OFFSET=100 scripts/with-emulators functions/venv/bin/python benchmarks/run.py ledger

Entries are a realistic mix (docs/ledger.md §6): 80 % lifecycle/rollout events (strings, integers,
nested maps), 20 % analyses carrying floats (non-integral doubles in [1e-4, 1e16): the C fast path too).

The goal is 300k entries/s of verification. Two verifiers are measured in the same run against bare
SHA-256 of the same hashed bytes (prevHash ‖ canonical bytes):

* by re-encoding ("today's verifier" before the entries carried their bytes; still the path for entries
  sealed without them): RFC 8785 encoding of every entry, then SHA-256;
* over the stored canonical bytes (docs/ledger.md §5): SHA-256 of the bytes, one JSON parse
  (``pydantic_core.from_json``) and a dict comparison to check the stored fields are what the bytes say;
  and the whole ``verify_chain`` (ids, links, head, the Merkle tree of the chain against a checkpoint:
  one more SHA-256 per leaf and one per node).

Two rows show where re-encoding's time goes: the payload's validation walk (``canonical._scan``) and
the payload through the C ``json`` encoder alone.
"""
from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from datetime import datetime, timezone

from benchmarks.harness import Table, percentile
from offerlab.ledger import canonical
from offerlab.ledger import merkle
from offerlab.ledger.chain import (
    CANONICAL_FIELD, GENESIS_HASH, canonical_entry, entry_doc_id, seal, verify_chain, verify_entries_in_memory,
    verify_stored_bytes_in_memory,
)

N_ENTRIES = int(os.environ.get("OFFERLAB_BENCH_LEDGER_ENTRIES", "100000"))
LATENCY_SAMPLES = int(os.environ.get("OFFERLAB_BENCH_LEDGER_LATENCY_SAMPLES", "30"))
CHAIN = "bench-chain"


def _draft(i: int, rng: random.Random) -> dict:
    recorded = f"2026-11-25T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z"
    if i % 5 == 4:  # an analysis: floats
        payload = {"analysisId": f"an-{i}", "experimentId": CHAIN, "metric": "net_ltv", "pValue": rng.random(),
                   "rawPercentChange": rng.uniform(-20, 20), "correctedPercentChange": rng.uniform(-20, 20),
                   "confidenceInterval": [rng.uniform(-5, 0), rng.uniform(0, 5)],
                   "sampleSizes": {"CONTROL": rng.randrange(10**6), "TREATMENT": rng.randrange(10**6)},
                   "dataQuality": "HIGH", "method": "welch-t", "inputsDigest": hashlib.sha256(str(i).encode()).hexdigest()}
        return {"eventType": "ANALYSIS_RECORDED", "actor": "analyst@company.com", "sourceKind": "ANALYSIS",
                "sourceDocument": f"experimentAnalyses/an-{i}", "payload": payload,
                "snapshotDigest": hashlib.sha256(f"s{i}".encode()).hexdigest(), "recordedAt": recorded}
    payload = {"experimentId": CHAIN, "eventType": "EXPERIMENT_APPROVED", "actor": "ceo@company.com",
               "fromStatus": "PENDING_APPROVAL", "toStatus": "APPROVED", "version": i,
               "payload": {"comment": f"ok {i}", "checklist": ["hypothesis", "guardrails"]},
               "occurredAt": recorded}
    return {"eventType": "EXPERIMENT_APPROVED", "actor": "ceo@company.com", "sourceKind": "EXPERIMENT_EVENT",
            "sourceDocument": f"experimentEvents/{CHAIN}_{i}", "payload": payload,
            "snapshotDigest": hashlib.sha256(f"s{i}".encode()).hexdigest(), "recordedAt": recorded}


def _chain(n: int) -> list[dict]:
    rng = random.Random(443)
    return seal(CHAIN, (_draft(i, rng) for i in range(1, n + 1)), 0, GENESIS_HASH)


def cpu_rate(fn, repeats: int = 5) -> float:
    """Items per CPU second (``time.process_time``), median of ``repeats``.

    CPU time, not wall time: the 2-core machine is shared by several engineers' emulator suites, and
    wall-clock rates of a CPU-bound loop moved by 3x between runs; CPU time of this process does not
    count the time the scheduler gives to others."""
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        items = fn()
        rates.append(items / max(time.process_time() - start, 1e-9))
    return sorted(rates)[len(rates) // 2]


def in_memory_rows(table: Table) -> None:
    import rfc8785  # noqa: PLC0415 - the reference encoder, a dev dependency

    stored = _chain(N_ENTRIES)                                   # as sealed now: with their canonical bytes
    entries = [{k: v for k, v in e.items() if k != CANONICAL_FIELD} for e in stored]  # as sealed before
    docs = [(entry_doc_id(CHAIN, e["sequence"]), e) for e in stored]
    legacy_docs = [(entry_doc_id(CHAIN, e["sequence"]), e) for e in entries]
    head = {"lastSequence": entries[-1]["sequence"], "headHash": entries[-1]["hash"], "count": len(entries)}
    bodies = [{k: v for k, v in e.items() if k != "hash"} for e in entries]
    preimages = [(e["prevHash"] + e[CANONICAL_FIELD]).encode() for e in stored]
    checkpoint = (len(stored), merkle.root(merkle.leaf_hash(e[CANONICAL_FIELD].encode()) for e in stored))

    def sha_only() -> int:
        for data in preimages:
            hashlib.sha256(data).hexdigest()
        return len(preimages)

    def verify_full() -> int:
        result = verify_chain(CHAIN, docs, head, [checkpoint])
        assert result.valid
        return result.entries_checked

    def verify_full_reencoding() -> int:
        result = verify_chain(CHAIN, legacy_docs, head, [checkpoint])
        assert result.valid
        return result.entries_checked

    def verify_hot_loop() -> int:
        return verify_entries_in_memory(entries)

    def verify_bytes_hot_loop() -> int:
        assert verify_stored_bytes_in_memory(stored) == len(stored)
        return len(stored)

    def merkle_root() -> int:
        merkle.root(merkle.leaf_hash(data) for data in preimages)
        return len(preimages)

    sample = bodies[: min(len(bodies), 20_000)]

    def encode_fast() -> int:
        for entry in entries[: len(sample)]:
            canonical_entry(entry)
        return len(sample)

    def verify_reference() -> int:  # the same hot loop with the reference encoder
        ok, prev = 0, GENESIS_HASH
        for entry, body in zip(entries[: len(sample)], sample):
            if entry["prevHash"] == prev and hashlib.sha256(prev.encode() + rfc8785.dumps(body)).hexdigest() == entry["hash"]:
                ok += 1
            prev = entry["hash"]
        return ok

    def encode_reference() -> int:
        for body in sample:
            rfc8785.dumps(body)
        return len(sample)

    payloads = [e["payload"] for e in entries]
    c_encode = canonical._c_encode  # the C encoder exactly as canonical_str calls it (sort_keys, ":" ",")

    def payload_walk() -> int:
        scan = canonical._scan
        for payload in payloads:
            scan(payload)
        return len(payloads)

    def payload_c_encoder() -> int:
        for payload in payloads:
            "".join(c_encode(payload, 0))
        return len(payloads)

    sha = cpu_rate(sha_only)
    full = cpu_rate(verify_full)
    full_legacy = cpu_rate(verify_full_reencoding, repeats=3)
    hot = cpu_rate(verify_hot_loop)
    hot_bytes = cpu_rate(verify_bytes_hot_loop)
    tree = cpu_rate(merkle_root)
    fast = cpu_rate(encode_fast)
    ref = cpu_rate(encode_reference)
    ref_verify = cpu_rate(verify_reference)
    walk = cpu_rate(payload_walk)
    c_json = cpu_rate(payload_c_encoder)
    note = f"{N_ENTRIES:,} entries, 20 % with floats; CPU time, median of 5"
    baseline = f"SHA-256 alone {sha / 1e3:.0f}k/s"
    table.row("ledger verify hot loop over stored bytes (hash + link + fields check)", f"{hot_bytes / 1e3:.0f}k entries/s",
              baseline, hot_bytes / sha, note + "; goal 300k/s")
    table.row("ledger verify_chain over stored bytes, with Merkle root vs checkpoint", f"{full / 1e3:.0f}k entries/s",
              baseline, full / sha, "ids, links, head, fields, tree (2 more SHA-256 per entry)")
    table.row("ledger verify hot loop by re-encoding (before: hash + link only)", f"{hot / 1e3:.0f}k entries/s",
              baseline, hot / sha, "today's verifier for entries sealed without their bytes")
    table.row("ledger verify_chain by re-encoding, with Merkle root", f"{full_legacy / 1e3:.0f}k entries/s",
              baseline, full_legacy / sha, "median of 3")
    table.row("  Merkle root alone (leaf + node hashes)", f"{tree / 1e3:.0f}k leaves/s", baseline, tree / sha,
              "RFC 9162 tree over the same bytes")
    table.row("ledger verify hot loop with the rfc8785 package", f"{ref_verify / 1e3:.0f}k entries/s",
              f"SHA-256 alone {sha / 1e3:.0f}k/s", ref_verify / sha, f"{len(sample):,} entries: the reference encoder")
    table.row("canonical encoding of an entry: offerlab", f"{fast / 1e3:.0f}k entries/s",
              f"rfc8785 package {ref / 1e3:.0f}k/s", fast / ref,
              "byte-identical (tests/unit/test_ledger_canonical.py, test_ledger_chain.py)")
    table.row("  where it goes: payload validation walk alone", f"{walk / 1e3:.0f}k payloads/s",
              f"SHA-256 alone {sha / 1e3:.0f}k/s", walk / sha, "canonical._scan: member names, numbers, types")
    table.row("  where it goes: payload through the C json encoder alone", f"{c_json / 1e3:.0f}k payloads/s",
              f"SHA-256 alone {sha / 1e3:.0f}k/s", c_json / sha, "json's C encoder, sort_keys: the stdlib floor")


def latency_rows(table: Table) -> None:
    """Write an event document, poll until its sealed entry exists; sequential, one fresh chain per sample."""
    from benchmarks.bench_callable import describe, ping_latencies  # noqa: PLC0415
    from offerlab.store import collections as C  # noqa: PLC0415
    from offerlab.store.ledger import FirestoreLedgerRepository  # noqa: PLC0415
    from offerlab.store.client import db  # noqa: PLC0415

    from benchmarks.bench_callable import client  # noqa: PLC0415

    deadline = time.monotonic() + 180  # the functions emulator loads the functions after the suite is "up"
    while True:
        try:
            client().ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    repo = FirestoreLedgerRepository()
    baseline = ping_latencies(n=30)
    samples = []
    for i in range(LATENCY_SAMPLES + 3):
        experiment_id = f"bench-lat-{uuid.uuid4().hex[:10]}"
        start = time.perf_counter()
        db().collection(C.EXPERIMENT_EVENTS).document(f"{experiment_id}_1").set({
            "experimentId": experiment_id, "eventType": "EXPERIMENT_SUBMITTED", "actor": "bench@company.com",
            "version": 1, "occurredAt": datetime.now(timezone.utc)})
        deadline = start + 60
        while time.perf_counter() < deadline:
            head = repo.read_head(experiment_id)
            if head and head.get("count") == 1:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("an event was not sealed within 60 s")
        if i >= 3:  # the first few warm the trigger's worker
            samples.append(time.perf_counter() - start)
    table.row("ledger append latency: event write → sealed entry", describe(samples),
              f"ping {percentile(baseline, 50) * 1e3:.1f} ms p50", percentile(samples, 50) / percentile(baseline, 50),
              f"{len(samples)} sequential events, emulator, polled every 10 ms")


def run(table: Table) -> None:
    in_memory_rows(table)
    if os.environ.get("OFFERLAB_FUNCTIONS_URL") and os.environ.get("FIRESTORE_EMULATOR_HOST"):
        latency_rows(table)
    else:
        print("  (emulator suite not running: latency row skipped; run through scripts/with-emulators)")

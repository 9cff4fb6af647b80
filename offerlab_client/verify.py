"""Check an exported audit report offline: no Firestore, no credentials, no network (docs/ledger.md §12).

    python -m offerlab_client.verify REPORT.json --key VKEY [--key VKEY ...]
                                     [--checkpoint CP.txt ...] [--consistency-proof PROOF.json ...]

``--key`` is a verifier key handed over out of band: the log's (``<name>+<id>+<base64>``, type 0x01),
and optionally a witness's (type 0x04): a witness key given here must have cosigned the report's
checkpoint or one of the ``--checkpoint`` files. What is checked:

1. the report's checkpoint is a well-formed C2SP signed note, signed by a given key, for this chain;
2. the report's entries (``ledger.leaves``) are the entries 1..N of that checkpoint's tree: each one's
   bytes hash into the hash chain and, as RFC 9162 leaves, into the checkpoint's root — the inclusion of
   every entry of the report;
3. every history section (approvals, timeline, …) is exactly what those entries say (re-derived by
   ``offerlab.ledger.report.history_sections``) and every item names its entry's sequence and leaf index;
4. the report's attestation (a note by the log key over the whole report) matches the file, so an edit
   anywhere is caught, the parts the ledger does not cover included;
5. each ``--checkpoint`` (e.g. one filed with an earlier board pack, or a later one from the published
   bucket) is signed by a given key and consistent with the report: an earlier or equal one is checked
   against the report's own entries, a later one needs ``--consistency-proof`` (the JSON of
   ``get_consistency_proof``).

Exit status 0 and ``OK ...`` when everything holds; otherwise 1 and one line naming the first problem
(2 for unreadable input). From code: ``verify_report(report, keys, checkpoints, proofs) -> Result``.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

if importlib.util.find_spec("offerlab") is None:  # run from a checkout: the pure ledger core lives in functions/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from offerlab.ledger import merkle, note  # noqa: E402
from offerlab.ledger.canonical import canonicalize  # noqa: E402
from offerlab.ledger.chain import GENESIS_HASH, decode_exact  # noqa: E402
from offerlab.ledger.checkpoint import Checkpoint, origin  # noqa: E402
from offerlab.ledger.report import ATTESTATION_HEADER, SECTIONS, history_sections  # noqa: E402


@dataclass
class Result:
    ok: bool
    problems: list[str] = field(default_factory=list)      # the first one is what the command prints
    tree_size: int = 0
    root_hash: str = ""
    entries: int = 0
    signed_by: list[str] = field(default_factory=list)     # key names that verified the report's checkpoint
    witnesses: list[str] = field(default_factory=list)
    checkpoints: int = 0                                    # extra checkpoints found consistent

    @property
    def line(self) -> str:
        if self.ok:
            extra = f"; {self.checkpoints} further checkpoint(s) consistent" if self.checkpoints else ""
            witnessed = f", cosigned by {', '.join(self.witnesses)}" if self.witnesses else ""
            return (f"OK: {self.entries} entries included in the checkpoint of tree size {self.tree_size} "
                    f"(root {self.root_hash}) signed by {', '.join(self.signed_by)}{witnessed}; every history "
                    f"section matches the entries; attestation matches{extra}")
        return f"FAILED: {self.problems[0]}"


class _Fail(Exception):
    pass


def _keys(keys: Iterable[str | note.Verifier]) -> list[note.Verifier]:
    out = []
    for key in keys:
        if isinstance(key, note.Verifier):
            out.append(key)
            continue
        try:
            out.append(note.Verifier.parse(key))
        except note.NoteError as err:
            raise _Fail(f"malformed verifier key {key!r}: {err}") from None
    if not out:
        raise _Fail("no verifier key given")
    return out


def _open(text: Any, keys: list[note.Verifier], what: str) -> note.Note:
    if not isinstance(text, str):
        raise _Fail(f"{what} is missing")
    try:
        return note.open_note(text, keys)
    except note.NoteError as err:
        reason = {"MALFORMED_NOTE": "is not a well-formed signed note",
                  "UNKNOWN_KEY": "is signed by no key you gave (unknown key)",
                  "INVALID_SIGNATURE": "has a signature that does not verify"}.get(err.code, "is refused")
        raise _Fail(f"{what} {reason}: {err}") from None


def _checkpoint(opened: note.Note, what: str) -> Checkpoint:
    try:
        return Checkpoint.parse(opened.text)
    except note.NoteError as err:
        raise _Fail(f"{what} is not a checkpoint: {err}") from None


def _log_keys(opened: note.Note) -> list[note.Verifier]:
    return [v for v, _ in opened.verified if v.key_type == note.ED25519]


def _check_entries(report: dict[str, Any], chain_id: str, checkpoint: Checkpoint) -> list[dict[str, Any]]:
    leaves = (report.get("ledger") or {}).get("leaves")
    if not isinstance(leaves, list):
        raise _Fail("the report carries no ledger entries (ledger.leaves)")
    if len(leaves) != checkpoint.size:
        raise _Fail(f"the report carries {len(leaves)} entries but its checkpoint covers {checkpoint.size}")
    entries, prev, leaf_hashes = [], GENESIS_HASH, []
    for position, leaf in enumerate(leaves, start=1):
        text = leaf.get("canonical") if isinstance(leaf, dict) else None
        if not isinstance(text, str):
            raise _Fail(f"entry {position} has no canonical bytes")
        try:
            entry = decode_exact(text)
        except ValueError:
            raise _Fail(f"entry {position}'s bytes are not JSON") from None
        if not isinstance(entry, dict) or entry.get("sequence") != position or leaf.get("sequence") != position:
            raise _Fail(f"entry {position} is out of place (its bytes or the report name another sequence)")
        if leaf.get("leafIndex") != position - 1:
            raise _Fail(f"entry {position} names leaf index {leaf.get('leafIndex')}, not {position - 1}")
        if entry.get("experimentId") != chain_id:
            raise _Fail(f"entry {position} belongs to another chain")
        if entry.get("prevHash") != prev:
            raise _Fail(f"entry {position} does not link to the entry before it")
        digest = hashlib.sha256((prev + text).encode("utf-8")).hexdigest()
        if digest != leaf.get("hash"):
            raise _Fail(f"entry {position}'s bytes do not match its hash")
        prev = digest
        leaf_hashes.append(merkle.leaf_hash(text.encode("utf-8")))
        entries.append({**entry, "hash": digest})
    if merkle.root(leaf_hashes) != checkpoint.root:
        raise _Fail(f"the report's entries do not hash to the checkpoint's root (tree size {checkpoint.size})")
    return entries


def _check_sections(report: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    derived = history_sections(entries)
    for name in SECTIONS:
        if report.get(name) != derived[name]:
            raise _Fail(f"the report's {name} section differs from what its entries say")
    summary = report.get("ledger") or {}
    expected = {"entries": len(entries), "treeSize": len(entries),
                "firstSequence": 1 if entries else None, "lastSequence": len(entries) or None,
                "headHash": entries[-1]["hash"] if entries else None}
    for key, value in expected.items():
        if summary.get(key) != value:
            raise _Fail(f"the report's ledger.{key} is {summary.get(key)!r}, its entries say {value!r}")


def _check_attestation(report: dict[str, Any], keys: list[note.Verifier], checkpoint: Checkpoint) -> None:
    opened = _open(report.get("attestation"), keys, "the report's attestation")
    lines = opened.text.split("\n")
    body = {k: v for k, v in report.items() if k != "attestation"}
    try:
        digest = base64.b64encode(hashlib.sha256(canonicalize(body)).digest()).decode()
    except Exception:  # noqa: BLE001 - a value no RFC 8785 encoding exists for: tampered
        raise _Fail("the report holds a value that cannot be encoded (tampered)") from None
    if lines[:4] != [ATTESTATION_HEADER, checkpoint.origin, str(checkpoint.size), digest]:
        raise _Fail("the report was changed after it was exported (its attestation does not match the file)")


def verify_report(report: dict[str, Any], keys: Sequence[str | note.Verifier],
                  checkpoints: Sequence[str] = (), proofs: Sequence[dict[str, Any]] = ()) -> Result:
    """Check an exported report (the parsed JSON of ``export_audit_report?format=json``) with the given
    verifier keys, optionally against further checkpoints (note texts) and consistency proofs."""
    result = Result(ok=False)
    try:
        verifiers = _keys(keys)
        if not isinstance(report, dict) or not isinstance(report.get("experimentId"), str):
            raise _Fail("this is not an audit report (no experimentId)")
        chain_id = report["experimentId"]
        embedded = report.get("checkpoint")
        if not isinstance(embedded, dict):
            raise _Fail("the report carries no signed checkpoint")
        opened = _open(embedded.get("note"), verifiers, "the report's checkpoint")
        checkpoint = _checkpoint(opened, "the report's checkpoint")
        log_keys = _log_keys(opened)
        if not log_keys or not any(checkpoint.origin == origin(k.name, chain_id) for k in log_keys):
            raise _Fail(f"the report's checkpoint is not a checkpoint of chain {chain_id} by a log key you gave")
        entries = _check_entries(report, chain_id, checkpoint)
        _check_sections(report, entries)
        _check_attestation(report, [k for k in verifiers if k.key_type == note.ED25519], checkpoint)
        witnessed = {v.vkey for v, _ in opened.verified if v.key_type == note.COSIGNATURE_V1}
        leaf_hashes = [merkle.leaf_hash(leaf["canonical"].encode()) for leaf in report["ledger"]["leaves"]]
        for position, text in enumerate(checkpoints, start=1):
            what = f"checkpoint {position}"
            other_note = _open(text, verifiers, what)
            other = _checkpoint(other_note, what)
            if other.origin != checkpoint.origin:
                raise _Fail(f"{what} is of another log ({other.origin})")
            if other.size <= checkpoint.size:
                if merkle.root(leaf_hashes[:other.size]) != other.root:
                    raise _Fail(f"{what} (tree size {other.size}) is not consistent with the report's entries")
            else:
                proof = next((p for p in proofs if p.get("fromSize") == checkpoint.size and p.get("toSize") == other.size),
                             None)
                if proof is None:
                    raise _Fail(f"{what} is larger than the report's tree: give the consistency proof "
                                f"{checkpoint.size} → {other.size} (--consistency-proof)")
                try:
                    hashes = [base64.b64decode(h, validate=True) for h in proof.get("proof") or []]
                except ValueError:
                    raise _Fail(f"the consistency proof for {what} is not base64") from None
                if not merkle.verify_consistency(checkpoint.size, other.size, checkpoint.root, other.root, hashes):
                    raise _Fail(f"{what} (tree size {other.size}) is not consistent with the report's checkpoint")
            witnessed |= {v.vkey for v, _ in other_note.verified if v.key_type == note.COSIGNATURE_V1}
            result.checkpoints += 1
        missing = [k.name for k in verifiers if k.key_type == note.COSIGNATURE_V1 and k.vkey not in witnessed]
        if missing:
            raise _Fail(f"no cosignature by witness {', '.join(missing)} on the report's or a given checkpoint")
        result.ok = True
        result.tree_size, result.root_hash, result.entries = checkpoint.size, checkpoint.root_b64, len(entries)
        result.signed_by = [k.name for k in log_keys]
        result.witnesses = sorted({v.name for v in verifiers if v.vkey in witnessed})
    except _Fail as problem:
        result.problems.append(str(problem))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offerlab_client.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="an exported audit report (JSON)")
    parser.add_argument("--key", action="append", default=[], required=True, help="a verifier key (repeatable)")
    parser.add_argument("--checkpoint", action="append", default=[], help="a further checkpoint note file")
    parser.add_argument("--consistency-proof", action="append", default=[], help="get_consistency_proof's JSON")
    args = parser.parse_args(argv)
    try:
        report = json.loads(Path(args.report).read_text(encoding="utf-8-sig"))
        checkpoints = [Path(p).read_text(encoding="utf-8") for p in args.checkpoint]
        proofs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.consistency_proof]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        print(f"FAILED: cannot read the input: {err}")
        return 2
    result = verify_report(report, args.key, checkpoints, proofs)
    print(result.line)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

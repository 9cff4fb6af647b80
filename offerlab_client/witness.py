"""A small witness: cosigns a ledger checkpoint after checking that it is consistent with the last one
it saw of that log (c2sp.org/tlog-cosignature, "cosignature/v1", Ed25519). Run by someone who is not the
operator — an auditor, the board's secretary — with a key the operator never holds (docs/ledger.md §12).

    python -m offerlab_client.witness keygen NAME --out witness.key        prints the witness's verifier key
    python -m offerlab_client.witness cosign --key witness.key --log-key VKEY --state DIR \\
        --checkpoint CP.txt [--consistency-proof PROOF.json] [--out COSIGNED.txt]

``cosign`` refuses (exit 1, one line) a checkpoint that is not signed by the log key, that is smaller
than the last one it cosigned, that has another root at the same size (a fork), or that is larger without
a consistency proof (``get_consistency_proof {fromSize: last seen, toSize: new}``) that verifies. The
first checkpoint of a log is taken on trust (the witness has nothing to compare it with) and remembered
in ``--state``. The output is the checkpoint with the witness's cosignature line added.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if importlib.util.find_spec("offerlab") is None:  # run from a checkout: the pure ledger core lives in functions/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from offerlab.ledger import merkle, note  # noqa: E402
from offerlab.ledger.checkpoint import Checkpoint  # noqa: E402


class WitnessRefusal(Exception):
    pass


def _state_file(state_dir: Path, origin_line: str) -> Path:
    return state_dir / f"{hashlib.sha256(origin_line.encode()).hexdigest()[:32]}.json"


def cosign(checkpoint_note: str, log_key: str | note.Verifier, witness: note.Signer, state_dir: Path,
           proof: dict[str, Any] | None = None, now: int | None = None) -> str:
    """The checkpoint with this witness's cosignature, after the checks above; remembers it in ``state_dir``."""
    verifier = log_key if isinstance(log_key, note.Verifier) else note.Verifier.parse(log_key)
    try:
        opened = note.open_note(checkpoint_note, [verifier])
        checkpoint = Checkpoint.parse(opened.text)
    except note.NoteError as err:
        raise WitnessRefusal(f"the checkpoint is refused: {err}") from None
    state_dir.mkdir(parents=True, exist_ok=True)
    path = _state_file(state_dir, checkpoint.origin)
    if path.exists():
        last = json.loads(path.read_text())
        old_size, old_root = int(last["treeSize"]), base64.b64decode(last["rootHash"])
        if checkpoint.size < old_size:
            raise WitnessRefusal(f"tree size {checkpoint.size} is smaller than the {old_size} already cosigned")
        if checkpoint.size == old_size and checkpoint.root != old_root:
            raise WitnessRefusal(f"a different root at tree size {old_size}: the log forked")
        if checkpoint.size > old_size:
            if not proof or proof.get("fromSize") != old_size or proof.get("toSize") != checkpoint.size:
                raise WitnessRefusal(f"a consistency proof {old_size} → {checkpoint.size} is needed")
            hashes = [base64.b64decode(h) for h in proof.get("proof") or []]
            if not merkle.verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, hashes):
                raise WitnessRefusal(f"tree size {checkpoint.size} is not consistent with the {old_size} cosigned before")
    cosigned = note.add_signature(checkpoint_note, witness, timestamp=int(time.time()) if now is None else now)
    path.write_text(json.dumps({"origin": checkpoint.origin, "treeSize": checkpoint.size,
                                "rootHash": checkpoint.root_b64}))
    return cosigned


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offerlab_client.witness")
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="create a witness key (keep it away from the operator)")
    keygen.add_argument("name")
    keygen.add_argument("--out", required=True)
    sign = commands.add_parser("cosign", help="cosign a checkpoint consistent with the last one seen")
    sign.add_argument("--key", required=True, help="the witness's key file")
    sign.add_argument("--log-key", required=True, help="the log's verifier key")
    sign.add_argument("--state", required=True, help="a directory where the witness remembers what it cosigned")
    sign.add_argument("--checkpoint", required=True)
    sign.add_argument("--consistency-proof")
    sign.add_argument("--out")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            signer = note.Signer.generate(args.name, note.COSIGNATURE_V1)
            out = Path(args.out)
            out.write_text(signer.skey + "\n")
            out.chmod(0o600)
            print(signer.verifier.vkey)
            return 0
        witness = note.Signer.parse(Path(args.key).read_text())
        proof = json.loads(Path(args.consistency_proof).read_text()) if args.consistency_proof else None
        cosigned = cosign(Path(args.checkpoint).read_text(encoding="utf-8"), args.log_key, witness,
                          Path(args.state), proof)
    except (WitnessRefusal, note.NoteError, OSError, ValueError) as err:
        print(f"REFUSED: {err}")
        return 1
    if args.out:
        Path(args.out).write_text(cosigned, encoding="utf-8")
    else:
        sys.stdout.write(cosigned)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ledger's signing key for the emulators, and key generation for production (docs/ledger.md §11).

    python scripts/ledger_key.py generate NAME     print a new signer key (line 1) and its verifier key
                                                   (line 2): store line 1 in Secret Manager, publish line 2

``ensure(cache)`` (called by scripts/emulators.py) creates ``.cache/ledger/signing.key`` (git-ignored) on
first use and returns its path; the verifier key is written beside it (``verifier.vkey``).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "functions"))

from offerlab.ledger.note import Signer  # noqa: E402

EMULATOR_KEY_NAME = "demo-offerlab.offerlab.example/ledger"


def ensure(cache: Path) -> Path:
    folder = cache / "ledger"
    key = folder / "signing.key"
    if not key.exists():
        folder.mkdir(parents=True, exist_ok=True)
        signer = Signer.generate(EMULATOR_KEY_NAME)
        key.write_text(signer.skey + "\n")
        key.chmod(0o600)
        (folder / "verifier.vkey").write_text(signer.verifier.vkey + "\n")
    return key


def verifier_key(cache: Path) -> str:
    return Signer.parse(ensure(cache).read_text()).verifier.vkey


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "generate":
        s = Signer.generate(sys.argv[2])
        print(s.skey)
        print(s.verifier.vkey)
    else:
        sys.exit(__doc__)

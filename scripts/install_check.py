"""Is an install current? By content, not by file dates (Makefile, `make install`).

    python3 scripts/install_check.py node            exit 0 when node_modules matches package-lock.json
    python3 scripts/install_check.py console         the same for the console (console/node_modules)
    python3 scripts/install_check.py python          exit 0 when the venv was installed from these requirements
    python3 scripts/install_check.py python --record  remember that it was (after a successful pip install)

A fresh clone gives every file a new date, so make's date rule would re-run `npm ci` and pip on every
clone; `npm ci` deletes node_modules first, and a clone whose node_modules links to a shared install
(several worktrees of one machine) would wipe everyone's. npm records the tree it installed in
node_modules/.package-lock.json ("hidden lockfile", npm ≥ 7): the install is current when every package of
package-lock.json is there with the same version and integrity. For the venv we keep the digest of the
requirement files in functions/venv/.installed.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = (ROOT / "functions/requirements.txt", ROOT / "requirements-dev.txt")
VENV_STAMP = ROOT / "functions/venv/.installed"


def node_current(root: Path = ROOT) -> bool:
    try:
        wanted = json.loads((root / "package-lock.json").read_text())["packages"]
        installed = json.loads((root / "node_modules/.package-lock.json").read_text())["packages"]
    except (OSError, ValueError, KeyError):
        return False
    for path, package in wanted.items():
        if not path:  # the project itself
            continue
        have = installed.get(path)
        if package.get("extraneous") or (package.get("optional") and have is None):
            continue  # npm does not install extraneous entries; an optional one may be for another platform
        if have is None or any(have.get(k) != package.get(k) for k in ("version", "integrity")):
            return False
    return True


def requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in REQUIREMENTS:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def python_current() -> bool:
    try:
        return VENV_STAMP.read_text().strip() == requirements_digest()
    except OSError:
        return False


def main(argv: list[str]) -> int:
    what = argv[0] if argv else ""
    if what == "node":
        return 0 if node_current() else 1
    if what == "console":
        return 0 if node_current(ROOT / "console") else 1
    if what == "python" and argv[1:] == ["--record"]:
        VENV_STAMP.write_text(requirements_digest() + "\n")
        return 0
    if what == "python":
        return 0 if python_current() else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

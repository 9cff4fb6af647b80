"""Architecture checks: the pure core stays pure, collection names stay in the store, and main.py
keeps heavy modules out of cold start."""
import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "functions" / "offerlab"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_stats_and_ledger_core_import_nothing_from_firebase_or_google():
    for folder in ("domain", "stats"):
        for path in (PKG / folder).rglob("*.py"):
            bad = {n for n in _imports(path) if n.split(".")[0] in {"firebase_functions", "firebase_admin", "google"}}
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_the_store_spells_collection_names():
    from offerlab.store.collections import ALL_COLLECTIONS

    for path in PKG.rglob("*.py"):
        if path.parent.name == "store":
            continue
        text = path.read_text()
        for name in ALL_COLLECTIONS:
            assert f'"{name}' not in text and f"'{name}" not in text, f"{path.relative_to(ROOT)} names {name}"


def test_importing_main_loads_no_numpy_scipy_or_firestore_client():
    code = ("import sys, main; heavy = [m for m in ('numpy', 'scipy', 'google.cloud.firestore') if m in sys.modules];"
            "import json; print(json.dumps(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "functions", capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []

"""The ledger core stays pure: offerlab/ledger imports nothing from Firebase or Google (docs/ledger.md)."""
import ast
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "functions" / "offerlab" / "ledger"


def test_the_ledger_core_imports_nothing_from_firebase_or_google():
    files = list(LEDGER.rglob("*.py"))
    assert len(files) >= 4
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert name.split(".")[0] not in {"firebase_functions", "firebase_admin", "google"}, (path, name)

"""Make ``offerlab`` importable without relying on another conftest: put <repo>/functions first."""
import sys
from pathlib import Path

FUNCTIONS = str(Path(__file__).resolve().parents[3] / "functions")
if FUNCTIONS not in sys.path:
    sys.path.insert(0, FUNCTIONS)

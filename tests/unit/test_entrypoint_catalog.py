"""main.py loads only the serving function's module (cold start): the catalog must match the modules."""
import importlib
import os
import subprocess
import sys
from pathlib import Path

from offerlab.entrypoints.catalog import AREAS, FUNCTIONS, modules_to_load

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def test_catalog_lists_exactly_each_modules_exports():
    assert set(FUNCTIONS) == set(AREAS)
    for area in AREAS:
        module = importlib.import_module(f"offerlab.entrypoints.{area}")
        assert sorted(module.__all__) == sorted(FUNCTIONS[area]), area
        for name in module.__all__:
            assert hasattr(getattr(module, name), "__firebase_endpoint__"), f"{area}.{name} is not a function"


def test_known_target_loads_one_module_and_unknown_or_none_loads_all():
    assert modules_to_load("get_offer") == ["offerlab.entrypoints.offers"]
    assert len(modules_to_load(None)) == len(AREAS) == len(modules_to_load("no_such_function"))


def _main_exports(target: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "FUNCTION_TARGET"}
    if target:
        env["FUNCTION_TARGET"] = target
    code = "import main; print(sorted(n for n in dir(main) if hasattr(getattr(main, n), '__firebase_endpoint__')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=FUNCTIONS_DIR, env=env, capture_output=True,
                         text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])  # a printed list of names


def test_main_exports_every_function_for_discovery_and_one_area_for_a_target():
    assert _main_exports(None) == sorted(n for names in FUNCTIONS.values() for n in names)
    assert _main_exports("get_offer") == ["get_offer"]

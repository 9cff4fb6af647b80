"""Cold start: the package and the guardrail path import no numpy/scipy; nothing imports Firebase."""
import json
import subprocess
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"


def loaded_after(statement: str, top_level: bool = True) -> list[str]:
    names = "m.split('.')[0]" if top_level else "m"
    code = (f"import sys; {statement}; import json; "
            f"print(json.dumps(sorted({{{names} for m in sys.modules}})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=FUNCTIONS, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_package_import_is_light():
    loaded = loaded_after("import offerlab.stats")
    assert "numpy" not in loaded and "scipy" not in loaded


def test_guardrail_path_needs_neither_numpy_nor_scipy():
    loaded = loaded_after("from offerlab.stats.sequential import guardrail_breached; "
                          "from offerlab.stats.sufficient import MomentStats")
    assert "numpy" not in loaded and "scipy" not in loaded


def test_streaming_planning_and_srm_paths_need_neither_numpy_nor_scipy():
    loaded = loaded_after("from offerlab.stats.streaming import delta_contribution; "
                          "from offerlab.stats.planning import plan_power; "
                          "from offerlab.stats.sequential import sequential_srm, always_valid_lift, kpi_guardrail_test")
    assert "numpy" not in loaded and "scipy" not in loaded


def test_nothing_in_stats_pulls_in_firebase_or_google():
    # the interpreter may preload the bare ``google`` namespace (site .pth files): compare with that
    baseline = set(loaded_after("pass", top_level=False))
    loaded = set(loaded_after("import offerlab.stats.corrections, offerlab.stats.frequentist, "
                              "offerlab.stats.sequential, offerlab.stats.planning, offerlab.stats.streaming",
                              top_level=False))
    new = loaded - baseline
    assert not [m for m in new if m.split(".")[0] in {"firebase_admin", "firebase_functions", "google"}]
    assert "numpy" in new  # sanity: the statement did import the heavy modules

"""Architecture checks from the import graph: the pure core stays pure, the service never reaches up into
the api, no import cycle exists anywhere (function-local imports included, so none can hide one),
collection names stay in the store, and main.py keeps heavy modules out of cold start."""
import ast
import json
import re
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


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT / "functions").with_suffix("").parts).removesuffix(".__init__")


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``path``)."""
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """Every module of the package and everything it imports, at module level or inside a function."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                module = _resolve(path, node)
                targets.add(module)
                targets.update(f"{module}.{a.name}" for a in node.names)
        graph[_module_name(path)] = targets
    return graph


def internal_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Only the edges between the package's own modules (``from pkg import mod`` counts as ``pkg.mod``)."""
    return {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan 1972), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


PURE_LAYERS = ("domain", "stats", "ledger")
FORBIDDEN_FOR_PURE = ("offerlab.api", "offerlab.service", "offerlab.store", "offerlab.entrypoints",
                      "google", "firebase_functions", "firebase_admin")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point up: the pure core reaching into api/service/store/entrypoints or Google/Firebase,
    and the service reaching into the api or the entry points."""
    bad = []
    for module, targets in sorted(graph.items()):
        layer = module.split(".")[1] if module.count(".") >= 1 else ""
        for target in sorted(targets):
            if layer in PURE_LAYERS and target.startswith(FORBIDDEN_FOR_PURE):
                bad.append(f"{module} -> {target}")
            if layer == "service" and target.startswith(("offerlab.api", "offerlab.entrypoints")):
                bad.append(f"{module} -> {target}")
    return bad


def test_the_pure_core_and_the_service_import_nothing_above_them():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_exists_even_through_function_local_imports():
    assert cycles(internal_edges(import_graph())) == []


def test_the_checks_catch_a_planted_upward_import_and_a_planted_cycle(tmp_path):
    """The two checks above fail when the rule is broken (a check that cannot fail proves nothing)."""
    pkg = tmp_path / "functions" / "offerlab"
    for folder in ("domain", "service", "api"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "domain" / "rules.py").write_text("from offerlab.service import cases\n")
    (pkg / "service" / "cases.py").write_text("def f():\n    from offerlab.domain import rules\n"
                                              "    from offerlab.api.auth import Caller\n")
    (pkg / "api" / "auth.py").write_text("")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        graph = import_graph(pkg)
    finally:
        ROOT = saved
    assert upward_imports(graph) == ["offerlab.domain.rules -> offerlab.service",
                                     "offerlab.domain.rules -> offerlab.service.cases",
                                     "offerlab.service.cases -> offerlab.api.auth",
                                     "offerlab.service.cases -> offerlab.api.auth.Caller"]
    assert cycles(internal_edges(graph)) == [["offerlab.domain.rules", "offerlab.service.cases"]]


def test_no_code_hides_an_import_cycle_or_refers_to_history():
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        assert "import cycle" not in text.lower(), f"{path.relative_to(ROOT)} works around an import cycle"
        assert not re.search(r"\bissue \d+|\(issue \d|added by", text, re.I), \
            f"{path.relative_to(ROOT)} refers to history (that is what git is for)"


def test_domain_stats_and_ledger_core_import_nothing_from_firebase_or_google():
    for folder in ("domain", "stats", "ledger"):
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

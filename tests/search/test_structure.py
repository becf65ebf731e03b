"""``search/`` stays one engine with task packages: no import cycle, imports point one way, and
no module over 300 lines or function over 60."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEARCH = ROOT / "search"
MODULES = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
           for p in SEARCH.rglob("*.py")}
# Who may not import whom inside search/ (prefixes): the engine and the leaves know no task.
FORBIDDEN = {
    "search.study": ("search.sr", "search.vit", "search.runners", "search.app"),
    "search.sr": ("search.vit", "search.runners", "search.app"),
    "search.vit": ("search.sr", "search.runners", "search.app"),
    "search.result": ("search.sr", "search.vit", "search.study.engine", "search.runners", "search.app"),
    "search.settings": ("search.sr", "search.vit", "search.study", "search.runners", "search.app"),
    "search.latency": ("search.sr", "search.vit", "search.study", "search.runners", "search.app"),
    "search.config": ("search.sr", "search.vit", "search.study", "search.runners", "search.app"),
    "search.fidelity": ("search.sr", "search.vit", "search.study", "search.runners", "search.app"),
}


def imports_of(path: Path) -> set[str]:
    """Every search module ``path`` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in MODULES}
    return found


GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(GRAPH[name]):
            if dep.startswith(name + "."):
                continue  # a package importing its own modules (its __init__) is no cycle
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    bad = {m: sorted(d for d in deps if d.startswith(FORBIDDEN[package]))
           for m, deps in GRAPH.items() if m == package or m.startswith(package + ".")}
    assert not {m: d for m, d in bad.items() if d}


def test_modules_and_functions_stay_short():
    long_modules = {str(p.relative_to(ROOT)): n for p in MODULES.values()
                    if (n := len(p.read_text().splitlines())) > 300}
    long_functions = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name} {lines}")
    assert not long_modules and not long_functions


def test_private_optuna_imports_are_only_the_named_ones():
    """search/study/__init__.py names each Optuna internal and why; nothing else reaches in."""
    named = {"optuna.storages._heartbeat", "optuna.samplers._lazy_random_state"}
    found = set()
    for path in SEARCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optuna"):
                if any(part.startswith("_") for part in node.module.split(".")):
                    found.add(node.module)
    assert found <= named, found - named

"""The import graph of ``core`` and ``channels``: no cycles, and the product imports neither adapters
(from ``core``) nor the benchmark or the tests.

Every import counts: at the top of a module, inside a function (lazy) and under
``TYPE_CHECKING`` (the type checker follows it). Two granularities are checked, and neither
may have a cycle:

- **modules**;
- **units**: each subpackage (``core.store``, ``core.handoff``, …) and each top-level module
  (``core.farm``, ``core.model``, ``channels.telegram``, …) is one unit.

Settings models live in leaf modules that `core.config` aggregates; features meet through
ports (`core.plugins`, `core.desk`, `core.ports`) and are composed in `core.farm`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "channels")

def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _resolve(name: str, known: Mapping[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imported(name: str, path: Path) -> Iterable[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def module_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for target in _imported(name, path):
            resolved = _resolve(target, known)
            if resolved is not None and resolved != name:
                graph[name].add(resolved)
    return graph


def unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and (ROOT / parts[0] / parts[1]).is_dir() else module


def unit_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = defaultdict(set)
    for importer, imported in graph.items():
        for target in imported:
            if unit(importer) != unit(target):
                units[unit(importer)].add(unit(target))
    return units


def cycles(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [{"a", "b", "c"}]


def test_no_module_imports_itself_back_through_others() -> None:
    found = cycles(module_graph())
    assert found == [], f"import cycles between modules: {[sorted(c) for c in found]}"


def test_no_package_imports_itself_back_through_others() -> None:
    units = unit_graph(module_graph())
    found = cycles(units)
    edges = sorted((a, b) for component in found for a in component for b in units[a] if b in component)
    assert found == [], f"import cycles between packages (importer -> imported): {edges}"


def test_core_never_imports_channels() -> None:
    graph = module_graph()
    offending = sorted((m, t) for m, ts in graph.items() if m.split(".")[0] == "core"
                       for t in ts if t.split(".")[0] == "channels")
    assert offending == [], f"core imports adapters directly (use the entry points): {offending}"


def test_the_product_never_imports_the_benchmark_or_the_tests() -> None:
    known = modules()
    offending = sorted((name, target) for name, path in known.items() for target in _imported(name, path)
                       if target.split(".")[0] in ("bench", "tests"))
    assert offending == [], f"the product imports bench/ or tests/ (run them as `python -m ...`): {offending}"

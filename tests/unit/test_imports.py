"""The import rules of docs/architecture.md, read from the source with ``ast``: imports go one way
(``schemas`` <- ``streams`` <- ``producers`` / ``processors`` <- ``kcollect``; ``producers`` and
``processors`` never import each other), and no two modules import each other, directly or through
others. Every import counts: at module level, inside a function, or under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"schemas": 0, "streams": 1, "producers": 2, "processors": 2, "kcollect": 3}
PACKAGES = tuple(LAYERS)
# Inside a package, its folders import one way too (docs/architecture.md): a folder may import only
# folders of a lower rank. Folders of one rank do not import each other.
FOLDER_LAYERS = {
    "streams.settings": 0,
    "streams.kafka": 1,
    "streams.clickhouse": 1,
    "streams.observability": 1,
    "streams.lag": 2,
    "streams.steps": 2,
    "streams.runs": 3,
    "producers.enqueue": 0,
    "producers.scheduler": 1,
    "processors.processor": 0,
    "processors.sink": 0,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imported(tree: ast.AST, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(module, line) for every import of one of ``modules``; ``from a import b`` names ``a.b`` when
    that is a module, else ``a``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in modules else node.module), node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    modules = source_modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for target, line in imported(ast.parse(path.read_text(), str(path)), modules):
            if target in modules and target != name:
                edges.setdefault(target, line)
    return graph


def top(module: str) -> str:
    return module.split(".", 1)[0]


def direction_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    found = []
    for source, edges in graph.items():
        for target, line in edges.items():
            a, b = top(source), top(target)
            if a != b and LAYERS[b] >= LAYERS[a]:
                found.append(f"{source} (line {line}) imports {target}: {a} may not import {b}")
    return found


def folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def folder_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    found = []
    for source, edges in graph.items():
        for target, line in edges.items():
            a, b = folder(source), folder(target)
            same_package = top(a) == top(b)
            if (
                same_package
                and a != b
                and a in FOLDER_LAYERS
                and b in FOLDER_LAYERS
                and FOLDER_LAYERS[b] >= FOLDER_LAYERS[a]
            ):
                found.append(f"{source} (line {line}) imports {target}: {a} may not import {b}")
    return found


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_is_read() -> None:
    graph = import_graph()
    assert {top(m) for m in graph} == set(PACKAGES)
    assert sum(len(edges) for edges in graph.values()) > 100  # the parser sees the imports


def test_imports_go_one_way() -> None:
    assert direction_violations(import_graph()) == []


def test_folders_inside_a_package_import_one_way() -> None:
    graph = import_graph()
    assert set(FOLDER_LAYERS) <= {folder(m) for m in graph}  # every folder named here exists
    assert folder_violations(graph) == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_checks_catch_what_they_forbid() -> None:
    graph = {
        "streams.a": {"processors.b": 3},
        "processors.b": {"producers.c": 4, "streams.a": 1},
        "producers.c": {"schemas.d": 2},
        "schemas.d": {},
    }
    assert direction_violations(graph) == [
        "streams.a (line 3) imports processors.b: streams may not import processors",
        "processors.b (line 4) imports producers.c: processors may not import producers",
    ]
    assert cycles(graph) == [["processors.b", "streams.a"]]
    layered = {"streams.kafka.x": {"streams.lag.y": 7}, "streams.lag.y": {"streams.kafka.x": 2}}
    assert folder_violations(layered) == [
        "streams.kafka.x (line 7) imports streams.lag.y: streams.kafka may not import streams.lag"
    ]

"""The import rules of docs/architecture.md, read from the source with ``ast``: imports go one way
(``schemas`` <- ``streams`` <- ``producers`` / ``processors`` <- ``kcollect``; ``producers`` and
``processors`` never import each other; nothing but the entry point imports the CLI, ``kcollect.cli``),
and no two modules import each other, directly or through others. Every import counts: at module level,
inside a function, under ``TYPE_CHECKING``, absolute or relative."""

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
# The CLI is on top of its package: the other folders of ``kcollect`` may import each other, never it.
TOP_FOLDERS = {"kcollect.cli"}
# Test tools, not services: only the CLI (``kcollect simulate``) and the tests use them.
TEST_TOOLS = {"kcollect.testkit"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a ``from`` import names, a relative one (``from ..lag import probe``) resolved
    against ``importer`` (a package's ``__init__`` is its own package)."""
    if node.level == 0:
        return node.module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported(
    tree: ast.AST, modules: dict[str, Path], importer: str = "", is_package: bool = False
) -> Iterator[tuple[str, int]]:
    """(module, line) for every import of one of ``modules`` by ``importer``; ``from a import b`` names
    ``a.b`` when that is a module, else ``a``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, importer, is_package)
            for alias in node.names:
                full = f"{module}.{alias.name}"
                yield (full if full in modules else module), node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    modules = source_modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        tree = ast.parse(path.read_text(), str(path))
        for target, line in imported(tree, modules, name, path.name == "__init__.py"):
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


def top_folder_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """Imports of a ``TOP_FOLDERS`` folder from another folder of its package (a module at the
    package's top, such as ``kcollect.__main__``, is its entry point and may)."""
    found = []
    for source, edges in graph.items():
        for target, line in edges.items():
            a, b = folder(source), folder(target)
            if b in TOP_FOLDERS and a != b and a != source and top(a) == top(b):
                found.append(f"{source} (line {line}) imports {target}: only the entry point imports {b}")
    return found


def tool_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    found = []
    for source, edges in graph.items():
        for target, line in edges.items():
            a, b = folder(source), folder(target)
            if b in TEST_TOOLS and a != b and a not in TOP_FOLDERS:
                found.append(f"{source} (line {line}) imports {target}: {b} is a test tool")
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


def test_only_the_entry_point_imports_the_cli() -> None:
    graph = import_graph()
    assert {folder(m) for m in graph} >= TOP_FOLDERS
    assert top_folder_violations(graph) == []


def test_no_service_imports_a_test_tool() -> None:
    graph = import_graph()
    assert {folder(m) for m in graph} >= TEST_TOOLS
    assert tool_violations(graph) == []


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
    assert top_folder_violations(
        {"kcollect.ops.dlq": {"kcollect.cli.errors": 5}, "kcollect.__main__": {"kcollect.cli.main": 1}}
    ) == ["kcollect.ops.dlq (line 5) imports kcollect.cli.errors: only the entry point imports kcollect.cli"]
    tools = {
        "processors.processor.fetcher": {"kcollect.testkit.simulator": 9},
        "kcollect.cli.simulate": {"kcollect.testkit.simulator": 2},
    }
    [found] = tool_violations(tools)
    assert found.startswith("processors.processor.fetcher (line 9) imports kcollect.testkit.simulator:")


def test_relative_imports_are_read_as_the_modules_they_name() -> None:
    modules = dict.fromkeys(["streams.lag.probe", "streams.kafka.tail", "streams.kafka"], Path())
    tree = ast.parse("from ..lag import probe\nfrom . import tail\nfrom .tail import x\n")
    assert list(imported(tree, modules, "streams.kafka.admin")) == [
        ("streams.lag.probe", 1),
        ("streams.kafka.tail", 2),
        ("streams.kafka.tail", 3),
    ]
    assert list(imported(ast.parse("from .tail import x"), modules, "streams.kafka", True)) == [
        ("streams.kafka.tail", 1)
    ]

"""The layout rules of docs/architecture.md, read from the tree: one name for one thing inside a folder (no
two classes or type aliases of one name, as ``DeadLetters`` and ``Columns`` were), no module named like a
standard-library one (as ``bisect.py`` was), tests that mirror the package tree, every Kafka and ClickHouse
client from its builder, the ``KCOLLECT_`` prefix written once, no code that only the tests (or nothing)
use, and a line in docs/architecture.md for every folder."""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "streams", "producers", "processors", "kcollect")
# Test folders that stand for no source folder: the suite's own kinds, each said in the docs.
TEST_KINDS = {"tests/integration/current"}  # a current ClickHouse (chdb), docs/sink.md


def source_files() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def type_names(tree: ast.Module) -> list[tuple[str, int]]:
    """(name, line) of the module's classes and type aliases (a CamelCase name bound at module level)."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found.append((node.name, node.lineno))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else ""
                if name[:1].isupper() and not name.isupper() and "_" not in name:
                    found.append((name, node.lineno))
    return found


def same_names_in_a_folder(files: list[Path], root: Path = ROOT) -> list[str]:
    places: dict[tuple[Path, str], list[str]] = defaultdict(list)
    for path in files:
        for name, line in type_names(ast.parse(path.read_text(), str(path))):
            places[path.parent, name].append(f"{path.relative_to(root)}:{line}")
    return [f"{name}: {', '.join(where)}" for (_, name), where in sorted(places.items()) if len(where) > 1]


def test_no_two_classes_or_type_aliases_of_one_name_in_one_folder() -> None:
    assert same_names_in_a_folder(source_files()) == []


def test_the_check_catches_two_of_one_name(tmp_path: Path) -> None:
    (tmp_path / "sink").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "sink" / "steps.py").write_text("class DeadLetters:\n    pass\n")
    (tmp_path / "sink" / "windowing.py").write_text("Columns = list[list[float]]\n")
    (tmp_path / "sink" / "columns.py").write_text("Columns = dict[str, list[float]]\nCOUNT = 3\n")
    (tmp_path / "other" / "steps.py").write_text("class DeadLetters:\n    pass\n")  # another folder: fine
    files = sorted(tmp_path.rglob("*.py"))
    assert same_names_in_a_folder(files, tmp_path) == ["Columns: sink/columns.py:1, sink/windowing.py:1"]


def test_no_module_is_named_like_a_standard_library_module() -> None:
    clashes = [
        str(p.relative_to(ROOT))
        for p in source_files()
        if p.stem in sys.stdlib_module_names and p.stem != "__main__"
    ]
    assert clashes == []


def test_test_folders_mirror_the_source_tree() -> None:
    strays = []
    for kind in ("unit", "integration"):
        base = ROOT / "tests" / kind
        for folder in sorted(p for p in base.rglob("*") if p.is_dir() and p.name != "__pycache__"):
            relative = folder.relative_to(base)
            if not (ROOT / relative).is_dir() and str(folder.relative_to(ROOT)) not in TEST_KINDS:
                strays.append(str(folder.relative_to(ROOT)))
    assert strays == []


CLIENT_CLASSES = {"Consumer", "Producer", "AdminClient", "Client"}  # confluent-kafka's, clickhouse-driver's
BUILDERS = {"streams/kafka/clients.py", "streams/clickhouse/client.py"}
# Clients that cannot come from the builders: the broker-flavour probe is below them (streams/settings is
# what the builders are made of), and the local stack's readiness probes ask a bare bootstrap address
# before there are settings to build from.
UNBUILT = {"streams/settings/librdkafka.py", "kcollect/localstack/kafka.py", "kcollect/localstack/tansu.py"}


def client_constructions(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name in CLIENT_CLASSES:
                found.append(f"{path.relative_to(root)}:{node.lineno} {name}(")
    return found


def test_every_kafka_and_clickhouse_client_comes_from_its_builder() -> None:
    outside = [
        hit
        for path in source_files()
        if str(path.relative_to(ROOT)) not in BUILDERS | UNBUILT
        for hit in client_constructions(path)
    ]
    assert outside == []
    assert all(client_constructions(ROOT / builder) for builder in BUILDERS)  # the check sees the builders


def test_the_client_check_sees_every_spelling(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import confluent_kafka\nc = confluent_kafka.Consumer({})\na = AdminClient({})\n")
    assert client_constructions(module, tmp_path) == ["m.py:2 Consumer(", "m.py:3 AdminClient("]


def prefix_spellings(path: Path, root: Path = ROOT) -> list[str]:
    """Where ``path`` writes the settings prefix itself: ``"KCOLLECT_"``, or an f-string starting with it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        first = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
        if isinstance(first, ast.Constant) and first.value == "KCOLLECT_":
            found.append(f"{path.relative_to(root)}:{first.lineno}")
    return sorted(set(found))


def test_the_settings_prefix_is_written_in_one_place() -> None:
    files = [*source_files(), *sorted((ROOT / "bench").rglob("*.py"))]
    assert [hit for path in files for hit in prefix_spellings(path)] == ["streams/settings/names.py:8"]


def test_the_prefix_check_sees_both_spellings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('a = "KCOLLECT_"\nb = f"KCOLLECT_{name}"\nc = "KCOLLECT_PARTITIONS"\n')
    assert prefix_spellings(module, tmp_path) == ["m.py:1", "m.py:2"]


# Used by no other code of the source nor by bench/, and kept: each says why.
KEPT_UNUSED = {
    "settings_customise_sources": "pydantic-settings calls it",
    "wait_resumed": "the lag gate's blocking wait, the library use docs/lag.md shows",
    "high_watermarks": "ListOffsets' plain answer, which the tests hold exact_ends against",
    "wait_all": "the local Kafka cluster's handles the tests and drills drive",
    "servers_by_shard": "the local ClickHouse cluster's handles the drills drive",
    "stop_zookeeper": "the local ClickHouse cluster's handles the drills drive",
    "restart_zookeeper": "the local ClickHouse cluster's handles the drills drive",
}
PLAIN_DECORATORS = {"property", "classmethod", "staticmethod", "cache", "cached_property"}


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def unused_definitions(defining: list[Path], using: list[Path], root: Path = ROOT) -> list[str]:
    """Functions, methods and classes of ``defining`` whose name no file of ``using`` writes again.
    One registered by a decorator (a command, a validator, a route) is used by what registers it."""
    words: dict[str, int] = defaultdict(int)
    for path in using:
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", path.read_text()):
            words[word] += 1
    found = []
    for path in defining:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and not node.name.startswith("__")
                and all(_decorator_name(d) in PLAIN_DECORATORS for d in node.decorator_list)
                and words[node.name] <= 1
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    return found


def test_no_code_is_used_only_by_the_tests_or_by_nothing() -> None:
    source = source_files()
    found = unused_definitions(source, [*source, *sorted((ROOT / "bench").rglob("*.py"))])
    assert [hit for hit in found if hit.rsplit(" ", 1)[1] not in KEPT_UNUSED] == []
    assert {hit.rsplit(" ", 1)[1] for hit in found} == set(KEPT_UNUSED)  # each kept one still exists, unused


def test_the_unused_check_sees_functions_methods_and_classes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "class Kept:\n    def used(self) -> None: ...\n    def spare(self) -> None: ...\n\n"
        "def oracle() -> None: ...\n\n@app.command()\ndef registered() -> None: ...\n"
    )
    (tmp_path / "b.py").write_text("Kept().used()\n")
    files = sorted(tmp_path.glob("*.py"))
    assert sorted(unused_definitions(files[:1], files, tmp_path)) == ["a.py:3 spare", "a.py:5 oracle"]


def documented_folders(text: str) -> list[str]:
    """The folders of the table "which folder holds what" of docs/architecture.md: ``| `a/b/` | ... |``."""
    return re.findall(r"^\| `([a-z_/]+)/` \|", text, flags=re.M)


def test_docs_architecture_has_a_line_for_every_folder() -> None:
    def holds_modules(folder: Path) -> bool:  # besides __init__ and the entry point, __main__
        return any(p.stem not in ("__init__", "__main__") for p in folder.glob("*.py"))

    folders = {
        str(p.relative_to(ROOT))
        for package in PACKAGES
        for p in [ROOT / package, *(ROOT / package).rglob("*")]
        if p.is_dir() and p.name != "__pycache__" and holds_modules(p)
    }
    rows = documented_folders((ROOT / "docs" / "architecture.md").read_text())
    assert len(rows) == len(set(rows))
    assert sorted(folders - set(rows)) == []
    assert sorted(set(rows) - folders) == []

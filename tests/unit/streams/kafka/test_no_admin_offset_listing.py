"""No kcollect code reads committed offsets through the AdminClient.

librdkafka (2.16 and before) answers a ListConsumerGroupOffsets reply carrying NOT_COORDINATOR or
COORDINATOR_NOT_AVAILABLE by queueing a coordinator query on the consumer-group handle, which an
AdminClient does not have: a NULL dereference in librdkafka's main thread kills the whole process with
SIGSEGV and no Python trace (librdkafka #5040; docs/reliability.md, "Processor crash at start-up
(SIGSEGV)"). A fresh broker's group coordinator and a coordinator that just moved both answer so. The
one reader of committed offsets is ``streams.kafka.committed`` (a consumer of the group that never
joins it); this test keeps every other way out of the tree, in production code, tools, benches and
tests alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
TREES = ("kcollect", "streams", "producers", "processors", "schemas", "bench", "tests", "examples")
FORBIDDEN = frozenset({"list_consumer_group_offsets"})


def _calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN
    ]


def test_no_code_lists_group_offsets_through_the_admin_client() -> None:
    found = [hit for tree in TREES for path in sorted((ROOT / tree).rglob("*.py")) for hit in _calls(path)]
    assert not found, f"read committed offsets with streams.kafka.committed.CommittedOffsets: {found}"


def test_the_scan_sees_a_call() -> None:
    sample = ROOT / "tests" / "unit" / "streams" / "kafka" / "test_no_admin_offset_listing.py"
    assert sample.exists()
    snippet = ast.parse("admin.list_consumer_group_offsets([request])")
    attrs = [n.attr for n in ast.walk(snippet) if isinstance(n, ast.Attribute)]
    assert attrs == ["list_consumer_group_offsets"]  # the shape _calls looks for

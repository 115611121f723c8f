"""The exporter's owner family: one sample per partition, labelled with member id, client id and host."""

from __future__ import annotations

from kcollect.ops.exporter import snapshot_families
from streams.lag import metrics as m
from streams.lag.collector import PartitionRow, Snapshot


def test_every_partition_has_an_owner_sample() -> None:
    rows = [
        PartitionRow("g", "t", 0, 5, 9, 4, 1.0, "m-1", "10.0.0.1", "stable", client_id="proc-a"),
        PartitionRow("g", "t", 1, 5, 5, 0, 0.0, "unknown", "unknown", "stable", client_id="unknown"),
    ]
    families = {f.name: f for f in snapshot_families(Snapshot(0.0, 0, rows, {}, {}))}
    samples = families[m.PARTITION_OWNER].samples
    assert [(s.labels, s.value) for s in samples] == [
        (
            {
                "consumergroup": "g",
                "topic": "t",
                "partition": "0",
                "member": "m-1",
                "client_id": "proc-a",
                "host": "10.0.0.1",
            },
            1,
        ),
        (
            {
                "consumergroup": "g",
                "topic": "t",
                "partition": "1",
                "member": "unknown",
                "client_id": "unknown",
                "host": "unknown",
            },
            1,
        ),
    ]

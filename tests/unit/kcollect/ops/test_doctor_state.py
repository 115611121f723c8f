"""The doctor's advice on the state's restore time for its partition count."""

from __future__ import annotations

from kcollect.ops.doctor import Facts, StateFacts, advise, state_advice


def test_long_restore_per_partition_is_a_warning_naming_partitions() -> None:
    finding = state_advice(StateFacts("t.state", 8, 8_000_000, 1_000_000, 20_000.0))  # 50 s per partition
    assert finding is not None and finding.level == "warn"
    assert "8 partition(s)" in finding.title and "KCOLLECT_PARTITIONS" in finding.detail[1]
    assert any(
        f.level == "warn" for f in advise(Facts(1.0, state=StateFacts("t", 8, 8_000_000, 1_000_000, 2e4)))
    )


def test_short_restores_are_fine_and_all_on_one_member_is_noted() -> None:
    quick = state_advice(StateFacts("t.state", 8, 800_000, 100_000, 100_000.0))  # 1 s each, 8 s all
    assert quick is not None and quick.level == "ok"
    many = state_advice(StateFacts("t.state", 64, 64 * 500_000, 500_000, 100_000.0))  # 5 s each, 320 s all
    assert many is not None and many.level == "info"
    assert state_advice(StateFacts("t.state", 8, 0, 0, 0.0)) is None

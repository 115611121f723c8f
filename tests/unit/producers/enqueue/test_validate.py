"""Client sources and their validation: ranges, files, CSV, bad lines, duplicates, --strict spooling."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.enqueue.sources import FileSource, RangeSource, SourceError, SourceReadError
from producers.enqueue.validate import Validator, strict_pass, validate_only


def test_range_parses_and_chunks() -> None:
    assert RangeSource.parse("0-699999").total == 700000
    assert RangeSource.parse("5") == RangeSource(0, 4)
    chunks = list(RangeSource(10, 24).chunks(10))
    assert chunks == [(1, [str(i) for i in range(10, 20)]), (11, [str(i) for i in range(20, 25)])]
    for bad in ("", "0", "9-3", "a-b", "-5"):
        with pytest.raises(SourceError):
            RangeSource.parse(bad)


def test_validator_counts_bad_lines_with_line_numbers_and_drops_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    lines = ["a", "", "b", "x" * 129, "a", "tab\there", "  c  ", "y" * 128, "b"]
    path.write_text("\n".join(lines) + "\n")
    source = FileSource(str(path))
    validator = Validator(source)
    ids = [cid for chunk in source.chunks(4) for cid in validator.filter(chunk)]
    assert ids == ["a", "b", "c", "y" * 128]
    stats = validator.stats
    assert (stats.read, stats.valid, stats.invalid, stats.duplicates) == (9, 4, 3, 2)
    assert [(bad.line, bad.reason) for bad in stats.bad_lines] == [
        (2, "empty"),
        (4, "over 128 characters"),
        (6, "unprintable character"),
    ]
    assert stats.bad_lines_text() == (
        "3 invalid line(s): line 2 (empty), line 4 (over 128 characters), line 6 (unprintable character)"
    )
    assert source.total_hint() == 9


def test_only_the_first_ten_bad_lines_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"\n".join([b"ok"] + [b""] * 12 + [b"\xff\xfe"]) + b"\n")
    stats = validate_only(FileSource(str(path)), 5)
    assert stats.invalid == 13 and len(stats.bad_lines) == 10
    assert stats.bad_lines_text().endswith(", and 3 more")
    assert stats.bad_lines[0].line == 2


def test_csv_column_and_rows_without_it(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text('name, id\nx,1\nshort\ny,"2,5"\nz,1\n')
    source = FileSource(str(path), column="id")
    stats = validate_only(source, 2)
    assert (stats.valid, stats.invalid, stats.duplicates) == (2, 1, 1)
    assert [(b.line, b.reason) for b in stats.bad_lines] == [(3, "no column id")]
    assert source.total_hint() == 4
    with pytest.raises(SourceError, match="no column 'nope'"):
        validate_only(FileSource(str(path), column="nope"), 2)


def test_unreadable_file() -> None:
    with pytest.raises(SourceReadError, match="cannot read --from-file"):
        FileSource("/no/such/file")


def test_strict_pass_spools_distinct_ids_or_refuses(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("b\na\nb\nc\n")
    spool = strict_pass(FileSource(str(good)), 2)
    try:
        assert spool.trusted and spool.total_hint() == 3 and spool.stats.duplicates == 1
        assert [cid for _, chunk in spool.chunks(2) for cid in chunk] == ["b", "a", "c"]
    finally:
        spool.remove()
    bad = tmp_path / "bad.txt"
    bad.write_text("a\n\nb\n")
    before = set(Path(spool.path).parent.glob("kcollect-enqueue-*"))
    with pytest.raises(
        SourceError, match=r"--strict: .* refused, nothing was enqueued: 1 invalid line\(s\): line 2"
    ):
        strict_pass(FileSource(str(bad)), 2)
    assert set(Path(spool.path).parent.glob("kcollect-enqueue-*")) == before  # the spool is removed

"""RangeSource.parse and its chunks (no files, no ClickHouse)."""

from __future__ import annotations

import pytest

from producers.enqueue.sources import RangeSource, SourceError


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("1", 0, 0),
        ("100000", 0, 99999),
        (" 5 ", 0, 4),
        ("0-699999", 0, 699999),
        ("10-10", 10, 10),
        (" 3 - 7 ", 3, 7),
        ("007-9", 7, 9),
    ],
)
def test_parse(text: str, first: int, last: int) -> None:
    source = RangeSource.parse(text)
    assert (source.first, source.last) == (first, last)
    assert source.total == last - first + 1
    assert source.total_hint() == source.total
    assert source.describe() == f"range {first}-{last}"


@pytest.mark.parametrize(
    "text", ["", " ", "0", "-5", "abc", "1-", "-", "1-2-3", "1.5", "1e3", "a-b", "0x10", "1,2"]
)
def test_parse_rejects_bad_syntax(text: str) -> None:
    with pytest.raises(SourceError, match="--clients takes N or FIRST-LAST"):
        RangeSource.parse(text)


def test_parse_rejects_empty_range() -> None:
    with pytest.raises(SourceError, match="is empty"):
        RangeSource.parse("10-9")


def test_parse_superscript_digit_is_source_error() -> None:
    with pytest.raises(SourceError):
        RangeSource.parse("²")


def test_iteration_and_chunks() -> None:
    source = RangeSource.parse("5-11")
    assert list(source) == [str(i) for i in range(5, 12)]
    assert list(source.chunks(3)) == [(1, ["5", "6", "7"]), (4, ["8", "9", "10"]), (7, ["11"])]
    assert list(RangeSource.parse("2").chunks(10)) == [(1, ["0", "1"])]
    assert source.trusted is True

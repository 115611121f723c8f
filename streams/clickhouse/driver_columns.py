"""The one place where kcollect changes clickhouse-driver: DateTime columns of epoch seconds skip a loop,
a columnar insert that fits in one block is not copied twice, array columns skip a loop per row and a
String column of one value is written at once.

The driver's ``DateTimeColumn`` converts every value with a Python loop before writing (``isinstance``
per value, then an assignment back into the list), even when every value already is an ``int`` of
epoch seconds, which it then writes unchanged. The sink's rows always hold epoch seconds, and for two
DateTime columns that loop was ~0.8 µs per row of the sink's single Python thread (cProfile of 700k
rows: ``prepare_items`` plus ``before_write_items``). ``prepare_epoch_items`` checks the whole list
at once in C (the type of each value is ``int``) and hands such a list straight to the writer; any
other list (datetimes, ``None`` in a Nullable column, bools) goes through the driver's own code, so the
bytes written are the driver's in every case
(tests/unit/streams/clickhouse/test_driver_columns.py compares them).

A columnar insert goes through the driver's ``column_chunks``, which slices every column into blocks of
``insert_block_size`` rows (1,048,576) and copies each slice once more (``list(seq[i:i+n])``): two
copies of every column even when the whole insert is one block, as the sink's windows (≤ 100k rows)
always are; 0.2-0.3 µs per row of 10 columns. ``whole_column_chunks`` hands such columns over as they
are. The driver then converts values in place in the caller's lists where it converts at all
(Float32 rounding, Enum names, DateTime objects to seconds; none of these are in ``client_results``,
whose DateTime columns hold epoch seconds): callers must not rely on their lists staying unchanged.

Array columns: the driver writes an ``Array(T)`` column with a Python loop per row (offsets, then the
rows flattened) and a ``String`` leaf with its writer per name; ``client_results`` holds six arrays per
row (metric, computed and text names and values) and every row of a result batch shares the same
list of names. ``write_array_data`` writes the offsets with ``itertools.accumulate`` into an
``array('Q')``, a ``Float64`` leaf as one ``array('d')``, and a ``String`` leaf run by run: consecutive
rows holding the same list of names are written as that list's bytes times the run's length (for a
``LowCardinality(String)`` leaf, the list's keys). Anything else (nullable, nested arrays, type
checks on, a value an array cannot hold, rows that share no lists) goes through the driver's own
code; the bytes are the driver's (tested).

A result batch's values need not become a tuple per row: ``FloatRows`` holds the rows of one batch
row-major in one ``array('d')``, and a column may hold that one object for each of those rows (one
run of exactly ``count`` entries; ``expand_float_rows`` turns such entries back into a tuple per row
where rows are picked one by one). ``write_array_data`` writes such a run as the array's bytes and
``width``-wide offsets, with no Python work per row or value.

String columns: the driver encodes and writes a ``String`` column value by value (~50 ns each);
a window's ``run_id`` and ``status`` hold one value in every row. ``write_string_items`` writes such a
column (every value a ``str`` equal to the first) as that value's bytes times the rows; any other
column goes through the driver's writer (tested: the bytes are the driver's).

``install()`` runs when ``streams.clickhouse.client`` is imported. It sets ``prepare_items`` on the driver's
``DateTimeColumn`` (which inherits it from ``Column`` and does not define its own); ``DateTime64``
inherits the change, and its loop also leaves plain ints as they are.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import accumulate, chain, compress, repeat
from math import log
from operator import ne
from struct import Struct
from struct import error as struct_error
from typing import Any

import clickhouse_driver.client
from clickhouse_driver.columns.arraycolumn import ArrayColumn
from clickhouse_driver.columns.base import Column
from clickhouse_driver.columns.datetimecolumn import DateTimeColumn
from clickhouse_driver.columns.floatcolumn import Float64Column
from clickhouse_driver.columns.lowcardinalitycolumn import LowCardinalityColumn
from clickhouse_driver.columns.stringcolumn import String
from clickhouse_driver.util.helpers import column_chunks

_INTS = frozenset((int,))
_ROWS = frozenset((list, tuple))
_DRIVER_ARRAY_WRITE = ArrayColumn.write_data
_DRIVER_STRING_WRITE = String.write_items
_LITTLE_ENDIAN = sys.byteorder == "little"


class FloatRows:
    """``count`` rows of ``width`` Float64 values each, row-major in one ``array('d')``: row ``i`` is
    ``values[i * width : (i + 1) * width]``. Stands for all its rows in an ``Array(Float64)`` column
    that holds it ``count`` times in a row (see the module docstring)."""

    __slots__ = ("count", "values", "width")

    def __init__(self, values: array[float], width: int, count: int) -> None:
        self.values = values
        self.width = width
        self.count = count

    @classmethod
    def from_columns(cls, columns: Sequence[Sequence[Any]], count: int) -> FloatRows | None:
        """The rows of ``columns`` (one sequence of ``count`` numbers per value, column-major), or None
        when a value is not a real number (``None``, a string, a list; an ``int`` too large for a
        float). A ``bool`` counts as a number here: callers that must refuse booleans check first."""
        width = len(columns)
        values = array("d", bytes(8 * width * count))
        # ``Struct.pack`` converts each number with ``PyFloat_AsDouble``: half the cost of
        # ``array('d', column)``, which parses every item with a format string
        pack = _doubles(count).pack
        try:
            for index, column in enumerate(columns):
                values[index::width] = array("d", pack(*column))
        except (struct_error, TypeError):  # not a number, an int too large, a column of another length
            return None
        return cls(values, width, count)

    def row(self, position: int) -> tuple[float, ...]:
        """The values of row ``position``."""
        if not 0 <= position < self.count:
            raise IndexError(position)
        start = position * self.width
        return tuple(self.values[start : start + self.width])


@lru_cache(maxsize=64)
def _doubles(count: int) -> Struct:
    """The native format of ``count`` doubles (``array('d')``'s layout)."""
    return Struct(f"={count}d")


def expand_float_rows(column: list[Any], positions: Sequence[int]) -> list[Any]:
    """``column`` with each ``FloatRows`` entry replaced by the values of its row (``positions[k]`` is
    the row of entry ``k`` within its ``FloatRows``); other entries as they are."""
    if FloatRows not in set(map(type, column)):
        return column
    return [
        value.row(position) if type(value) is FloatRows else value
        for value, position in zip(column, positions, strict=True)
    ]


def _float_runs(rows: list[Any]) -> tuple[bytes, bytes] | None:
    """(offsets, data) of an ``Array(Float64)`` column whose rows are ``FloatRows`` runs and plain
    rows (lists or tuples of numbers); None when a plain row holds something else (the driver's error
    is then raised by the caller). Raises ValueError when a ``FloatRows`` is not held by exactly
    ``count`` consecutive rows."""
    pieces: list[Any] = []
    parts: list[tuple[int, int] | list[Any]] = []  # a FloatRows run as (width, count); plain rows as they are
    index, total = 0, len(rows)
    while index < total:
        first = rows[index]
        if type(first) is not FloatRows:
            end = index + 1
            while end < total and type(rows[end]) is not FloatRows:
                end += 1
            plain = rows[index:end]
            try:
                pieces.append(array("d", list(chain.from_iterable(plain))))
            except (TypeError, OverflowError):
                return None
            parts.append(plain)
            index = end
            continue
        count = first.count
        end = index + count
        if rows[index:end] != [first] * count:  # identity first: one C pass
            raise ValueError(f"a FloatRows of {count} rows is not held by {count} consecutive rows")
        parts.append((first.width, count))
        pieces.append(first.values)
        index = end
    return _part_offsets(parts, total), b"".join(pieces)


def _part_offsets(parts: list[tuple[int, int] | list[Any]], total: int) -> bytes:
    """The UInt64 offsets of ``total`` rows given as ``_float_runs``' parts: one cached progression
    when every part is a FloatRows run of one width (the sink's windows), else per part."""
    widths = {part[0] if isinstance(part, tuple) else None for part in parts}
    if len(widths) == 1 and (width := widths.pop()) is not None:
        return _progression(width, total)
    sizes = array("Q")
    offset = 0
    for part in parts:
        if isinstance(part, list):
            sizes.extend(map(offset.__add__, accumulate(map(len, part))))
            offset = sizes[-1]
            continue
        width, count = part
        if width:
            sizes.extend(range(offset + width, offset + width * count + 1, width))
        else:
            sizes.extend(repeat(offset, count))
        offset += width * count
    return sizes.tobytes()


_PROGRESSIONS: dict[int, array[int]] = {}  # width -> width, 2 * width, ... as UInt64
_PROGRESSION_WIDTHS = 16


def _progression(width: int, count: int) -> bytes:
    """The offsets of ``count`` rows of ``width`` values each (``width * 1`` to ``width * count``) as
    UInt64 bytes: a slice of a cached progression (a copy in C instead of an int per row)."""
    if not width:
        return bytes(8 * count)
    cached = _PROGRESSIONS.get(width)
    if cached is None or len(cached) < count:
        if len(_PROGRESSIONS) >= _PROGRESSION_WIDTHS:
            _PROGRESSIONS.clear()
        size = max(count, 2 * len(cached)) if cached is not None else count
        cached = _PROGRESSIONS[width] = array("Q", range(width, width * size + 1, width))
    return cached[:count].tobytes()


def prepare_epoch_items(column: Any, items: list[Any]) -> list[Any]:
    """``Column.prepare_items``, minus the per-value loop for a list of plain ints (epoch seconds)."""
    if not column.nullable and _INTS.issuperset(map(type, items)):
        return items  # the driver's loop would leave every value as it is
    prepared: list[Any] = Column.prepare_items(column, items)
    return prepared


def whole_column_chunks(columns: Sequence[Any], n: int) -> Iterator[list[Any]]:
    """The driver's ``column_chunks``, minus its two copies when every column is a list of ≤ n rows."""
    if all(type(column) is list and len(column) <= n for column in columns):
        if any(columns):
            yield list(columns)
        return
    yield from column_chunks(columns, n)


def strings_bytes(items: Sequence[str], encoding: str = "utf-8") -> bytes:
    """The native format of a ``String`` column of ``items``: per value its length once encoded
    (varint), then its bytes."""
    out = bytearray()
    for item in items:
        data = item.encode(encoding)
        size = len(data)
        while size >= 0x80:
            out.append(size & 0x7F | 0x80)
            size >>= 7
        out.append(size)
        out += data
    return bytes(out)


def _runs(rows: list[Any]) -> list[tuple[tuple[str, ...], int]] | None:
    """(names, how many consecutive rows hold that very list) over ``rows``; None when rows share too
    few lists for writing run by run to pay (the driver's writer is faster per string), or a name is
    not a ``str``."""
    if not rows:
        return []
    first = rows[0]
    if rows.count(first) == len(rows):  # every row holds that list (or an equal one): one run
        names = tuple(first)
        return [(names, len(rows))] if _STRS_ONLY.issuperset(map(type, names)) else None
    ids = list(map(id, rows))
    starts = [0, *compress(range(1, len(ids)), map(ne, ids, ids[1:]))]
    if len(starts) * 4 > len(rows):
        return None
    ends = [*starts[1:], len(rows)]
    named = [(tuple(rows[start]), end - start) for start, end in zip(starts, ends, strict=True)]
    if not all(_STRS_ONLY.issuperset(map(type, names)) for names, _ in named):
        return None
    return named


def _run_sizes(runs: list[tuple[tuple[str, ...], int]]) -> bytes:
    """The offsets of rows given as runs of one list each: an arithmetic progression per run."""
    widths = {len(names) for names, _ in runs}
    if len(widths) == 1:  # every row holds as many names: one progression
        return _progression(widths.pop(), sum(count for _, count in runs))
    sizes = array("Q")
    offset = 0
    for names, count in runs:
        width = len(names)
        if width:
            sizes.extend(range(offset + width, offset + width * count + 1, width))
        else:
            sizes.extend(repeat(offset, count))
        offset += width * count
    return sizes.tobytes()


def _string_leaf(runs: list[tuple[tuple[str, ...], int]]) -> bytes:
    """The flattened names of rows as a ``String`` column, run by run of one shared list."""
    encoded: dict[tuple[str, ...], bytes] = {}
    pieces = []
    for names, count in runs:
        data = encoded.get(names)
        if data is None:
            data = encoded[names] = strings_bytes(names)
        pieces.append(data * count)
    return b"".join(pieces)


_KEY_TYPES = ("B", "H", "I", "Q")  # the driver's UInt8/16/32/64 key columns, by its int_type


def _low_cardinality_leaf(leaf: Any, runs: list[tuple[tuple[str, ...], int]]) -> bytes:
    """The flattened names of rows as a ``LowCardinality(String)`` column (the driver's format: the
    serialization type, the dictionary in first-seen order, the keys), run by run of one shared list."""
    index: dict[str, int] = {}
    for names, _ in runs:
        for name in names:
            index.setdefault(name, len(index))
    if not index:
        return b""
    int_type = int(log(len(index), 2) / 8)
    code = _KEY_TYPES[int_type]
    keys = [array(code, map(index.__getitem__, names)).tobytes() * count for names, count in runs]
    total = sum(len(names) * count for names, count in runs)
    head = _INT64.pack(leaf.serialization_type | int_type) + _INT64.pack(len(index))
    return head + strings_bytes(list(index)) + _INT64.pack(total) + b"".join(keys)


_INT64 = Struct("<q")


_STRS_ONLY = frozenset((str,))
_ROWS_OR_BLOCKS = _ROWS | {FloatRows}


def _is_utf8_string(column: Any) -> bool:
    return type(column) is String and column.encoding == "utf-8" and not column.nullable


def _leaf_bytes(leaf: Any, rows: list[Any]) -> tuple[bytes, bytes] | None:
    """(offsets, data) of ``rows`` for an array of ``leaf``, or None for the driver's own code."""
    if leaf.nullable or leaf.types_check_enabled:
        return None
    if type(leaf) is Float64Column:
        if FloatRows in set(map(type, rows)):
            return _float_runs(rows)
        try:
            values = array("d", list(chain.from_iterable(rows))).tobytes()
        except (TypeError, OverflowError):
            return None  # the driver raises its own error for the value
        return array("Q", accumulate(map(len, rows))).tobytes(), values
    strings = _is_utf8_string(leaf)
    if not strings and not (type(leaf) is LowCardinalityColumn and _is_utf8_string(leaf.nested_column)):
        return None
    runs = _runs(rows)
    if runs is None:
        return None
    data = _string_leaf(runs) if strings else _low_cardinality_leaf(leaf, runs)
    return _run_sizes(runs), data


def write_array_data(column: Any, data: Any, buf: Any) -> None:
    """``ArrayColumn.write_data`` without a Python loop per row for ``Array(Float64)``,
    ``Array(String)`` and ``Array(LowCardinality(String))`` columns of lists or tuples (see the module
    docstring); else the driver's."""
    leaf = column.nested_column
    if (
        _LITTLE_ENDIAN
        and not column.nullable
        and type(data) is list
        and not isinstance(leaf, ArrayColumn)
        and _ROWS_OR_BLOCKS.issuperset(map(type, data))
    ):
        written = _leaf_bytes(leaf, data)
        if written is not None:
            buf.write(written[0])
            buf.write(written[1])
            return
    _DRIVER_ARRAY_WRITE(column, data, buf)


def write_string_items(column: Any, items: Any, buf: Any) -> None:
    """``String.write_items``, with a column holding one string in every row written as that string's
    bytes times the rows (a window's ``run_id`` and ``status``); else the driver's, value by value."""
    first = items[0] if type(items) is list and items else None
    if (
        type(first) is str
        and items[-1] == first
        and items.count(first) == len(items)
        and _STRS_ONLY.issuperset(map(type, items))
    ):
        buf.write(strings_bytes([first], column.encoding) * len(items))
        return
    _DRIVER_STRING_WRITE(column, items, buf)


def install() -> None:
    """Make the driver's DateTime columns use ``prepare_epoch_items``, its columnar inserts
    ``whole_column_chunks``, its array columns ``write_array_data`` and its String columns
    ``write_string_items`` (idempotent)."""
    DateTimeColumn.prepare_items = prepare_epoch_items
    clickhouse_driver.client.column_chunks = whole_column_chunks
    ArrayColumn.write_data = write_array_data
    String.write_items = write_string_items

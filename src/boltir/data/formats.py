"""Readers for the line formats of IR collections, with errors that name the file and line.

JSONL and TSV lines are parsed by :mod:`json` and :mod:`csv`; what is ours is only the bookkeeping that turns
a bad line into one clear :class:`DataFormatError` instead of a traceback from deep inside a loop.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataFormatError

_WHITESPACE = re.compile(r"\s")

csv.field_size_limit(2**31 - 1)  # long documents exceed csv's 128 KiB default field limit


def read_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a (possibly gzipped) UTF-8 text file, one line in memory at a time.

    Lines are decoded one by one so that bytes which are not UTF-8 raise :class:`DataFormatError` naming the
    line and the byte offset in the file (of the uncompressed text for ``.gz``), not a bare UnicodeDecodeError.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", path)
    offset = 0
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    f"byte {offset + exc.start} of the file (column {exc.start + 1} of the line) is not valid UTF-8 "
                    f"({exc.reason}): save the file as UTF-8", path, number
                ) from None
            offset += len(raw)
            yield number, line


def count_lines(path: str | os.PathLike[str]) -> int:
    """Number of non-empty lines, read line by line so a large corpus never sits in memory."""
    return sum(1 for _, line in read_lines(path) if line.strip())


def check_id(value: str, what: str, path: str | os.PathLike[str] | None, line: int | None) -> str:
    """``value`` if it can be a query or document id, else :class:`DataFormatError` naming ``path:line``.

    An id must be non-empty and hold no whitespace: TREC run and qrels files separate their columns by
    whitespace, and the index stores one id per line, so such an id would break every file it is written to.
    """
    if not value:
        raise DataFormatError(f"the {what} is empty: every record needs a non-empty id", path, line)
    if _WHITESPACE.search(value):
        raise DataFormatError(
            f"the {what} {value!r} holds whitespace, which TREC run files cannot hold: remove it from the id", path, line
        )
    return value


def read_jsonl(
    path: str | os.PathLike[str], required: tuple[str, ...] = (), shard: tuple[int, int] = (0, 1)
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-empty line; a malformed line raises with its number.

    ``shard=(i, n)`` keeps only every n-th record from the i-th on, and parses no other line: parallel
    readers (DataLoader workers, GPUs) each pay for their own share of the file only.
    """
    index, count = shard
    position = -1
    for number, line in read_lines(path):
        if not line.strip():
            continue
        position += 1
        if position % count != index:
            continue
        yield number, parse_json_object(line, path, number, required)


def parse_json_object(line: str, path: str | os.PathLike[str], number: int, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """One JSONL line's object; invalid JSON, another value or a missing ``required`` key raises naming the line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not valid JSON ({exc.msg} at column {exc.colno})", path, number) from None
    if not isinstance(record, dict):
        raise DataFormatError("expected a JSON object", path, number)
    missing = [key for key in required if key not in record]
    if missing:
        raise DataFormatError(f"missing field(s) {missing}", path, number)
    return record


def read_tsv(
    path: str | os.PathLike[str], min_columns: int, header: tuple[str, ...] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, columns)`` of a tab-separated file; a header row equal to ``header`` is skipped."""
    lines = read_lines(path)
    number = 0

    def texts() -> Iterator[str]:
        nonlocal number
        for number, line in lines:  # the reader's next row is this line: QUOTE_NONE rows never span lines
            yield line

    for row in csv.reader(texts(), delimiter="\t", quoting=csv.QUOTE_NONE):
        if not row or not any(cell.strip() for cell in row):
            continue
        if number == 1 and header is not None and tuple(c.strip().lower() for c in row[: len(header)]) == header:
            continue
        if len(row) < min_columns:
            raise DataFormatError(f"expected at least {min_columns} tab-separated columns, found {len(row)}", path, number)
        yield number, row


def read_whitespace_columns(path: str | os.PathLike[str], columns: int) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a whitespace-separated file with exactly ``columns`` fields (TREC files)."""
    for number, line in read_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns:
            raise DataFormatError(f"expected {columns} whitespace-separated fields, found {len(fields)}", path, number)
        yield number, fields

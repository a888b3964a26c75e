"""Readers for the line formats of IR collections, with errors that name the file and line.

JSONL and TSV lines are parsed by :mod:`json` and :mod:`csv`; what is ours is only the bookkeeping that turns
a bad line into one clear :class:`DataFormatError` instead of a traceback from deep inside a loop.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import DataFormatError

csv.field_size_limit(2**31 - 1)  # long documents exceed csv's 128 KiB default field limit


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a (possibly gzipped) text file, or raise :class:`DataFormatError` if it does not exist."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def count_lines(path: str | os.PathLike[str]) -> int:
    """Number of non-empty lines, read in blocks so a large corpus never sits in memory."""
    with open_text(path) as handle:
        return sum(1 for line in handle if line.strip())


def read_jsonl(
    path: str | os.PathLike[str], required: tuple[str, ...] = (), shard: tuple[int, int] = (0, 1)
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-empty line; a malformed line raises with its number.

    ``shard=(i, n)`` keeps only every n-th record from the i-th on, and parses no other line: parallel
    readers (DataLoader workers, GPUs) each pay for their own share of the file only.
    """
    index, count = shard
    position = -1
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            position += 1
            if position % count != index:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"not valid JSON ({exc.msg} at column {exc.colno})", path, number) from None
            if not isinstance(record, dict):
                raise DataFormatError("expected a JSON object", path, number)
            missing = [key for key in required if key not in record]
            if missing:
                raise DataFormatError(f"missing field(s) {missing}", path, number)
            yield number, record


def read_tsv(
    path: str | os.PathLike[str], min_columns: int, header: tuple[str, ...] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, columns)`` of a tab-separated file; a header row equal to ``header`` is skipped."""
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            number = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if number == 1 and header is not None and tuple(c.strip().lower() for c in row[: len(header)]) == header:
                continue
            if len(row) < min_columns:
                raise DataFormatError(f"expected at least {min_columns} tab-separated columns, found {len(row)}", path, number)
            yield number, row


def read_whitespace_columns(path: str | os.PathLike[str], columns: int) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of a whitespace-separated file with exactly ``columns`` fields (TREC files)."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != columns:
                raise DataFormatError(f"expected {columns} whitespace-separated fields, found {len(fields)}", path, number)
            yield number, fields

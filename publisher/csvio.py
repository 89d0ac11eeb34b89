"""Streaming CSV in and out for subscriber lists: one row in memory at a time.

Reading checks the header row, picks the wanted columns by name (case and
surrounding spaces ignored, extra columns ignored) and yields each record with the
line it started on, or that line and the reason it can't be read, so that one bad
row never stops the rest.  Writing goes to a temporary file renamed into place.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from publisher.errors import SubscriberError

# Bytes that are not UTF-8 are read as lone surrogates (errors="surrogateescape").
_NOT_UTF8 = re.compile("[\udc80-\udcff]")

Record = tuple[int, dict[str, str] | str]  # (line, fields) or (line, reason)


def read_records(path: str | Path, required: Sequence[str], optional: Sequence[str] = ()) -> Iterator[Record]:
    """Yield ``(line, {column: value})`` per data row, or ``(line, reason)`` for a row that can't be read.

    Raises SubscriberError naming the file when it can't be opened or its header
    lacks a required column.  Blank lines are skipped.
    """
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    except OSError as exc:
        raise SubscriberError(str(path), f"can't read: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        positions = _header(path, reader, required, optional)
        yield from _records(reader, positions)


def _header(path: str | Path, reader: Any, required: Sequence[str], optional: Sequence[str]) -> dict[str, int]:
    wanted = [*required, *optional]
    for line, row in _rows(reader):
        if isinstance(row, str):
            raise SubscriberError(str(path), f"line {line}: the header row can't be read: {row}")
        if not any(cell.strip() for cell in row):
            continue
        names = [cell.strip().lower() for cell in row]
        missing = [name for name in required if name not in names]
        if missing:
            found = ", ".join(repr(cell) for cell in row[:8]) + (", ..." if len(row) > 8 else "")
            raise SubscriberError(str(path), f"no {missing[0]!r} column in the header row (found: {found}); "
                                             f"the first row must name the columns, e.g. {','.join(wanted)}")
        return {name: names.index(name) for name in wanted if name in names}
    raise SubscriberError(str(path), f"the file is empty; the first row must name the columns, e.g. {','.join(wanted)}")


def _rows(reader: Any) -> Iterator[tuple[int, list[str] | str]]:
    """Each row with the line it started on; a malformed row becomes its reason and reading goes on."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, f"malformed CSV: {exc}"
            if reader.line_num < start:  # nothing consumed: the reader can't move on
                return
            continue
        yield start, row


def _records(reader: Any, positions: dict[str, int]) -> Iterator[Record]:
    for line, row in _rows(reader):
        if isinstance(row, str):
            yield line, row
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        fields = {name: row[index] if index < len(row) else "" for name, index in positions.items()}
        if any(_NOT_UTF8.search(value) for value in fields.values()):
            yield line, "not valid UTF-8; save the file as UTF-8"
            continue
        yield line, fields


def write_rows(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``header`` and ``rows`` as CSV (UTF-8, CRLF as RFC 4180 says); return the number of data rows.

    The file appears complete or not at all: rows go to a temporary file that is
    renamed over ``path`` at the end.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        os.replace(temporary, target)
    except OSError as exc:
        raise SubscriberError(str(path), f"can't write: {exc.strerror}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return count

"""File formats: CSV (RFC 4180, UTF-8, optional BOM) and XLSX (openpyxl write-only mode), written row by row.

Both take rows of raw values (one per column) and shape each cell with `domain.cell`: datetimes in the report's
zone, numbers and booleans typed, text escaped against formula injection. Neither holds more than one page of
rows: CSV encodes a page into bytes at a time; XLSX is openpyxl's streaming writer (rows go to a temporary file,
the zip is written into the sink on close).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import IO, Any

from conveyor.reports.domain import Column, Row, shaper, zone

BOM = "\ufeff".encode()


def _csv_text(value: Any) -> Any:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(" ", "seconds")  # naive local wall-clock, 2026-01-31 09:30:00: what spreadsheets parse
    if isinstance(value, date):
        return value.isoformat()
    return value


def _csv_cell(shape: Any) -> Any:
    def one(value: Any) -> Any:
        shaped = shape(value)
        return shaped if shaped.__class__ is str else _csv_text(shaped)

    return one


class CsvEncoder:
    """RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a comma, quote or line break
    (quotes doubled). UTF-8, with a byte order mark first when asked (Excel needs it to read UTF-8)."""

    def __init__(self, columns: Sequence[Column], timezone: str, *, bom: bool = False) -> None:
        self.columns, self.tz, self.bom = tuple(columns), zone(timezone), bom
        self._cells = [_csv_cell(shaper(c.kind, self.tz)) for c in self.columns]
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def _take(self) -> bytes:
        data = self._text.getvalue().encode()
        self._text.seek(0)
        self._text.truncate()
        return data

    def header(self) -> bytes:
        self._writer.writerow([c.header for c in self.columns])
        return (BOM if self.bom else b"") + self._take()

    def rows(self, rows: Iterable[Row]) -> bytes:
        cells, width = self._cells, len(self._cells)
        out = []
        for row in rows:
            if len(row) != width:
                raise ValueError(f"a row of {len(row)} values for {width} columns")
            out.append([shape(v) for shape, v in zip(cells, row)])  # noqa: B905 - length checked above
        self._writer.writerows(out)
        return self._take()


class XlsxWriter:
    """One sheet written with openpyxl in write-only mode: a bold-free header row, then typed cells (numbers,
    booleans, dates and date-times with a date format; text as shared-nothing inline strings, never formulas:
    escaped text cannot start with "=")."""

    def __init__(self, columns: Sequence[Column], timezone: str, *, title: str = "Report") -> None:
        from openpyxl import Workbook  # heavy: imported only by the job that writes an XLSX report

        self.columns, self.tz = tuple(columns), zone(timezone)
        self._cells = [shaper(c.kind, self.tz) for c in self.columns]
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title=title[:31])
        self.sheet.append([c.header for c in self.columns])

    def rows(self, rows: Iterable[Row]) -> None:
        cells, append = self._cells, self.sheet.append
        for row in rows:
            append([shape(v) for shape, v in zip(cells, row, strict=True)])

    def close(self, sink: io.RawIOBase | IO[bytes]) -> None:
        """Write the workbook (a zip) into `sink`, which needs only write() and flush()."""
        self.workbook.save(sink)

"""Reports: what a report is, its states, its columns and cell values, formula-injection escaping. Pure, no I/O.

A report is an export of one capability's data (a registered report type) in one format, with filters validated
by its type and times shown in one IANA time zone. It runs as a process (conveyor.processes): its state is the
process's, seen through `state_of`; what the report adds is where its file is and until when.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

DEDUPE_SECONDS = 600  # identical requests within 10 minutes return the same report
DOWNLOAD_URL_SECONDS = 600  # a presigned download URL lives 10 minutes, minted per click
# OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheet software.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"

    @property
    def content_type(self) -> str:
        if self is Format.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class State(StrEnum):
    """What a user sees. `ready` is a completed process whose file is still kept; after that, `expired`."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


_FROM_PROCESS = {
    "pending": State.QUEUED,
    "running": State.RUNNING,
    "paused": State.PAUSED,
    "completed": State.READY,
    "completed_with_errors": State.FAILED,  # a report is whole or it is nothing: any failed part fails it
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
}


def state_of(process_state: str | None, expires_at: datetime | None, now: datetime) -> State:
    """A report's state from its process's; a ready report past its expiry is expired (its object is gone or
    about to be: S3 lifecycle deletes it, DynamoDB TTL the record, both late, so expiry is checked on read)."""
    state = _FROM_PROCESS.get(process_state or "pending", State.QUEUED)
    if state is State.READY and (expires_at is None or now >= expires_at):
        return State.EXPIRED
    return state


class Kind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    DATETIME = "datetime"
    DATE = "date"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = Kind.TEXT


Row = Sequence[Any]  # one value per column: str | int | float | bool | datetime (aware) | date | None
# (tenant_id, validated filters, cursor or None, page size, the report's context) -> (rows, next cursor or None)
Pager = Callable[[str, Any, "str | None", int, "ReportContext"], tuple[list[Row], "str | None"]]


@dataclass(frozen=True)
class ReportContext:
    """What a report type's pager knows about the report beyond its filters."""

    tenant_id: str
    timezone: str
    estimated_rows: int | None = None
    scopes: frozenset[str] = frozenset()  # the creator's scopes: a pager leaves out what they could not read


@dataclass(frozen=True)
class ReportType:
    """A kind of report: its filters (a pydantic model), columns, the scope its data needs, and its pager, which
    reads the owning capability's public API one page at a time and resumes from an opaque cursor."""

    name: str
    title: str
    scope: str
    filters: type[BaseModel]
    columns: tuple[Column, ...]
    pager: Pager = field(repr=False)
    page_size: int = 500
    # A cheap row count, if the data has one; else the export counts by paging (bounded in time).
    estimate: Callable[[str, Any, ReportContext], int | None] | None = field(default=None, repr=False)


@dataclass
class Report:
    id: str
    tenant_id: str
    type: str
    format: Format
    filters: dict[str, Any]
    timezone: str
    bom: bool
    created_at: datetime
    process_id: str | None = None
    notify_email: str | None = None
    name: str | None = None
    object_key: str | None = None
    rows: int | None = None
    size_bytes: int | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    estimated_rows: int | None = None
    scopes: frozenset[str] = frozenset()  # the creator's: the data a report holds is what its creator could read
    origin: str | None = None  # `scheme://host` the report was requested through: its emailed link's base

    @property
    def filename(self) -> str:
        stamp = self.created_at.astimezone(zone(self.timezone)).strftime("%Y%m%d-%H%M")
        return f"{self.type}-{stamp}-{self.id[-6:].lower()}.{self.format.value}"


def zone(name: str) -> ZoneInfo:
    """An IANA time zone; ValueError naming it when it is not one."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"{name!r} is not an IANA time zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/London, America/New_York)") from None


def local_instant(value: datetime, tz: str) -> datetime:
    """A filter's instant: a naive value is wall-clock time in the report's zone, an aware one is kept."""
    return value.replace(tzinfo=zone(tz)) if value.tzinfo is None else value


def fingerprint(tenant_id: str, request: dict[str, Any]) -> str:
    """The same tenant asking for the same report (canonical JSON of the validated request) -> the same value."""
    canonical = json.dumps({"tenant": tenant_id, **request}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def retention_expiry(finished_at: datetime, days: int) -> datetime:
    """When a finished report's object is no longer promised. S3 lifecycle expires an object `days` after its
    creation, rounded up to the next midnight UTC, so the object is there at least until this instant."""
    return finished_at + timedelta(days=days)


# --- cells ---------------------------------------------------------------------------------------------------
def escape_text(value: str) -> str:
    """OWASP CSV injection: a text cell that a spreadsheet would run as a formula is prefixed with a single quote
    (shown as text, the original characters kept after it)."""
    if value and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def shaper(kind: Kind, tz: ZoneInfo) -> Callable[[Any], Any]:
    """`cell` for one column, specialised once: the common case (a value of the column's kind) takes one check."""
    if kind is Kind.DATETIME:

        def shape(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                return value.astimezone(tz).replace(tzinfo=None, microsecond=0)
            return cell(value, kind, tz)

        return shape
    if kind is Kind.TEXT:

        def text(value: Any) -> Any:
            if value.__class__ is str:
                return "'" + value if value and value.startswith(FORMULA_TRIGGERS) else value
            return cell(value, kind, tz)

        return text
    if kind is Kind.INTEGER:
        return lambda value: value if value.__class__ is int else cell(value, kind, tz)
    return lambda value: cell(value, kind, tz)


def cell(value: Any, kind: Kind, tz: ZoneInfo) -> Any:
    """A value as it goes into a file: datetimes in the report's zone (naive wall-clock, which spreadsheets show
    as written), numbers and booleans kept typed, everything else as escaped text. None stays None (empty)."""
    if value is None:
        return None
    if kind is Kind.DATETIME and isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(tz).replace(tzinfo=None, microsecond=0)
    if kind is Kind.DATE and isinstance(value, date):
        return value
    if kind is Kind.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is Kind.NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind is Kind.BOOLEAN and isinstance(value, bool):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        value = ";".join(str(v) for v in value)
    return escape_text(str(value))

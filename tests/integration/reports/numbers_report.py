"""The test report type `test.numbers`: `count` synthetic rows, deterministic from their index, so a test can say
exactly which rows and values a report must hold without writing them to a table first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.reports import Column, Kind, ReportContext, report_type

BASE = datetime(2026, 1, 1, tzinfo=UTC)
CALLS: list[str | None] = []  # the cursor of every page read


class NumberFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0, le=5_000_000)
    multiple_of: int = Field(default=1, ge=1, description="Only rows whose n is a multiple of this")
    name: str = Field(default="row", max_length=1000)


COLUMNS = (
    Column("n", Kind.INTEGER),
    Column("name"),
    Column("at", Kind.DATETIME),
    Column("amount", Kind.NUMBER),
    Column("even", Kind.BOOLEAN),
)


def expected_row(n: int, name: str = "row") -> tuple[Any, ...]:
    return (n, f"{name} {n}", BASE + timedelta(seconds=n), n * 1.5, n % 2 == 0)


def estimate(tenant_id: str, f: NumberFilters, ctx: ReportContext) -> int:
    return len(range(0, f.count, f.multiple_of))


@report_type(
    "test.numbers", title="Numbers", scope="jobs:read", filters=NumberFilters, columns=COLUMNS, page_size=5000,
    estimate=estimate,
)  # fmt: skip
def numbers(tenant_id: str, f: NumberFilters, cursor: str | None, limit: int, ctx: ReportContext):
    CALLS.append(cursor)
    start = int(cursor or 0)
    end = min(f.count, start + limit)
    rows = [expected_row(n, f.name) for n in range(start, end) if n % f.multiple_of == 0]
    return rows, (str(end) if end < f.count else None)

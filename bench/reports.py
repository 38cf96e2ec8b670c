"""Reports: seconds and list-price cost per 100,000 rows, and peak memory of a 1,000,000-row report.

Two scenarios, each a fresh moto world built from template.yaml, a synthetic report type (`bench.rows`: rows made
from their index, ~60 bytes of CSV each, so the figures are the export's own, not a table scan's):
  csv-100k    POST /v1/reports -> ready, every AWS request counted (bench.ledger): the process machinery, the
              multipart upload, the finish. Lambda priced on the measured handler time (moto: no network
              latency, so a floor); S3 requests and 7 days of storage priced on top.
  memory-1m   the export's streaming loop over 1,000,000 rows, part by part exactly as the part jobs run it, with
              tracemalloc on; each part is checksummed and dropped instead of uploaded (moto would keep uploaded
              parts in this process's memory). The peak covers what grows with the row count: the page, the
              encoder, the part buffer. Budget: the issue's 128 MiB (the worker's MemorySize is 256 MB).
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

S3_PRICES = {
    "put_per_thousand": 0.005,  # PUT, COPY, POST, LIST (CreateMultipartUpload, UploadPart, Complete)
    "get_per_thousand": 0.0004,  # GET, HEAD
    "storage_gb_month": 0.023,  # S3 Standard, first 50 TB
}
KEEP_DAYS = 7  # ReportRetentionDays' default


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0)


def _register() -> None:
    from conveyor.reports import Column, Kind, report_type

    base = datetime(2026, 1, 1, tzinfo=UTC)
    columns = (Column("n", Kind.INTEGER), Column("name"), Column("at", Kind.DATETIME), Column("amount", Kind.NUMBER))

    @report_type(
        "bench.rows",
        title="Rows",
        scope="jobs:read",
        filters=_Filters,
        columns=columns,
        page_size=1000,
        estimate=lambda tenant, f, ctx: f.count,
    )
    def rows(tenant_id: str, f: _Filters, cursor: str | None, limit: int, ctx: Any):
        start = int(cursor or 0)
        end = min(f.count, start + limit)
        page = [(n, f"client {n}", base + timedelta(seconds=n), n * 0.25) for n in range(start, end)]
        return page, (str(end) if end < f.count else None)


def _run_report(rows: int, *, counted: bool, before_drain: Any = None) -> tuple[dict[str, Any], Any, float, Any]:
    from bench import ledger
    from bench.awscalls import _Client, _drain, _world
    from bench.world import api_key

    with _world() as (stack, _):
        client = _Client(stack, api_key(scopes="reports:read,reports:write,jobs:read"))
        with ledger.paused():  # warm, as the other parts are: the job types and report types loaded once
            from conveyor.jobs import registry as job_types

            job_types.names()
            assert client.request("GET", "/v1/report-types").status == 200
        book = None
        started = time.perf_counter()
        if counted:
            with ledger.recording() as book:
                response = client.request("POST", "/v1/reports", {"type": "bench.rows", "filters": {"count": rows}})
                while _drain(stack):
                    pass
        else:
            response = client.request("POST", "/v1/reports", {"type": "bench.rows", "filters": {"count": rows}})
            if before_drain:
                before_drain()
            while _drain(stack):
                pass
        elapsed = time.perf_counter() - started
        assert response.status == 202, response.body
        with ledger.paused():
            report = client.request("GET", f"/v1/reports/{response.json()['id']}").json()
    assert report["state"] == "ready" and report["rows"] == rows, report
    return report, book, elapsed, stack


def csv_100k(rows: int) -> dict[str, Any]:
    from bench import pricing
    from bench.awscalls import _summary

    report, book, elapsed, _ = _run_report(rows, counted=True)
    summary = _summary("csv-100k", rows, book, elapsed, {}, api_requests=1)  # per "job" below = per row
    s3 = {op.removeprefix("s3."): k for op, k in summary["other_requests"].items() if op.startswith("s3.")}
    puts = sum(k for op, k in s3.items() if op in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"))
    gets = sum(k for op, k in s3.items() if op in ("HeadObject", "GetObject"))
    per_million = pricing.cost_per_million(summary)
    per_100k = 100_000 / rows
    storage = report["size_bytes"] / 1e9 * KEEP_DAYS / 30.4 * S3_PRICES["storage_gb_month"] * per_100k
    s3_requests = (puts * S3_PRICES["put_per_thousand"] + gets * S3_PRICES["get_per_thousand"]) / 1000 * per_100k
    core_per_100k = per_million["core"] / 10
    return {
        "rows": rows,
        "bytes": report["size_bytes"],
        "parts": s3.get("UploadPart", 0),
        "seconds": round(elapsed, 2),
        "seconds_per_100k_rows": round(elapsed * per_100k, 2),
        "s3_requests": s3,
        "dynamodb_write_requests": round(summary["dynamodb"]["write_requests_per_job"] * rows, 1),
        "dynamodb_wru": round(summary["dynamodb"]["wru_per_job"] * rows, 1),
        "lambda": {
            f: {"invocations": v["invocations"], "billed_ms": v["billed_ms"]} for f, v in summary["lambda"].items()
        },
        "cost_per_100k_rows": {
            "aws_core_without_s3": round(core_per_100k, 6),
            "s3_requests": round(s3_requests, 6),
            "s3_storage_7_days": round(storage, 6),
            "total": round(core_per_100k + s3_requests + storage, 6),
            "lines_per_100k": {k: round(v / 10, 6) for k, v in per_million["lines"].items()},
        },
    }


def memory_1m(rows: int) -> dict[str, Any]:
    """The export's streaming loop for `rows` rows, part after part as the chain of part jobs runs it (each part
    built from its start cursor, "uploaded", dropped), under tracemalloc. No moto: the emulator would keep the
    uploaded parts in this process. What does not grow with the row count (a job's DynamoDB and SQS requests) is
    measured by the csv scenario, not here."""
    import resource
    from datetime import UTC, datetime

    from conveyor.reports import jobs, registry
    from conveyor.reports.domain import Format, Report

    class _Ctx:
        def remaining_seconds(self) -> float:
            return 900.0

    kind = registry.require("bench.rows")
    report = Report(
        id="rpt_bench", tenant_id="bench", type="bench.rows", format=Format.CSV, filters={"count": rows},
        timezone="Europe/London", bom=True, created_at=datetime.now(UTC),
    )  # fmt: skip
    sizes: list[int] = []
    written = 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    cursor, n, last = None, 1, False
    while not last:
        body, part_rows, cursor, last = jobs._build_part(report, kind, cursor, n, _Ctx())
        data = body.getbuffer()
        sizes.append(len(data))
        hashlib.md5(data, usedforsecurity=False).hexdigest()  # what the upload computes over the part
        del data, body
        written += part_rows
        n += 1
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert written == rows, (written, rows)
    return {
        "rows": rows,
        "bytes": sum(sizes),
        "parts": len(sizes),
        "largest_part_bytes": max(sizes),
        "seconds_with_tracemalloc": round(elapsed, 1),
        "peak_traced_mib": round(peak / 2**20, 1),
        "max_rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
        "budget_mib": 128,
        "within": peak / 2**20 < 128,
    }


def run(rows: int = 100_000, memory_rows: int = 1_000_000) -> dict[str, Any]:
    _register()
    return {"csv-100k": csv_100k(rows), "memory-1m": memory_1m(memory_rows)}

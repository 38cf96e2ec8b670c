"""The `reports.export` process: a report streamed into an S3 multipart upload, one part per batch.

Driver (`reports.export.start`): names the report's process on it, creates the multipart upload once (its id
and the object key go into the process context), declares the first batch, then counts the rows for the
estimate (bounded; progress is indeterminate without it).

CSV, a chain of part batches (`reports.export.part`, batch keys `part<n>.0`): batch n reads pages from its start
cursor (in its payload) until the part holds PART_BYTES or the data ends, uploads it as part n, saves
[ETag, rows, bytes] at index n-1 of the context's `parts` with the cursor after it, declares batch n+1 with that
cursor, and records its rows (exactly once: the process ledger). The last part completes the upload, finishes
the report and declares the total. A retried or re-delivered batch whose part is already saved does not upload
it again; one whose upload was lost with its worker uploads the same part number again (S3 keeps the last), so
nothing is duplicated or missed, and no second upload is ever started. A part that cannot be built in the time
left is dropped and the batch continues through a checkpoint (no attempt spent).

XLSX, one batch (`xlsx.0`): openpyxl's write-only workbook, its zip written straight into parts of the same
upload. A zip's central directory comes last and openpyxl's compressor state cannot be saved, so an XLSX report
is built in one run: a retried run rewrites the same part numbers of the same upload from the start; a report
that does not fit one run fails with a reason (use CSV).
"""

from __future__ import annotations

import io
from typing import Any

from pydantic import BaseModel, Field, StrictInt

from conveyor.jobs.registry import Continue, JobContext, RetryPolicy, Scopes, job_type
from conveyor.platform.errors import PermanentError
from conveyor.processes import process_type
from conveyor.reports import registry, service, storage
from conveyor.reports.domain import Format, Report, ReportType
from conveyor.reports.formats import CsvEncoder, XlsxWriter

QUEUE = "reports"
MARGIN_SECONDS = 8.0  # what a part keeps in hand to upload itself and commit (a part is at most ~8 MiB)
ESTIMATE_SECONDS = 15.0
# Jobs of a process: /v1/jobs shows or starts them only with the processes scopes (a started one fails: no report).
SCOPES = Scopes(read="processes:read", write="processes:write")


class ExportParams(BaseModel):
    report_id: str = Field(min_length=1, max_length=64)


class DriverPayload(BaseModel):
    process_id: str


class PartPayload(BaseModel):
    part: StrictInt = Field(ge=0, le=storage.MAX_PARTS)  # 0: the XLSX batch
    cursor: str | None = Field(default=None, max_length=8192)


def _process_of(ctx: JobContext) -> Any:
    if ctx.process is None:
        raise PermanentError("this job runs only as part of a report (POST /v1/reports)")
    return ctx.process


def _report(ctx: JobContext) -> tuple[Any, Report, ReportType]:
    process = _process_of(ctx)
    report = service.for_process(ctx.tenant_id, ExportParams.model_validate(process.params).report_id, process.id)
    return process, report, registry.require(report.type)


@job_type("reports.export.start", queue=QUEUE, payload=DriverPayload, retry=RetryPolicy(max_attempts=5), scopes=SCOPES)
def start(payload: DriverPayload, ctx: JobContext) -> dict[str, Any]:
    process, report, kind = _report(ctx)
    state = process.context
    if not state.get("upload_id"):
        key = service.object_key(report)
        upload_id = storage.create_upload(
            service.bucket(), key, content_type=report.format.content_type, filename=report.filename
        )
        state = process.update_context(upload_id=upload_id, key=key, parts=[])
    if report.format is Format.XLSX:
        process.add_batches([{"part": 0, "cursor": None}], key="xlsx", sizes=[None])
    else:
        process.add_batches([{"part": 1, "cursor": None}], key="part1", sizes=[None])
    estimate = None
    if not state.get("estimated"):
        estimate = service.estimate(
            report,
            kind,
            seconds_left=ctx.remaining_seconds,
            budget_seconds=min(ESTIMATE_SECONDS, ctx.remaining_seconds() / 2),
        )
        process.update_context(estimated=True)
    return {"report_id": report.id, "upload_id": state["upload_id"], "estimated_rows": estimate}


@job_type(
    "reports.export.part",
    queue=QUEUE,
    payload=PartPayload,
    retry=RetryPolicy(max_attempts=5, base_seconds=10, cap_seconds=300),
    scopes=SCOPES,
)
def part(payload: PartPayload, ctx: JobContext) -> dict[str, Any]:
    process, report, kind = _report(ctx)
    state = process.context
    upload_id, key = state.get("upload_id"), state.get("key")
    if not upload_id or not key:
        raise RuntimeError("the report's upload is not in its process context yet")  # transient: retried
    if report.format is Format.XLSX:
        return _xlsx(process, report, kind, upload_id, key, ctx)
    parts: list[list[Any]] = list(state.get("parts") or [])
    n = payload.part
    if len(parts) < n - 1:
        raise RuntimeError(f"part {n - 1} of the report is not saved yet")  # transient: retried
    if len(parts) == n - 1:
        body, rows, after, last = _build_part(report, kind, payload.cursor, n, ctx)
        size = body.getbuffer().nbytes
        etag = storage.upload_part(service.bucket(), key, upload_id, n, body) if size or n == 1 else None
        del body
        parts.append([etag, rows, size])
        state = process.update_context(parts=parts, next_cursor=after, last=last)
    etag, rows, size = parts[n - 1]
    latest = len(parts) == n
    if latest and not state.get("last"):
        process.add_batches([{"part": n + 1, "cursor": state.get("next_cursor")}], key=f"part{n + 1}", sizes=[None])
    elif latest:
        total = sum(int(p[1]) for p in parts)
        service.finish(report, upload_id, [p[0] for p in parts if p[0]], total)
        process.fetch_done(expected_total=total)
    process.record(succeeded=int(rows))
    return {"part": n, "rows": rows, "bytes": size, "last": bool(latest and state.get("last"))}


def _build_part(
    report: Report, kind: ReportType, cursor: str | None, n: int, ctx: JobContext
) -> tuple[io.BytesIO, int, str | None, bool]:
    """Part n's bytes from `cursor`: pages until PART_BYTES or the end. (body, rows, cursor after, last)."""
    encoder = CsvEncoder(kind.columns, report.timezone, bom=report.bom)
    filters, rctx = kind.filters.model_validate(report.filters), service.context_of(report)
    body = io.BytesIO()
    if n == 1:
        body.write(encoder.header())
    rows = 0
    while True:
        if ctx.remaining_seconds() < MARGIN_SECONDS:
            raise Continue(None)  # this part is rebuilt from its start cursor by the next run
        page, cursor = kind.pager(report.tenant_id, filters, cursor, kind.page_size, rctx)
        body.write(encoder.rows(page))
        rows += len(page)
        if cursor is None:
            return body, rows, None, True
        if body.tell() >= storage.PART_BYTES:
            return body, rows, cursor, False


def _xlsx(process: Any, report: Report, kind: ReportType, upload_id: str, key: str, ctx: JobContext) -> dict[str, Any]:
    state = process.context
    if state.get("last") and state.get("parts"):  # written and saved before: finish (idempotent) and count once
        etags, rows = [p[0] for p in state["parts"]], int(state.get("rows", 0))
        service.finish(report, upload_id, etags, rows)
        process.fetch_done(expected_total=rows)
        process.record(succeeded=rows)
        return {"rows": rows, "parts": len(etags), "resumed": True}
    writer = XlsxWriter(kind.columns, report.timezone, title=kind.title)
    filters, rctx = kind.filters.model_validate(report.filters), service.context_of(report)
    cursor: str | None = None
    rows = 0
    while True:
        if ctx.remaining_seconds() < MARGIN_SECONDS * 2:
            raise PermanentError(
                f"an XLSX report is built in one run and this one did not fit ({rows} rows read); "
                "request it as CSV, or narrow its filters"
            )
        page, cursor = kind.pager(report.tenant_id, filters, cursor, kind.page_size, rctx)
        writer.rows(page)
        rows += len(page)
        if cursor is None:
            break
    sink = storage.PartSink(service.bucket(), key, upload_id)
    writer.close(sink)
    etags = sink.close_parts()
    process.update_context(parts=[[e, None, None] for e in etags], last=True, rows=rows)
    service.finish(report, upload_id, etags, rows)
    process.fetch_done(expected_total=rows)
    process.record(succeeded=rows)
    return {"rows": rows, "bytes": sink.size, "parts": len(etags)}


EXPORT = process_type("reports.export", params=ExportParams, driver="reports.export.start", batch="reports.export.part")

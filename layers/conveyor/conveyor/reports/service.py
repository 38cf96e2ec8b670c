"""Report use cases: request one (validated per type, deduplicated for 10 minutes, started as a process), read
it with its progress, mint a download URL, and, for the export job, finish the file and say it is ready.

Every function takes the caller's tenant; another tenant's report is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from conveyor import processes
from conveyor.platform.auth.keys import Principal
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import Forbidden, InvalidInput, InvalidState, NotFound
from conveyor.platform.ids import new_id
from conveyor.platform.observability import count, logger
from conveyor.platform.settings import SettingsError, get_settings
from conveyor.reports import registry, repository, storage
from conveyor.reports.domain import (
    DOWNLOAD_URL_SECONDS,
    Format,
    Report,
    ReportContext,
    ReportType,
    State,
    fingerprint,
    state_of,
    zone,
)

PROCESS_TYPE = "reports.export"


@dataclass(frozen=True)
class NewReport:
    type: str
    format: Format = Format.CSV
    filters: dict[str, Any] | None = None
    timezone: str = "UTC"
    bom: bool = False
    notify_email: str | None = None
    name: str | None = None
    origin: str | None = None  # the request's `scheme://host` (platform.http.resolver.origin)


def bucket() -> str:
    name = get_settings().reports_bucket
    if not name:
        raise SettingsError("invalid environment: REPORTS_BUCKET is not set (template.yaml gives it)")
    return name


def validated_filters(kind: ReportType, filters: dict[str, Any] | None) -> BaseModel:
    try:
        return kind.filters.model_validate(filters or {})
    except ValidationError as exc:
        fields = [
            {"loc": ["filters", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput(f"invalid filters for report type {kind.name!r}", fields=fields) from None


def create(caller: Principal, request: NewReport) -> tuple[Report, bool]:
    """A new report, or the one an identical request made in the last 10 minutes. (report, created)."""
    kind = registry.require(request.type)
    if not caller.allows(kind.scope):
        raise Forbidden(
            f"a {kind.name!r} report needs the {kind.scope!r} scope as well", details={"required_scope": kind.scope}
        )
    filters = validated_filters(kind, request.filters).model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        zone(request.timezone)
    except ValueError as exc:
        raise InvalidInput(str(exc), fields=[{"loc": ["timezone"], "msg": str(exc)}]) from None
    canonical = {
        "type": kind.name,
        "format": request.format.value,
        "filters": filters,
        "timezone": request.timezone,
        "bom": request.bom,
        "notify_email": request.notify_email,
        "name": request.name,
    }
    report = Report(
        id=new_id("rpt"),
        tenant_id=caller.tenant_id,
        type=kind.name,
        format=request.format,
        filters=filters,
        timezone=request.timezone,
        bom=request.bom and request.format is Format.CSV,
        created_at=utcnow(),
        notify_email=request.notify_email,
        name=request.name,
        scopes=caller.scopes,
        origin=request.origin,
    )
    existing = repository.insert(report, fingerprint(caller.tenant_id, canonical))
    created = existing is None
    if existing is not None:
        found = repository.get(caller.tenant_id, existing, consistent=True)
        if found is None:
            raise RuntimeError(f"the dedupe claim names report {existing}, which does not exist")
        report = found
    if report.process_id is None:
        _start(report)  # a crash between the insert and here is healed by the identical request's retry
    if created:
        count("ReportsRequested", report.type)
    return report, created


def _start(report: Report) -> None:
    process, _ = processes.start(
        report.tenant_id,
        processes.StartSpec(type=PROCESS_TYPE, params={"report_id": report.id}, name=f"report {report.type}"),
        idempotency_key=f"report:{report.id}",
    )
    repository.attach_process(report, process.id)
    report.process_id = process.id


def require(tenant_id: str, report_id: str, *, consistent: bool = False) -> Report:
    report = repository.get(tenant_id, report_id, consistent=consistent)
    if report is None:
        raise NotFound(f"report {report_id!r} not found")
    return report


@dataclass(frozen=True)
class Status:
    """A report as a reader sees it: its state, rows written so far and the estimate, and its process's error."""

    report: Report
    state: State
    rows_written: int
    estimated_rows: int | None
    percent: float | None
    error: str | None


def status(report: Report, now: datetime | None = None) -> Status:
    process = processes.find(report.tenant_id, report.process_id) if report.process_id else None
    state = state_of(process.state.value if process else None, report.expires_at, now or utcnow())
    written = process.counters.processed if process else 0
    estimate = report.estimated_rows
    if state in (State.READY, State.EXPIRED):
        percent: float | None = 100.0
    elif estimate:
        percent = round(min(99.9, 100.0 * written / estimate), 1)
    else:
        percent = None
    return Status(report, state, written, estimate, percent, process.error if process else None)


def list_reports(tenant_id: str, *, limit: int, after: str | None) -> tuple[list[Report], str | None]:
    return repository.query(tenant_id, limit=limit, after=after)


def download_url(tenant_id: str, report_id: str) -> str:
    """A presigned URL for the report's file, valid DOWNLOAD_URL_SECONDS from now (never stored)."""
    current = status(require(tenant_id, report_id))
    report = current.report
    if current.state is State.EXPIRED:
        raise InvalidState("the report has expired; request it again", details={"state": current.state.value})
    if current.state is not State.READY or not report.object_key:
        raise InvalidState(f"the report is {current.state.value}, not ready", details={"state": current.state.value})
    count("ReportDownloads", report.type)
    return storage.download_url(
        bucket(),
        report.object_key,
        filename=report.filename,
        content_type=report.format.content_type,
        seconds=DOWNLOAD_URL_SECONDS,
    )


def types() -> list[ReportType]:
    return registry.all_types()


# --- the export job's side ----------------------------------------------------------------------------------------
def for_process(tenant_id: str, report_id: str, process_id: str) -> Report:
    """The report a process exports; its process is named on it once (a process started by other means than
    POST /v1/reports has no report and exports nothing)."""
    report = repository.get(tenant_id, report_id, consistent=True)
    if report is None or not repository.attach_process(report, process_id):
        from conveyor.platform.errors import PermanentError

        raise PermanentError("this process exports no report of its tenant (reports start with POST /v1/reports)")
    report.process_id = process_id
    return report


def object_key(report: Report) -> str:
    return f"reports/{report.id}.{report.format.value}"


def context_of(report: Report) -> ReportContext:
    return ReportContext(tenant_id=report.tenant_id, timezone=report.timezone, scopes=report.scopes)


def estimate(report: Report, kind: ReportType, *, seconds_left: Any, budget_seconds: float) -> int | None:
    """Count the rows the report will hold by paging through its data without writing anything, for at most
    `budget_seconds`; None if that was not enough (progress then stays indeterminate until the end)."""
    import time

    filters, ctx = kind.filters.model_validate(report.filters), context_of(report)
    if kind.estimate is not None:
        counted = kind.estimate(report.tenant_id, filters, ctx)
        if counted is not None:
            repository.set_estimate(report, counted)
        return counted
    deadline = time.monotonic() + budget_seconds
    cursor, rows = None, 0
    while True:
        if time.monotonic() > deadline or seconds_left() < 5:
            return None
        page, cursor = kind.pager(report.tenant_id, filters, cursor, kind.page_size, ctx)
        rows += len(page)
        if cursor is None:
            repository.set_estimate(report, rows)
            return rows


def finish(report: Report, upload_id: str, etags: list[str], rows: int) -> None:
    """Assemble the file, record where and how big it is, copy it locally (the local stack), and send the ready
    email once. Every step is idempotent: a retried last part repeats them harmlessly."""
    settings, key = get_settings(), object_key(report)
    storage.complete_upload(bucket(), key, upload_id, etags)
    size = storage.object_size(bucket(), key) or 0
    at = utcnow()
    repository.finish(
        report, object_key=key, rows=rows, size_bytes=size, at=at, retention_days=settings.report_retention_days
    )
    report.object_key, report.rows, report.size_bytes, report.finished_at = key, rows, size, at
    report.expires_at = at + timedelta(days=settings.report_retention_days)
    if settings.reports_local_copy_dir:
        _local_copy(report, key, Path(settings.reports_local_copy_dir))
    if report.notify_email:
        _ready_email(report, rows)
    count("ReportsFinished", report.type)
    logger.info("report ready", extra={"report_id": report.id, "rows": rows, "bytes": size})


def _local_copy(report: Report, key: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{report.id}-{report.filename}"
    with target.open("wb") as out:
        storage.read_object(bucket(), key, out.write)


def download_link(report: Report) -> str:
    """The link the ready email carries: the dashboard's download route, which signs the user in if needed and
    mints a fresh presigned URL on every click (an emailed presigned URL would die with the signer's session).
    Its base: PublicApiUrl (a custom domain) if set, else the URL the report was requested through."""
    base = (get_settings().public_api_url or report.origin or "").rstrip("/")
    return f"{base}/dashboard/reports/{report.id}/download"


def _ready_email(report: Report, rows: int) -> None:
    from conveyor import jobs

    expires = report.expires_at or utcnow()
    jobs.enqueue(
        report.tenant_id,
        jobs.NewJob(
            type="email.send",
            payload={
                "to": [report.notify_email],
                "template": "report-ready",
                "context": {
                    "name": report.notify_email,
                    "report_name": report.name or f"{registry.require(report.type).title} ({rows} rows)",
                    "download_url": download_link(report),
                    "expires_at": expires.astimezone(zone(report.timezone)).strftime("%Y-%m-%d %H:%M %Z"),
                },
            },
        ),
        f"{report.id}:ready-email",
    )

"""/v1/reports routes and their request/response models: parse -> one service call -> shape the response.

Scopes: `reports:read` / `reports:write` (or admin); requesting a report also needs the read scope of the data
it exports (jobs:read, reminders:read, webhooks:read). A tenant sees only its own reports (404 otherwise).
The download route answers 302 to a presigned S3 URL minted for that request (valid 10 minutes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool

from conveyor.platform.dynamo import decode_cursor, encode_cursor
from conveyor.platform.http.resolver import origin
from conveyor.platform.http.security import principal, requires
from conveyor.reports import service
from conveyor.reports.domain import Format, ReportType

router = Router()
READ, WRITE = requires("reports:read"), requires("reports:write")
ReportId = Annotated[str, Path(min_length=1, max_length=64)]
ReportState = Literal["queued", "running", "paused", "ready", "failed", "cancelled", "expired"]


class CreateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "jobs",
                    "format": "csv",
                    "filters": {"from": "2026-11-01", "to": "2026-12-01", "state": "failed"},
                    "timezone": "Europe/London",
                    "bom": True,
                    "name": "Failed jobs in November",
                }
            ]
        },
    )

    type: str = Field(min_length=1, max_length=100, examples=["jobs"])
    format: Format = Format.CSV
    filters: dict[str, Any] = Field(default_factory=dict, examples=[{"from": "2026-11-01", "to": "2026-12-01"}])
    timezone: str = Field(default="UTC", min_length=1, max_length=64, examples=["Europe/London"])
    bom: StrictBool = Field(default=False, description="CSV only: start with a UTF-8 byte order mark (for Excel)")
    notify_email: EmailStr | None = Field(default=None, description="Sent a 'report ready' email with a link")
    name: str | None = Field(default=None, max_length=200)


class ProgressView(BaseModel):
    rows_written: int
    estimated_rows: int | None = Field(description="Counted before writing; null if that took too long")
    percent: float | None = Field(description="rows_written / estimated_rows, below 100 until ready")
    indeterminate: bool


class ReportView(BaseModel):
    id: str
    type: str
    format: Format
    state: ReportState
    name: str | None
    filters: dict[str, Any]
    timezone: str
    bom: bool
    notify_email: str | None
    process_id: str | None
    progress: ProgressView
    rows: int | None = Field(description="Exact, once ready")
    size_bytes: int | None
    filename: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="The file is kept until then")
    download_path: str | None = Field(description="GET it (with your key) for a fresh download URL, when ready")
    error: str | None

    @classmethod
    def of(cls, status: service.Status) -> ReportView:
        r = status.report
        ready = status.state.value == "ready"
        return cls(
            id=r.id,
            type=r.type,
            format=r.format,
            state=status.state.value,
            name=r.name,
            filters=r.filters,
            timezone=r.timezone,
            bom=r.bom,
            notify_email=r.notify_email,
            process_id=r.process_id,
            progress=ProgressView(
                rows_written=status.rows_written,
                estimated_rows=status.estimated_rows,
                percent=status.percent,
                indeterminate=status.percent is None,
            ),
            rows=r.rows,
            size_bytes=r.size_bytes,
            filename=r.filename,
            created_at=r.created_at,
            finished_at=r.finished_at,
            expires_at=r.expires_at,
            download_path=f"/v1/reports/{r.id}/download" if ready else None,
            error=status.error if status.state.value == "failed" else None,
        )


class ReportPage(BaseModel):
    items: list[ReportView]
    next_cursor: str | None = None


class ColumnView(BaseModel):
    header: str
    kind: str


class ReportTypeView(BaseModel):
    name: str
    title: str
    scope: str
    columns: list[ColumnView]
    filters: dict[str, Any] = Field(description="JSON Schema of the type's filters")

    @classmethod
    def of(cls, kind: ReportType) -> ReportTypeView:
        return cls(
            name=kind.name,
            title=kind.title,
            scope=kind.scope,
            columns=[ColumnView(header=c.header, kind=c.kind.value) for c in kind.columns],
            filters=kind.filters.model_json_schema(by_alias=True),
        )


class ReportTypePage(BaseModel):
    items: list[ReportTypeView]


@router.post(
    "/reports",
    middlewares=[WRITE],
    summary="Request a report (an identical request within 10 minutes returns the same report)",
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"model": ReportView}}},
        200: {"description": "The same report, requested identically within the last 10 minutes"},
    },
)
def create_report(request: CreateRequest) -> Response[ReportView]:
    new = service.NewReport(**request.model_dump(), origin=origin(router.current_event.raw_event))
    report, created = service.create(principal(router), new)
    return Response(
        status_code=202 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=ReportView.of(service.status(report)),
    )


@router.get("/reports", middlewares=[READ], summary="List reports, newest first")
def list_reports(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ReportPage:
    after = decode_cursor(cursor, {"sk": "rpt_"})
    items, last = service.list_reports(principal(router).tenant_id, limit=limit, after=after["sk"] if after else None)
    return ReportPage(
        items=[ReportView.of(service.status(r)) for r in items], next_cursor=encode_cursor(sk=last) if last else None
    )


@router.get("/report-types", middlewares=[READ], summary="The report types, their columns and filters")
def report_types() -> ReportTypePage:
    return ReportTypePage(items=[ReportTypeView.of(k) for k in service.types()])


@router.get("/reports/<report_id>", middlewares=[READ], summary="Get a report: state, progress, rows, size, expiry")
def get_report(report_id: ReportId) -> ReportView:
    return ReportView.of(service.status(service.require(principal(router).tenant_id, report_id)))


@router.get(
    "/reports/<report_id>/download",
    middlewares=[READ],
    summary="Download a ready report: 302 to a presigned URL minted now, valid 10 minutes",
    responses={
        302: {"description": "Location: the file"},
        409: {"description": "The report is not ready (queued, running, failed) or has expired"},
    },
)
def download_report(report_id: ReportId) -> Response[None]:
    url = service.download_url(principal(router).tenant_id, report_id)
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"}, body=None)

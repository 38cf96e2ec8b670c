"""Report storage (private to this capability): PynamoDB models on the reports table; returns domain objects.

Table layout (template.yaml `ReportsTable`, keys `pk`/`sk`):
  <tenant>  rpt#<rpt_ULID>      the report record; a tenant's reports list newest-first by key
  <tenant>  dedupe#<sha256>     the report an identical request made within DEDUPE_SECONDS (written with it)
Both carry `expires_at` (epoch seconds, DynamoDB TTL); TTL deletes late, so reads check it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from conveyor.platform.dynamo import CompactJSONAttribute, bind_to, conditional
from conveyor.platform.settings import get_settings
from conveyor.reports.domain import DEDUPE_SECONDS, Format, Report

RECORD_DAYS = 400  # an unfinished report's record outlives any run; a finished one lives until its file expires


class _Item(Model):
    class Meta:
        table_name = "reports-unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute(null=True)


class ReportRecord(_Item):
    report_id = UnicodeAttribute()
    type = UnicodeAttribute()
    format = UnicodeAttribute()
    filters = CompactJSONAttribute()
    timezone = UnicodeAttribute()
    bom = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    process_id = UnicodeAttribute(null=True)
    notify_email = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    origin = UnicodeAttribute(null=True)
    object_key = UnicodeAttribute(null=True)
    rows = NumberAttribute(null=True)
    size_bytes = NumberAttribute(null=True)
    estimated_rows = NumberAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    file_expires_at = UTCDateTimeAttribute(null=True)
    scopes = UnicodeAttribute(null=True)  # the creator's scopes, comma-separated


class DedupeRecord(_Item):
    report_id = UnicodeAttribute()
    until = NumberAttribute()


def _bound(model: type[Model]) -> Any:
    return bind_to(model, get_settings().reports_table, "REPORTS_TABLE")


def _sk(report_id: str) -> str:
    return f"rpt#{report_id}"


def _domain(r: ReportRecord) -> Report:
    return Report(
        id=r.report_id,
        tenant_id=r.pk,
        type=r.type,
        format=Format(r.format),
        filters=dict(r.filters or {}),
        timezone=r.timezone,
        bom=bool(r.bom),
        created_at=r.created_at,
        process_id=r.process_id,
        notify_email=r.notify_email,
        name=r.name,
        object_key=r.object_key,
        rows=int(r.rows) if r.rows is not None else None,
        size_bytes=int(r.size_bytes) if r.size_bytes is not None else None,
        finished_at=r.finished_at,
        expires_at=r.file_expires_at,
        estimated_rows=int(r.estimated_rows) if r.estimated_rows is not None else None,
        scopes=frozenset(s for s in (r.scopes or "").split(",") if s),
        origin=r.origin,
    )


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def insert(report: Report, fingerprint: str) -> str | None:
    """Write the report and its dedupe claim together. None when written; else the id of the report an identical
    request made within DEDUPE_SECONDS (that one stands)."""
    model, dedupe = _bound(ReportRecord), _bound(DedupeRecord)
    now = _epoch(report.created_at)
    record = model(
        report.tenant_id,
        _sk(report.id),
        report_id=report.id,
        type=report.type,
        format=report.format.value,
        filters=report.filters,
        timezone=report.timezone,
        bom=report.bom,
        created_at=report.created_at,
        notify_email=report.notify_email,
        name=report.name,
        scopes=",".join(sorted(report.scopes)),
        origin=report.origin,
        expires_at=now + RECORD_DAYS * 86400,
    )
    claim = dedupe(
        report.tenant_id,
        f"dedupe#{fingerprint}",
        report_id=report.id,
        until=now + DEDUPE_SECONDS,
        expires_at=now + DEDUPE_SECONDS + 3600,
    )
    for _ in range(3):
        try:
            with TransactWrite(connection=model._get_connection().connection) as tx:
                tx.save(record, condition=model.sk.does_not_exist())
                tx.save(claim, condition=dedupe.sk.does_not_exist() | (dedupe.until <= now))
            return None
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" not in [r.code for r in (exc.cancellation_reasons or []) if r]:
                raise
        try:
            found = dedupe.get(report.tenant_id, f"dedupe#{fingerprint}", consistent_read=True)
        except DoesNotExist:
            continue  # the claim was just deleted (TTL): try again
        if found.until > now:
            return str(found.report_id)
    raise RuntimeError("the dedupe claim kept changing under this request")


def _record(tenant_id: str, report_id: str, *, consistent: bool = False) -> ReportRecord | None:
    try:
        return _bound(ReportRecord).get(tenant_id, _sk(report_id), consistent_read=consistent)
    except DoesNotExist:
        return None


def get(tenant_id: str, report_id: str, *, consistent: bool = False) -> Report | None:
    record = _record(tenant_id, report_id, consistent=consistent)
    return _domain(record) if record is not None else None


def query(tenant_id: str, *, limit: int, after: str | None) -> tuple[list[Report], str | None]:
    """A page of the tenant's reports, newest first; the second value is the last report id (None: the end)."""
    model = _bound(ReportRecord)
    results = model.query(
        tenant_id,
        model.sk.startswith("rpt#"),
        scan_index_forward=False,
        limit=limit,
        page_size=limit,
        last_evaluated_key={"pk": {"S": tenant_id}, "sk": {"S": _sk(after)}} if after else None,
    )
    items = [_domain(r) for r in results]
    last = results.last_evaluated_key
    return items, (last["sk"]["S"].removeprefix("rpt#") if last else None)


def attach_process(report: Report, process_id: str) -> bool:
    """Name the report's process, once (a second, different process is refused)."""
    model = _bound(ReportRecord)
    item = model(report.tenant_id, _sk(report.id))
    condition = model.sk.exists() & (model.process_id.does_not_exist() | (model.process_id == process_id))
    return conditional(lambda: item.update(actions=[model.process_id.set(process_id)], condition=condition))


def set_estimate(report: Report, rows: int) -> None:
    model = _bound(ReportRecord)
    item = model(report.tenant_id, _sk(report.id))
    conditional(lambda: item.update(actions=[model.estimated_rows.set(rows)], condition=model.sk.exists()))


def finish(report: Report, *, object_key: str, rows: int, size_bytes: int, at: datetime, retention_days: int) -> bool:
    """The file is complete: where, how big, until when. Idempotent (a retried last part writes the same)."""
    model = _bound(ReportRecord)
    item = model(report.tenant_id, _sk(report.id))
    until = at + timedelta(days=retention_days)
    actions = [
        model.object_key.set(object_key),
        model.rows.set(rows),
        model.size_bytes.set(size_bytes),
        model.finished_at.set(at),
        model.file_expires_at.set(until),
        model.expires_at.set(_epoch(until) + 86400),
    ]
    return conditional(lambda: item.update(actions=actions, condition=model.sk.exists()))

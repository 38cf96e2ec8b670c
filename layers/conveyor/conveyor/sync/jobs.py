"""CRM sync's job types and its process type.

`crm.sync` (a process): the driver `sync.fetch` walks the CRM's pages from the cursor kept in the process context
(initial: everything; delta: changed at or after the watermark, deletions included) and declares each page's
records as batches of at most 100 (`p<page>.<n>`: a re-run declares the same keys, so nothing counts twice). The
batch payload is the mapped records themselves (about 150 bytes each; a batch stays far below SQS's 256 KB), so a
batch never calls the CRM. It ends when the CRM says the list ended (`Page.next_cursor is None`), never on a short
page, and then declares the total. It continues through a checkpoint when its invocation runs short.
Each batch (`sync.apply`) upserts through notify.sync_contacts and records one outcome: created / updated /
deleted -> succeeded, unchanged (as new or newer already) -> skipped.
A rate limit defers the job (RetryLater with the CRM's delay: no attempt spent) and is recorded in the context.

`sync.record`: one record named by a webhook, fetched by id and upserted (the fetched record is the truth).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor import notify
from conveyor.connectors.base import ContactData
from conveyor.jobs.registry import Continue, JobContext, RetryPolicy, Scopes, job_type
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import PermanentError
from conveyor.processes import Tolerance, process_type
from conveyor.sync import repository
from conveyor.sync.crm import CrmHttp, RateLimited, connector_for
from conveyor.sync.domain import BATCH_SIZE, Connection, to_sourced

QUEUE = "sync"
SCOPES = Scopes(read="sync:read", write="sync:write")


class SyncParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=64)
    mode: str = Field(pattern="^(initial|delta)$")
    since: datetime | None = None
    started_at: datetime


class FetchPayload(BaseModel):
    process_id: str


class ApplyPayload(BaseModel):
    connection_id: str
    records: list[dict[str, Any]] = Field(max_length=BATCH_SIZE)


class RecordPayload(BaseModel):
    connection_id: str = Field(min_length=1, max_length=64)
    external_id: str = Field(min_length=1, max_length=128)


def _connection(tenant_id: str, connection_id: str) -> Connection:
    connection = repository.get(tenant_id, connection_id)
    if connection is None:
        raise PermanentError(f"connection {connection_id} no longer exists")
    return connection


def _process(ctx: JobContext) -> Any:
    if ctx.process is None:
        raise PermanentError("this job runs only as part of a crm.sync process (POST /v1/connections/{id}/sync)")
    return ctx.process


@job_type("sync.fetch", queue=QUEUE, payload=FetchPayload, retry=RetryPolicy(max_attempts=5), scopes=SCOPES)
def fetch(payload: FetchPayload, ctx: JobContext) -> dict[str, Any]:
    process = _process(ctx)
    params = SyncParams.model_validate(process.params)
    connection = _connection(ctx.tenant_id, params.connection_id)
    crm = connector_for(connection)
    http = CrmHttp(connection, crm)
    state = process.context
    cursor, page, fetched = state.get("cursor"), int(state.get("page", 0)), int(state.get("fetched", 0))
    max_seen = state.get("max_seen")
    requests_before = int(state.get("crm_requests", 0))
    if state.get("done"):
        process.fetch_done(expected_total=fetched)
        return {"records": fetched, "pages": page}
    while True:
        if ctx.remaining_seconds() < 10 or process.stopping():
            raise Continue({"page": page})  # the cursor is in the process context
        try:
            found = crm.list_page(http, cursor, params.since, crm.max_page_size)
        except RateLimited as limited:
            deferrals = int(state.get("rate_limited", 0)) + 1
            state = process.update_context(
                rate_limited=deferrals, last_rate_limit={"at": utcnow().isoformat(), "seconds": limited.seconds}
            )
            raise
        chunks = [found.records[i : i + BATCH_SIZE] for i in range(0, len(found.records), BATCH_SIZE)]
        if chunks:
            process.add_batches(
                [_apply_payload(connection.id, chunk) for chunk in chunks],
                key=f"p{page}",
                sizes=[len(chunk) for chunk in chunks],
            )
        newest = max((r.updated_at for r in found.records), default=None)
        max_seen = _later(max_seen, newest) if newest is not None else max_seen
        page, fetched, cursor = page + 1, fetched + len(found.records), found.next_cursor
        state = process.update_context(
            cursor=cursor,
            page=page,
            fetched=fetched,
            max_seen=max_seen,
            crm_requests=requests_before + http.requests,
            done=cursor is None,
        )
        if cursor is None:
            process.fetch_done(expected_total=fetched)
            return {"records": fetched, "pages": page}


def _later(current: str | None, candidate: datetime) -> str:
    if current is None or candidate > datetime.fromisoformat(current):
        return candidate.isoformat()
    return current


def _apply_payload(connection_id: str, records: list[ContactData]) -> dict[str, Any]:
    return {"connection_id": connection_id, "records": [r.as_json() for r in records]}


@job_type(
    "sync.apply",
    queue=QUEUE,
    payload=ApplyPayload,
    retry=RetryPolicy(max_attempts=5, base_seconds=5, cap_seconds=300),
    scopes=SCOPES,
)
def apply(payload: ApplyPayload, ctx: JobContext) -> dict[str, int]:
    process = _process(ctx)
    connection = _connection(ctx.tenant_id, payload.connection_id)
    records = [ContactData.from_json(r) for r in payload.records]
    outcomes = notify.sync_contacts(ctx.tenant_id, [to_sourced(connection, r) for r in records])
    tally = {kind: outcomes.count(kind) for kind in ("created", "updated", "deleted", "unchanged")}
    process.record(succeeded=tally["created"] + tally["updated"] + tally["deleted"], skipped=tally["unchanged"])
    return tally


@job_type(
    "sync.record",
    queue=QUEUE,
    payload=RecordPayload,
    retry=RetryPolicy(max_attempts=5, base_seconds=10, cap_seconds=600),
    scopes=SCOPES,
)
def record(payload: RecordPayload, ctx: JobContext) -> dict[str, str]:
    """A webhook's record: fetched by id (events arrive out of order; the CRM's current record is the truth)."""
    connection = _connection(ctx.tenant_id, payload.connection_id)
    crm = connector_for(connection)
    [current] = crm.get_many(CrmHttp(connection, crm), [payload.external_id])
    [outcome] = notify.sync_contacts(ctx.tenant_id, [to_sourced(connection, current)])
    return {"outcome": outcome}


SYNC = process_type(
    "crm.sync",
    params=SyncParams,
    driver="sync.fetch",
    batch="sync.apply",
    counter_shards=4,  # hundreds of batch commits per second on a big initial sync
    tolerance=Tolerance(percent=10),  # errors: completed_with_errors, and the watermark does not move
)

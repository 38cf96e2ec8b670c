"""CRM sync use cases: connections, starting and settling syncs, the schedule, webhooks. Every function takes the
caller's tenant (webhooks find theirs from the connection id); nothing crosses tenants.

A sync is a `crm.sync` process (conveyor.sync.jobs): its driver pages through the CRM and declares batches of at
most 100 records; each batch upserts its contacts through notify's public API. At most one sync runs per
connection: a conditional claim on the connection (`running`) is taken before the process starts and released
when it ends (`settle`, run by the scheduler's sweep and on every read of the connection).
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from conveyor import jobs, processes
from conveyor.connectors import REGISTRY, connector_class
from conveyor.platform.clock import Deadline, utcnow
from conveyor.platform.errors import BadRequest, InvalidInput, InvalidState, NotFound, Unauthorized
from conveyor.platform.ids import new_id
from conveyor.platform.observability import count, logger
from conveyor.platform.outbound import Blocked, DnsFailure, Policy, check_url
from conveyor.platform.settings import get_settings
from conveyor.sync import repository, vault
from conveyor.sync.domain import (
    CHECK_BACK,
    CLAIM_TIMEOUT,
    COALESCE_SECONDS,
    Connection,
    ConnectionState,
    RunState,
    SyncMode,
    SyncRun,
    next_watermark,
    run_state,
)

PROCESS_TYPE = "crm.sync"
RECORD_JOB = "sync.record"
COALESCE_DELAY_SECONDS = COALESCE_SECONDS  # the job waits this long, so the window's repeats join it
MAX_CONNECTIONS = 20  # per tenant


# --- connections ---------------------------------------------------------------------------------------------
def create_connection(
    tenant_id: str,
    *,
    connector: str,
    credentials: dict[str, Any],
    base_url: str | None,
    token_url: str | None,
    field_map: dict[str, str],
    schedule_minutes: int,
    default_timezone: str,
    default_region: str,
) -> tuple[Connection, str]:
    """A new connection and its webhook secret (returned once; for HubSpot OAuth apps it is the app's client
    secret, which HubSpot signs with)."""
    if connector not in REGISTRY:
        raise InvalidInput("unknown connector", fields=[{"loc": ["connector"], "msg": f"one of {sorted(REGISTRY)}"}])
    kind = connector_class(connector)
    auth = "oauth" if "refresh_token" in credentials else "api_token"
    if auth not in kind.auth_kinds:
        raise InvalidInput(
            f"{connector} connections need {' or '.join(kind.auth_kinds)} credentials",
            fields=[{"loc": ["credentials"], "msg": f"{connector} supports {', '.join(kind.auth_kinds)}"}],
        )
    base = (base_url or kind.default_base_url).rstrip("/")
    tokens = token_url or kind.default_token_url
    for name, url in (("base_url", base), ("token_url", tokens))[: 2 if auth == "oauth" else 1]:
        try:
            check_url(url, Policy(allow_private=get_settings().outbound_allow_private))
        except (Blocked, DnsFailure) as exc:
            raise InvalidInput(f"{name} cannot be reached: {exc}", fields=[{"loc": [name], "msg": str(exc)}]) from None
    if len(repository.list_connections(tenant_id)) >= MAX_CONNECTIONS:
        raise InvalidState(f"a tenant has at most {MAX_CONNECTIONS} connections")
    webhook_secret = credentials.get("webhook_secret") or (
        credentials["client_secret"] if connector == "hubspot" and auth == "oauth" else secrets.token_urlsafe(24)
    )
    now = utcnow()
    connection = Connection(
        id=new_id("con"),
        tenant_id=tenant_id,
        connector=connector,
        auth=auth,
        base_url=base,
        token_url=tokens,
        state=ConnectionState.ACTIVE,
        created_at=now,
        updated_at=now,
        schedule_minutes=schedule_minutes,
        default_timezone=default_timezone,
        default_region=default_region,
        field_map=field_map,
        next_delta_at=now + timedelta(minutes=schedule_minutes) if schedule_minutes else None,
    )
    sealed = vault.seal_credentials(tenant_id, connection.id, {**credentials, "webhook_secret": webhook_secret})
    repository.insert(connection, sealed)
    count("CrmConnectionsCreated", connector)
    return connection, webhook_secret


def require(tenant_id: str, connection_id: str) -> Connection:
    connection = repository.get(tenant_id, connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id!r} not found")
    return connection


def get_connection(tenant_id: str, connection_id: str) -> Connection:
    return settle(require(tenant_id, connection_id))


def list_connections(tenant_id: str) -> list[Connection]:
    return [settle(c) for c in repository.list_connections(tenant_id)]


def delete_connection(tenant_id: str, connection_id: str) -> None:
    """The connection, its credentials and its webhook route go; its contacts stay (they are the tenant's)."""
    connection = require(tenant_id, connection_id)
    if connection.running and not connection.running.startswith("claim:"):
        try:
            processes_cancel(tenant_id, connection.running)
        except (InvalidState, NotFound):
            pass
    repository.delete(connection)


def processes_cancel(tenant_id: str, process_id: str) -> None:
    from conveyor.processes import service as process_service  # the processes API's cancel

    process_service.cancel(tenant_id, process_id)


def runs(tenant_id: str, connection_id: str) -> list[SyncRun]:
    settle(require(tenant_id, connection_id))
    return repository.runs(tenant_id, connection_id)


def reauth_required(connection: Connection, reason: str) -> None:
    if repository.mark_reauth(connection, reason, utcnow()):
        count("CrmReauthRequired", connection.connector)
        logger.warning("CRM connection needs re-authorising", extra={"connection": connection.id})


# --- syncs -------------------------------------------------------------------------------------------------
def start_sync(tenant_id: str, connection_id: str, mode: SyncMode) -> str:
    """Start a sync of the connection (its process id). 409 while another sync of it runs."""
    connection = settle(require(tenant_id, connection_id))
    if connection.state is not ConnectionState.ACTIVE:
        raise InvalidState(
            f"connection is {connection.state.value}: authorise it again first", details={"state": connection.state}
        )
    now = utcnow()
    claim = f"claim:{new_id('clm')}"
    if connection.running or not repository.claim_sync(connection, claim, mode, now, stale=None):
        current = repository.get(tenant_id, connection_id)
        raise InvalidState(
            "a sync of this connection is running", details={"process_id": current.running if current else None}
        )
    since = connection.watermark if mode is SyncMode.DELTA else None
    params = {
        "connection_id": connection.id,
        "mode": mode.value,
        "since": since.isoformat() if since else None,
        "started_at": now.isoformat(),
    }
    try:
        process, _ = processes.start(
            tenant_id, processes.StartSpec(type=PROCESS_TYPE, params=params, name=f"{connection.connector} {mode} sync")
        )
    except BaseException:
        repository.release_claim(connection, claim)
        raise
    run = SyncRun(process.id, connection.id, mode, RunState.RUNNING, now, since=since)
    repository.set_running(connection, claim, run, now + CHECK_BACK)
    count("CrmSyncsStarted", connection.connector)
    return process.id


def settle(connection: Connection) -> Connection:
    """If the connection's sync has ended, free the connection (and move the watermark for a completed one)."""
    running = connection.running
    if not running:
        return connection
    now = utcnow()
    if running.startswith("claim:"):
        started = repository.get(connection.tenant_id, connection.id)
        if started is not None and started.running == running and _claim_age(connection, now) > CLAIM_TIMEOUT:
            repository.release_claim(connection, running)
            return repository.get(connection.tenant_id, connection.id) or connection
        return connection
    try:
        process = processes.require(connection.tenant_id, running, consistent=True)
    except NotFound:
        process = None
    state = RunState.FAILED if process is None else run_state(process.state.value)
    if state is None:
        return connection
    params = process.params if process else {}
    context = process.context if process else {}
    started_at = datetime.fromisoformat(params.get("started_at") or now.isoformat())
    max_seen = datetime.fromisoformat(context["max_seen"]) if context.get("max_seen") else None
    watermark = None
    if state is RunState.COMPLETED:
        watermark = next_watermark(connection.watermark, max_seen, started_at, connection.lookback)
    counts = {}
    if process is not None:
        c = process.counters
        counts = {"processed": c.processed, "succeeded": c.succeeded, "failed": c.failed, "skipped": c.skipped}
    run = SyncRun(
        running,
        connection.id,
        SyncMode(params.get("mode", "initial")),
        state,
        started_at,
        finished_at=now,
        counts=counts,
    )
    next_due = None
    if connection.schedule_minutes:
        next_due = max(started_at + timedelta(minutes=connection.schedule_minutes), now + CHECK_BACK)
    summary = {"process_id": running, "state": state.value, "finished_at": now.isoformat(), **counts}
    if repository.finish_sync(connection, run, watermark=watermark, next_due=next_due, now=now, summary=summary):
        count("CrmSyncsFinished", f"{connection.connector}:{state.value}")
    return repository.get(connection.tenant_id, connection.id) or connection


def _claim_age(connection: Connection, now: datetime) -> timedelta:
    return now - connection.updated_at


def run_schedules(now: datetime, deadline: Deadline) -> int:
    """The scheduler's sweep: settle connections whose sync may have ended, and start the scheduled deltas."""
    done = 0
    for tenant_id, connection_id in deadline.bounded(repository.due_connections(now)):
        connection = repository.get(tenant_id, connection_id)
        if connection is None:
            continue
        connection = settle(connection)
        if connection.running:
            repository.set_due(connection, now + CHECK_BACK)
            continue
        if connection.state is not ConnectionState.ACTIVE or not connection.schedule_minutes:
            repository.set_due(connection, None)
            continue
        if connection.next_delta_at and connection.next_delta_at > now:
            repository.set_due(connection, connection.next_delta_at)
            continue
        try:
            start_sync(tenant_id, connection_id, SyncMode.DELTA)
            done += 1
        except InvalidState:
            continue
    return done


# --- webhooks --------------------------------------------------------------------------------------------
def receive_webhook(connection_id: str, method: str, url: str, headers: dict[str, str], body: bytes) -> int:
    """Verify a CRM's webhook with its own scheme and enqueue one coalesced fetch per changed record (a repeat of
    the same record within COALESCE_SECONDS joins the same job). Returns how many records were enqueued."""
    from conveyor.sync.crm import connector_for, credentials

    tenant_id = repository.tenant_of(connection_id)
    connection = repository.get(tenant_id, connection_id) if tenant_id else None
    if tenant_id is None or connection is None:
        raise NotFound("no such connection")
    crm = connector_for(connection)
    secret = str(credentials(connection).get("webhook_secret") or "")
    if not secret or not crm.verify_webhook(method, url, headers, body, secret):
        count("CrmWebhooksRejected", connection.connector)
        raise Unauthorized("the webhook's signature or credentials do not verify")
    try:
        changes = crm.parse_webhook(body)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BadRequest("the webhook body is not the CRM's format") from None
    window = int(time.time() // COALESCE_SECONDS)
    seen: set[str] = set()
    for change in changes:
        if change.external_id in seen:
            continue
        seen.add(change.external_id)
        jobs.enqueue(
            tenant_id,
            jobs.NewJob(
                RECORD_JOB,
                payload={"connection_id": connection.id, "external_id": change.external_id},
                delay_seconds=COALESCE_DELAY_SECONDS or None,
            ),
            f"{connection.id}:{change.external_id}:{window}",
        )
    if seen:
        count("CrmWebhookChanges", connection.connector, len(seen))
    return len(seen)

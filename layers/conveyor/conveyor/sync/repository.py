"""CRM sync storage (template.yaml `SyncTable`), private to this capability; returns domain objects.

pk / sk:
  tenant#<t> / con#<id>              a connection: connector, where, mapping, schedule, watermark, the running sync
  tenant#<t> / con#<id>#secret       its credentials and OAuth access token, KMS-encrypted (sync.vault); the token
                                     lease (lease_owner, lease_until) and `version` (+1 on every rotation)
  tenant#<t> / con#<id>#run#<prc>    one sync run (initial / delta), newest last
  con#<id>   / route                 the tenant of a connection, for its webhook route (which has no API key)
GSI due-index (due_shard, due_at) sparse, KEYS_ONLY: connections carry due_at while the scheduler should look at
    them (the next scheduled delta, or a running sync's check-back), read shard by shard (platform.dynamo.due).

Every transition is one conditional write; the caller learns whether it won.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from conveyor.platform.dynamo import DueIndex, bind_to, conditional, due, shard_for
from conveyor.platform.settings import get_settings
from conveyor.sync.domain import Connection, ConnectionState, RunState, SyncMode, SyncRun


class _Item(Model):
    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ConnectionRecord(_Item):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute()
    connector = UnicodeAttribute()
    auth = UnicodeAttribute()
    base_url = UnicodeAttribute()
    token_url = UnicodeAttribute()
    state = UnicodeAttribute()
    schedule_minutes = NumberAttribute()
    default_timezone = UnicodeAttribute()
    default_region = UnicodeAttribute()
    field_map = JSONAttribute(default=dict)
    lookback_seconds = NumberAttribute()
    watermark = UTCDateTimeAttribute(null=True)
    running = UnicodeAttribute(null=True)
    running_mode = UnicodeAttribute(null=True)
    running_since = UTCDateTimeAttribute(null=True)
    next_delta_at = UTCDateTimeAttribute(null=True)
    reauth_reason = UnicodeAttribute(null=True)
    last_sync = JSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    due_index = DueIndex()


class SecretRecord(_Item):
    class Meta:
        table_name = None

    credentials = BinaryAttribute(legacy_encoding=False)  # KMS ciphertext of the credentials JSON
    access_token = BinaryAttribute(legacy_encoding=False, null=True)  # KMS ciphertext
    access_expires_at = UTCDateTimeAttribute(null=True)
    version = NumberAttribute(default=1)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)


class RunRecord(_Item):
    class Meta:
        table_name = None

    connection_id = UnicodeAttribute()
    mode = UnicodeAttribute()
    state = UnicodeAttribute()
    started_at = UTCDateTimeAttribute()
    since = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    counts = JSONAttribute(null=True)
    watermark_after = UTCDateTimeAttribute(null=True)


class RouteRecord(_Item):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute()


def _t(model: type[Any]) -> Any:
    return bind_to(model, get_settings().sync_table, "SYNC_TABLE")


def tenant_pk(tenant_id: str) -> str:
    return f"tenant#{tenant_id}"


def _get(model: type[Any], pk: str, sk: str, *, consistent: bool = True) -> Any:
    try:
        return _t(model).get(pk, sk, consistent_read=consistent)
    except DoesNotExist:
        return None


def _connection(record: ConnectionRecord) -> Connection:
    return Connection(
        id=record.sk.removeprefix("con#"),
        tenant_id=record.tenant_id,
        connector=record.connector,
        auth=record.auth,
        base_url=record.base_url,
        token_url=record.token_url,
        state=ConnectionState(record.state),
        created_at=record.created_at,
        updated_at=record.updated_at,
        schedule_minutes=int(record.schedule_minutes),
        default_timezone=record.default_timezone,
        default_region=record.default_region,
        field_map=dict(record.field_map or {}),
        lookback_seconds=int(record.lookback_seconds),
        watermark=record.watermark,
        running=record.running,
        running_mode=record.running_mode,
        next_delta_at=record.next_delta_at,
        reauth_reason=record.reauth_reason,
        last_sync=record.last_sync,
    )


# --- connections ---------------------------------------------------------------------------------------------
def insert(connection: Connection, credentials: bytes) -> None:
    model, secrets, routes = _t(ConnectionRecord), _t(SecretRecord), _t(RouteRecord)
    pk = tenant_pk(connection.tenant_id)
    record = model(
        pk,
        f"con#{connection.id}",
        tenant_id=connection.tenant_id,
        connector=connection.connector,
        auth=connection.auth,
        base_url=connection.base_url,
        token_url=connection.token_url,
        state=connection.state.value,
        schedule_minutes=connection.schedule_minutes,
        default_timezone=connection.default_timezone,
        default_region=connection.default_region,
        field_map=dict(connection.field_map),
        lookback_seconds=connection.lookback_seconds,
        next_delta_at=connection.next_delta_at,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )
    if connection.next_delta_at is not None:
        record.due_shard, record.due_at = shard_for(connection.id), int(connection.next_delta_at.timestamp())
    with TransactWrite(connection=model._get_connection().connection) as tx:
        tx.save(record, condition=model.sk.does_not_exist())
        tx.save(secrets(pk, f"con#{connection.id}#secret", credentials=credentials, version=1))
        tx.save(routes(f"con#{connection.id}", "route", tenant_id=connection.tenant_id))


def get(tenant_id: str, connection_id: str, *, consistent: bool = True) -> Connection | None:
    record = _get(ConnectionRecord, tenant_pk(tenant_id), f"con#{connection_id}", consistent=consistent)
    return _connection(record) if record else None


def tenant_of(connection_id: str) -> str | None:
    record = _get(RouteRecord, f"con#{connection_id}", "route", consistent=False)
    return record.tenant_id if record else None


def list_connections(tenant_id: str) -> list[Connection]:
    model = _t(ConnectionRecord)
    found = model.query(tenant_pk(tenant_id), model.sk.startswith("con#"))
    return [_connection(r) for r in found if r.sk.count("#") == 1]


def delete(connection: Connection) -> None:
    pk = tenant_pk(connection.tenant_id)
    for model, key in (
        (ConnectionRecord, (pk, f"con#{connection.id}")),
        (SecretRecord, (pk, f"con#{connection.id}#secret")),
        (RouteRecord, (f"con#{connection.id}", "route")),
    ):
        _t(model)(*key).delete()


def due_connections(now: datetime) -> list[tuple[str, str]]:
    """(tenant, connection id) of connections the scheduler should look at by `now`."""
    model = _t(ConnectionRecord)
    found = []
    for key in due(model.due_index, now):
        record = _get(ConnectionRecord, key.pk, key.sk)
        if record is not None:
            found.append((record.tenant_id, record.sk.removeprefix("con#")))
    return found


def set_due(connection: Connection, at: datetime | None) -> None:
    model = _t(ConnectionRecord)
    record = model(tenant_pk(connection.tenant_id), f"con#{connection.id}")
    actions = (
        [model.due_shard.set(shard_for(connection.id)), model.due_at.set(int(at.timestamp()))]
        if at
        else [model.due_shard.remove(), model.due_at.remove()]
    )
    conditional(lambda: record.update(actions=actions, condition=model.sk.exists()))


# --- the one running sync per connection ----------------------------------------------------------------------
def claim_sync(connection: Connection, claim: str, mode: SyncMode, now: datetime, *, stale: str | None) -> bool:
    """Only while no sync runs (or the one named `stale`, found finished, is replaced)."""
    model = _t(ConnectionRecord)
    record = model(tenant_pk(connection.tenant_id), f"con#{connection.id}")
    condition = model.sk.exists() & (model.running.does_not_exist() if stale is None else model.running == stale)
    return conditional(
        lambda: record.update(
            actions=[
                model.running.set(claim),
                model.running_mode.set(mode.value),
                model.running_since.set(now),
                model.updated_at.set(now),
            ],
            condition=condition,
        )
    )


def set_running(connection: Connection, claim: str, run: SyncRun, check_back: datetime) -> bool:
    """The claim becomes the running sync: its run record, then the connection (conditional on the claim)."""
    model, runs = _t(ConnectionRecord), _t(RunRecord)
    pk = tenant_pk(connection.tenant_id)
    runs(
        pk,
        f"con#{connection.id}#run#{run.process_id}",
        connection_id=connection.id,
        mode=run.mode.value,
        state=run.state.value,
        started_at=run.started_at,
        since=run.since,
    ).save()
    record = model(pk, f"con#{connection.id}")
    return conditional(
        lambda: record.update(
            actions=[
                model.running.set(run.process_id),
                model.due_shard.set(shard_for(connection.id)),
                model.due_at.set(int(check_back.timestamp())),
            ],
            condition=model.running == claim,
        )
    )


def release_claim(connection: Connection, claim: str) -> bool:
    model = _t(ConnectionRecord)
    record = model(tenant_pk(connection.tenant_id), f"con#{connection.id}")
    return conditional(
        lambda: record.update(
            actions=[model.running.remove(), model.running_mode.remove(), model.running_since.remove()],
            condition=model.running == claim,
        )
    )


def finish_sync(
    connection: Connection,
    run: SyncRun,
    *,
    watermark: datetime | None,
    next_due: datetime | None,
    now: datetime,
    summary: dict[str, Any],
) -> bool:
    """The running sync ended: the connection is free again (and its watermark moved, for a completed one); then
    its run record says how it ended. Only the caller that frees the connection writes either (True)."""
    model, runs = _t(ConnectionRecord), _t(RunRecord)
    pk = tenant_pk(connection.tenant_id)
    record = model(pk, f"con#{connection.id}")
    actions = [
        model.running.remove(),
        model.running_mode.remove(),
        model.running_since.remove(),
        model.last_sync.set(summary),
        model.updated_at.set(now),
    ]
    if watermark is not None:
        actions.append(model.watermark.set(watermark))
    if next_due is not None:
        actions += [
            model.next_delta_at.set(next_due),
            model.due_shard.set(shard_for(connection.id)),
            model.due_at.set(int(next_due.timestamp())),
        ]
    else:
        actions += [model.due_shard.remove(), model.due_at.remove()]
    if not conditional(lambda: record.update(actions=actions, condition=model.running == run.process_id)):
        return False  # settled by another caller
    run_actions = [runs.state.set(run.state.value), runs.finished_at.set(run.finished_at), runs.counts.set(run.counts)]
    if watermark is not None:
        run_actions.append(runs.watermark_after.set(watermark))
    run_record = runs(pk, f"con#{connection.id}#run#{run.process_id}")
    conditional(lambda: run_record.update(actions=run_actions, condition=runs.state == RunState.RUNNING.value))
    return True


def runs(tenant_id: str, connection_id: str, limit: int = 50) -> list[SyncRun]:
    model = _t(RunRecord)
    found = model.query(
        tenant_pk(tenant_id), model.sk.startswith(f"con#{connection_id}#run#"), scan_index_forward=False, limit=limit
    )
    return [
        SyncRun(
            process_id=r.sk.rsplit("#", 1)[-1],
            connection_id=r.connection_id,
            mode=SyncMode(r.mode),
            state=RunState(r.state),
            started_at=r.started_at,
            since=r.since,
            finished_at=r.finished_at,
            counts=r.counts,
            watermark_after=r.watermark_after,
        )
        for r in found
    ]


def mark_reauth(connection: Connection, reason: str, now: datetime) -> bool:
    model = _t(ConnectionRecord)
    record = model(tenant_pk(connection.tenant_id), f"con#{connection.id}")
    return conditional(
        lambda: record.update(
            actions=[
                model.state.set(ConnectionState.REAUTH_REQUIRED.value),
                model.reauth_reason.set(reason[:300]),
                model.updated_at.set(now),
            ],
            condition=model.state == ConnectionState.ACTIVE.value,
        )
    )


# --- credentials and the token lease --------------------------------------------------------------------------
class Secret:
    """A connection's stored secret item (ciphertexts only)."""

    def __init__(self, record: SecretRecord) -> None:
        self.credentials: bytes = bytes(record.credentials)
        self.access_token: bytes | None = bytes(record.access_token) if record.access_token else None
        self.access_expires_at: datetime | None = record.access_expires_at
        self.version: int = int(record.version)
        self.lease_owner: str | None = record.lease_owner
        self.lease_until: float | None = record.lease_until


def get_secret(connection: Connection) -> Secret | None:
    record = _get(SecretRecord, tenant_pk(connection.tenant_id), f"con#{connection.id}#secret")
    return Secret(record) if record else None


def _secret_record(connection: Connection) -> Any:
    return _t(SecretRecord)(tenant_pk(connection.tenant_id), f"con#{connection.id}#secret")


def take_lease(connection: Connection, version: int, owner: str, now: float, seconds: int) -> bool:
    """The right to refresh: only for the version read, only when no live lease is held (one refresh at a time)."""
    model = _t(SecretRecord)
    condition = (model.version == version) & (model.lease_until.does_not_exist() | (model.lease_until < now))
    return conditional(
        lambda: _secret_record(connection).update(
            actions=[model.lease_owner.set(owner), model.lease_until.set(now + seconds)], condition=condition
        )
    )


def store_grant(
    connection: Connection,
    version: int,
    owner: str,
    *,
    access_token: bytes,
    expires_at: datetime,
    credentials: bytes | None,
) -> bool:
    """The refresh's result, only by the lease's owner on the version it read; the lease is released."""
    model = _t(SecretRecord)
    actions = [
        model.access_token.set(access_token),
        model.access_expires_at.set(expires_at),
        model.version.set(version + 1),
        model.lease_owner.remove(),
        model.lease_until.remove(),
    ]
    if credentials is not None:
        actions.append(model.credentials.set(credentials))
    return conditional(
        lambda: _secret_record(connection).update(
            actions=actions, condition=(model.version == version) & (model.lease_owner == owner)
        )
    )


def release_lease(connection: Connection, owner: str) -> bool:
    model = _t(SecretRecord)
    return conditional(
        lambda: _secret_record(connection).update(
            actions=[model.lease_owner.remove(), model.lease_until.remove()], condition=model.lease_owner == owner
        )
    )

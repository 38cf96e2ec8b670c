"""Notify's storage: contacts, delivery logs and in-app feed items. The items share the reminders table
(template.yaml `RemindersTable`) physically; only this module reads or writes them.

pk tenant_id, sk:
  contact#<id>                 a contact (channels, addresses, time zone, quiet hours, opt-outs)
  dlv#<job id>                 the delivery log of one notification.send job: its attempts, delivered once
  notif#<contact>#ntf_<ULID>   an in-app feed item (ULID of the job that sent it: newest first)
expires_at: TTL for delivery logs and feed items.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from conveyor.notify.domain import Attempt, Contact, Delivery, FeedItem
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import CompactJSONAttribute, bind_to, conditional, expires_at, start_key
from conveyor.platform.settings import get_settings

RETENTION = timedelta(days=90)  # delivery logs and feed items age out after this


class _Item(Model):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class _ContactRecord(_Item):
    class Meta:
        table_name = None

    name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    timezone = UnicodeAttribute()
    channels = ListAttribute(of=UnicodeAttribute)
    opted_out = ListAttribute(of=UnicodeAttribute, default=list)
    quiet_start = UnicodeAttribute(null=True)
    quiet_end = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class _Attempt(MapAttribute):
    channel = UnicodeAttribute()
    status = UnicodeAttribute()
    provider_message_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()


class _DeliveryLogRecord(_Item):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute(null=True)
    attempts = ListAttribute(of=_Attempt, default=list)
    delivered_via = UnicodeAttribute(null=True)
    provider_message_id = UnicodeAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class _FeedItemRecord(_Item):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute()
    title = UnicodeAttribute()
    body = UnicodeAttribute()
    source = CompactJSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    read_at = UTCDateTimeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


def _table(model: type[Any]) -> Any:
    """A model bound to the table named by settings."""
    return bind_to(model, get_settings().reminders_table, "REMINDERS_TABLE")


def _get(model: type[Any], tenant_id: str, sk: str, *, consistent: bool = False) -> Any:
    try:
        return _table(model).get(tenant_id, sk, consistent_read=consistent)
    except DoesNotExist:
        return None


# --- contacts ------------------------------------------------------------------------------------------
def contact_key(contact_id: str) -> str:
    return f"contact#{contact_id}"


def _contact(record: _ContactRecord) -> Contact:
    return Contact(
        tenant_id=record.tenant_id,
        id=record.sk.removeprefix("contact#"),
        name=record.name,
        timezone=record.timezone,
        channels=tuple(record.channels),
        created_at=record.created_at,
        updated_at=record.updated_at,
        email=record.email,
        phone=record.phone,
        opted_out=tuple(record.opted_out or ()),
        quiet_start=record.quiet_start,
        quiet_end=record.quiet_end,
    )


def get_contact(tenant_id: str, contact_id: str, *, consistent: bool = False) -> Contact | None:
    record = _get(_ContactRecord, tenant_id, contact_key(contact_id), consistent=consistent)
    return _contact(record) if record else None


def put_contact(contact: Contact, *, replaces: Contact | None) -> bool:
    """Create (`replaces` None: only if absent) or replace (only if unchanged since `replaces` was read)."""
    model = _table(_ContactRecord)
    record = model(
        contact.tenant_id,
        contact_key(contact.id),
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        timezone=contact.timezone,
        channels=list(contact.channels),
        opted_out=list(contact.opted_out),
        quiet_start=contact.quiet_start,
        quiet_end=contact.quiet_end,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )
    expected = model.sk.does_not_exist() if replaces is None else (model.updated_at == replaces.updated_at)
    return conditional(lambda: record.save(condition=expected))


# --- delivery logs -------------------------------------------------------------------------------------
def _delivery_key(job_id: str) -> str:
    return f"dlv#{job_id}"


def get_delivery(tenant_id: str, job_id: str) -> Delivery:
    """What earlier attempts of this job recorded (nothing, for its first)."""
    record = _get(_DeliveryLogRecord, tenant_id, _delivery_key(job_id), consistent=True)
    if record is None:
        return Delivery()
    attempts = tuple(Attempt(a.channel, a.status, a.at, a.detail, a.provider_message_id) for a in record.attempts or [])
    return Delivery(attempts, record.delivered_via, record.provider_message_id)


def record_attempts(
    tenant_id: str, job_id: str, contact_id: str, attempts: list[Attempt], *, delivered: Attempt | None = None
) -> bool:
    """Append attempts to the job's delivery log; with `delivered`, also mark it delivered, once (a retried job
    never re-sends: False if it was marked already)."""
    model = _table(_DeliveryLogRecord)
    now = utcnow()
    entries = [
        _Attempt(
            channel=a.channel, status=a.status, provider_message_id=a.provider_message_id, detail=a.detail, at=a.at
        )
        for a in attempts
    ]
    actions = [model.contact_id.set(contact_id), model.expires_at.set(expires_at(now, RETENTION))]
    if entries:
        actions.append(model.attempts.set((model.attempts | []).append(entries)))
    condition = None
    if delivered is not None:
        actions += [
            model.delivered_via.set(delivered.channel),
            model.delivered_at.set(delivered.at),
            model.provider_message_id.set(delivered.provider_message_id),
        ]
        condition = model.delivered_via.does_not_exist()
    record = model(tenant_id, _delivery_key(job_id))
    return conditional(lambda: record.update(actions=actions, condition=condition))


# --- the in-app feed -----------------------------------------------------------------------------------
def _feed_prefix(contact_id: str) -> str:
    return f"notif#{contact_id}#"


def _feed_item(record: _FeedItemRecord) -> FeedItem:
    return FeedItem(
        id=record.sk.rsplit("#", 1)[-1],
        contact_id=record.contact_id,
        title=record.title,
        body=record.body,
        created_at=record.created_at,
        source=record.source,
        read_at=record.read_at,
    )


def add_feed_item(tenant_id: str, item: FeedItem, now: datetime) -> bool:
    """Write a feed item once: False if it exists (an earlier try of the same job wrote it)."""
    model = _table(_FeedItemRecord)
    record = model(
        tenant_id,
        _feed_prefix(item.contact_id) + item.id,
        contact_id=item.contact_id,
        title=item.title,
        body=item.body,
        source=item.source,
        created_at=item.created_at,
        expires_at=expires_at(now, RETENTION),
    )
    return conditional(lambda: record.save(condition=model.sk.does_not_exist()))


def feed(tenant_id: str, contact_id: str, *, limit: int, after: str | None) -> tuple[list[FeedItem], str | None]:
    """A contact's feed, newest first; `after` is the last item id seen. Returns the page and its last id."""
    model = _table(_FeedItemRecord)
    prefix = _feed_prefix(contact_id)
    results = model.query(
        tenant_id,
        model.sk.startswith(prefix),
        scan_index_forward=False,
        limit=limit,
        page_size=min(limit, 100),
        last_evaluated_key=start_key(tenant_id, prefix + after) if after else None,
    )
    items = [_feed_item(r) for r in results]
    last = results.last_evaluated_key
    return items, (last["sk"]["S"].rsplit("#", 1)[-1] if last else None)


def mark_read(tenant_id: str, contact_id: str, item_id: str, now: datetime) -> FeedItem | None:
    """Mark a feed item read (the first time counts); None if there is no such item."""
    model = _table(_FeedItemRecord)
    record = model(tenant_id, _feed_prefix(contact_id) + item_id)
    if not conditional(
        lambda: record.update(actions=[model.read_at.set(model.read_at | now)], condition=model.sk.exists())
    ):
        return None
    return _feed_item(record)

"""Reminder storage: one single-table design (template.yaml `RemindersTable`), every state change conditional.

pk tenant_id, sk:
  contact#<id>                          a contact (channels, addresses, time zone, quiet hours, opt-outs)
  appt#<id>                             an appointment; `revision` grows when its reminders must be re-planned
  med#<id>                              a medication schedule; `horizon_end` = doses planned up to here
  policy                                the tenant's reminder policy (absent = defaults)
  rem#appt#<appt>#<rev>#<lead>          a reminder; deterministic, so planning twice never makes two
  rem#med#<med>#<rev>#<YYYYmmddTHHMMZ>
  dlv#<job id>                          the delivery log of an ad-hoc notification job
  notif#<contact>#ntf_<ULID>            an in-app feed item (ULID of the job that sent it: newest first)
GSI due-index (due_shard, due_at) sparse, KEYS_ONLY: pending reminders, and medication schedules whose
    horizon must roll forward. Sharded like the jobs table's, so no partition gets hot.
GSI time-index (tenant_id, remind_at) sparse, ALL: reminders by send time, for GET /v1/reminders.
expires_at: TTL for finished reminders, delivery logs and feed items.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import CompactJSONAttribute, DueIndex, bind, due, shard_for
from conveyor.platform.settings import SettingsError, get_settings

RETENTION = timedelta(days=90)  # finished reminders, delivery logs and feed items age out after this

# Reminder states. pending: waiting in the due index; queued: a notification.send job exists for it.
PENDING, QUEUED, SENT, FAILED, SKIPPED, EXPIRED, CANCELLED = (
    "pending",
    "queued",
    "sent",
    "failed",
    "skipped",
    "expired",
    "cancelled",
)
REMINDER_STATES = (PENDING, QUEUED, SENT, FAILED, SKIPPED, EXPIRED, CANCELLED)
OPEN = (PENDING, QUEUED)


def _ttl(now: datetime) -> int:
    return int((now + RETENTION).timestamp())


class TimeIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "time-index"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    remind_at = NumberAttribute(range_key=True)


class _Item(Model):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ContactRecord(_Item):
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


class AppointmentRecord(_Item):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute()
    subject_name = UnicodeAttribute()
    starts_at = UTCDateTimeAttribute()
    location = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    revision = NumberAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class MedicationRecord(_Item):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute()
    medication = UnicodeAttribute()
    dose = UnicodeAttribute()
    times_of_day = ListAttribute(of=UnicodeAttribute, null=True)
    every_hours = NumberAttribute(null=True)
    start_time = UnicodeAttribute(null=True)
    start_date = UnicodeAttribute()
    end_date = UnicodeAttribute(null=True)
    timezone = UnicodeAttribute()  # the contact's zone the doses were planned in
    revision = NumberAttribute()
    fingerprint = UnicodeAttribute()
    horizon_end = UTCDateTimeAttribute()
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    due_index = DueIndex()


class PolicyRecord(_Item):
    class Meta:
        table_name = None

    lead_times = ListAttribute(of=UnicodeAttribute)
    templates = MapAttribute()
    updated_at = UTCDateTimeAttribute()


class Attempt(MapAttribute):
    channel = UnicodeAttribute()
    status = UnicodeAttribute()  # sent | failed | skipped | error (transient: the job retries)
    provider_message_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()


class _Delivery(_Item):
    """What notification.send records, per channel, on the item it delivers (a reminder or a delivery log)."""

    class Meta:
        table_name = None

    attempts = ListAttribute(of=Attempt, default=list)
    delivered_via = UnicodeAttribute(null=True)
    provider_message_id = UnicodeAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)


class ReminderRecord(_Delivery):
    class Meta:
        table_name = None

    kind = UnicodeAttribute()  # appointment | medication
    source_id = UnicodeAttribute()
    revision = NumberAttribute()
    contact_id = UnicodeAttribute()
    template = UnicodeAttribute()
    lead_time = UnicodeAttribute(null=True)  # appointment reminders
    dose_at = UTCDateTimeAttribute(null=True)  # medication reminders
    planned_at = UTCDateTimeAttribute()  # by the rule, before quiet hours
    remind_at = NumberAttribute()  # when it goes out (epoch seconds); the time-index key
    state = UnicodeAttribute()
    note = UnicodeAttribute(null=True)
    job_id = UnicodeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute(null=True)

    due_index = DueIndex()
    time_index = TimeIndex()

    @property
    def id(self) -> str:
        return self.sk.removeprefix("rem#")


class DeliveryLogRecord(_Delivery):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)


class FeedItemRecord(_Item):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute()
    title = UnicodeAttribute()
    body = UnicodeAttribute()
    source = CompactJSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    read_at = UTCDateTimeAttribute(null=True)
    expires_at = NumberAttribute(null=True)

    @property
    def id(self) -> str:
        return self.sk.rsplit("#", 1)[-1]


def table(model: type[Model]) -> Any:
    """A model bound to the reminders table named by settings."""
    name = get_settings().reminders_table
    if not name:
        raise SettingsError("invalid environment: REMINDERS_TABLE is not set (template.yaml's Globals give it)")
    return bind(model, name)


# --- keys ----------------------------------------------------------------------------------------------
def contact_key(contact_id: str) -> str:
    return f"contact#{contact_id}"


def appointment_key(appointment_id: str) -> str:
    return f"appt#{appointment_id}"


def medication_key(schedule_id: str) -> str:
    return f"med#{schedule_id}"


POLICY_KEY = "policy"


def appointment_reminders_prefix(appointment_id: str) -> str:
    return f"rem#appt#{appointment_id}#"


def medication_reminders_prefix(schedule_id: str) -> str:
    return f"rem#med#{schedule_id}#"


def appointment_reminder_key(appointment_id: str, revision: int, lead: str) -> str:
    return f"{appointment_reminders_prefix(appointment_id)}{revision:06d}#{lead}"


def medication_reminder_key(schedule_id: str, revision: int, dose_at: datetime) -> str:
    return f"{medication_reminders_prefix(schedule_id)}{revision:06d}#{dose_at.astimezone(UTC):%Y%m%dT%H%MZ}"


def feed_prefix(contact_id: str) -> str:
    return f"notif#{contact_id}#"


def due_shard(tenant_id: str, sk: str) -> str:
    return shard_for(f"{tenant_id}/{sk}")


# --- generic reads and writes --------------------------------------------------------------------------
def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def get(model: type[Model], tenant_id: str, sk: str, *, consistent: bool = False) -> Any:
    try:
        return table(model).get(tenant_id, sk, consistent_read=consistent)
    except DoesNotExist:
        return None


def put(item: Model, condition: Any = None) -> bool:
    """Save `item`; False when `condition` does not hold (the item changed or exists)."""
    table(type(item))
    try:
        item.save(condition=condition)
    except PutError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def update(item: Model, actions: list[Any], condition: Any = None) -> bool:
    """Apply a conditional update; False when the item is not in the expected state."""
    table(type(item))
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def delete(item: Model, condition: Any = None) -> bool:
    table(type(item))
    try:
        item.delete(condition=condition)
    except DeleteError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def query_prefix(
    model: type[Model],
    tenant_id: str,
    prefix: str,
    *,
    newest_first: bool = False,
    limit: int | None = None,
    after: str | None = None,
) -> tuple[list[Any], str | None]:
    """Items of one tenant whose sort key starts with `prefix`; `after` is the last sort key already seen."""
    bound = table(model)
    results = bound.query(
        tenant_id,
        bound.sk.startswith(prefix),
        scan_index_forward=not newest_first,
        limit=limit,
        page_size=min(limit, 100) if limit else None,
        last_evaluated_key={"tenant_id": {"S": tenant_id}, "sk": {"S": after}} if after else None,
    )
    items = list(results)
    last = results.last_evaluated_key if limit else None
    return items, (last["sk"]["S"] if last else None)


# --- reminders -----------------------------------------------------------------------------------------
def insert_reminder(reminder: ReminderRecord) -> bool:
    """Create a reminder unless it exists (any state): planning is idempotent. It waits in the due index."""
    reminder.state = PENDING
    reminder.due_shard = due_shard(reminder.tenant_id, reminder.sk)
    reminder.due_at = reminder.remind_at
    return put(reminder, table(ReminderRecord).sk.does_not_exist())


def close_reminder(
    reminder: ReminderRecord,
    state: str,
    note: str | None,
    *,
    expect: tuple[str, ...] = OPEN,
    now: datetime | None = None,
) -> bool:
    """pending/queued -> cancelled | expired | skipped | failed: leaves the due index, ages out later."""
    model = table(ReminderRecord)
    now = now or utcnow()
    return update(
        reminder,
        [
            model.state.set(state),
            model.note.set(note[:500] if note else None),
            model.updated_at.set(now),
            model.expires_at.set(_ttl(now)),
            model.due_shard.remove(),
            model.due_at.remove(),
        ],
        model.state.is_in(*expect),
    )


def reschedule_reminder(reminder: ReminderRecord, remind_at: int, note: str) -> bool:
    """A pending reminder moves to a new send time (quiet hours), only if nobody else touched it meanwhile."""
    model = table(ReminderRecord)
    return update(
        reminder,
        [
            model.remind_at.set(remind_at),
            model.due_at.set(remind_at),
            model.note.set(note),
            model.updated_at.set(utcnow()),
        ],
        (model.state == PENDING) & (model.due_at == reminder.due_at),
    )


def mark_queued(reminder: ReminderRecord, job_id: str, due_at: int) -> bool:
    """pending -> queued once: overlapping sweeps race on this condition and only one wins."""
    model = table(ReminderRecord)
    return update(
        reminder,
        [
            model.state.set(QUEUED),
            model.job_id.set(job_id),
            model.updated_at.set(utcnow()),
            model.due_shard.remove(),
            model.due_at.remove(),
        ],
        (model.state == PENDING) & (model.due_at == due_at),
    )


def due_keys(now: datetime) -> Iterator[tuple[str, str, int]]:
    """(tenant_id, sk, due_at) of every item due by `now` (reminders and horizons), across all shards."""
    for item in due(table(ReminderRecord).due_index, now):
        yield item.tenant_id, item.sk, int(item.due_at)


def reminders_between(
    tenant_id: str, start: datetime, end: datetime, *, state: str | None, limit: int, after: dict[str, Any] | None
) -> tuple[list[ReminderRecord], dict[str, Any] | None]:
    """A tenant's reminders by send time (time-index), optionally in one state; `after` is a page's last key."""
    model = table(ReminderRecord)
    results = model.time_index.query(
        tenant_id,
        model.remind_at.between(int(start.timestamp()), int(end.timestamp())),
        filter_condition=(model.state == state) if state else None,
        limit=limit,
        page_size=max(limit, 100),
        last_evaluated_key=after,
    )
    items = list(results)
    return items, results.last_evaluated_key


def last_reminder_revision(tenant_id: str, prefix: str) -> int:
    """The highest revision among a source's reminders (0: none). Keys sort by revision, so one item is read."""
    items, _ = query_prefix(ReminderRecord, tenant_id, prefix, newest_first=True, limit=1)
    return int(items[0].revision) if items else 0


def open_reminders(tenant_id: str, prefix: str) -> list[ReminderRecord]:
    """The pending or queued reminders under a source's prefix (an appointment's or a schedule's)."""
    model = table(ReminderRecord)
    return list(model.query(tenant_id, model.sk.startswith(prefix), filter_condition=model.state.is_in(*OPEN)))


# --- delivery records (reminders and ad-hoc delivery logs) ---------------------------------------------
def record_attempts(
    item: _Delivery, attempts: list[Attempt], *, delivered: Attempt | None = None, extra: list[Any] | None = None
) -> bool:
    """Append attempts; with `delivered`, also mark the item delivered, once (a retried job never re-sends)."""
    model = table(type(item))
    actions = [model.attempts.set((model.attempts | []).append(attempts))] if attempts else []
    condition = None
    if delivered is not None:
        actions += [
            model.delivered_via.set(delivered.channel),
            model.delivered_at.set(delivered.at),
            model.provider_message_id.set(delivered.provider_message_id),
        ]
        condition = model.delivered_via.does_not_exist()
    actions += extra or []
    if not actions:
        return True
    return update(item, actions, condition)

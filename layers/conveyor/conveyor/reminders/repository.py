"""Reminders' storage: PynamoDB models private to this module, every state change a named conditional write,
domain objects (conveyor.reminders.domain) in and out. Single-table (template.yaml `RemindersTable`), shared
physically with notify, whose items (contacts, delivery logs, feed items) only notify's repository touches.

pk tenant_id, sk:
  appt#<id>                             an appointment; `revision` grows when its reminders must be re-planned
  med#<id>                              a medication schedule; `horizon_end` = doses planned up to here
  policy                                the tenant's reminder policy (absent = defaults)
  rem#appt#<appt>#<rev>#<lead>          a reminder; deterministic, so planning twice never makes two
  rem#med#<med>#<rev>#<YYYYmmddTHHMMZ>
GSI due-index (due_shard, due_at) sparse, KEYS_ONLY: pending reminders, and medication schedules whose
    horizon must roll forward (conveyor.platform.dynamo.DueIndex, sharded like the jobs table's).
GSI time-index (tenant_id, remind_at) sparse, ALL: reminders by send time, for GET /v1/reminders.
expires_at: TTL for finished reminders.
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
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from conveyor.notify import Attempt
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import (
    DueIndex,
    TenantItem,
    bind_to,
    conditional,
    due,
    expires_at,
    filtered_page,
    get_or_none,
    save_if,
    shard_for,
    string_list,
    update_if,
)
from conveyor.platform.settings import get_settings
from conveyor.reminders.domain import (
    DEFAULT_TEMPLATES,
    OPEN,
    Appointment,
    Medication,
    Reminder,
    ReminderState,
    Rules,
)

RETENTION = timedelta(days=90)  # finished reminders age out after this
POLICY_KEY = "policy"


class _TimeIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "time-index"
        projection = AllProjection()

    tenant_id = UnicodeAttribute(hash_key=True)
    remind_at = NumberAttribute(range_key=True)


class _AppointmentRecord(TenantItem):
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


class _MedicationRecord(TenantItem):
    class Meta:
        table_name = None

    contact_id = UnicodeAttribute()
    medication = UnicodeAttribute()
    dose = UnicodeAttribute()
    times_of_day = string_list(null=True)
    every_hours = NumberAttribute(null=True)
    start_time = UnicodeAttribute(null=True)
    start_date = UnicodeAttribute()
    end_date = UnicodeAttribute(null=True)
    timezone = UnicodeAttribute()
    revision = NumberAttribute()
    fingerprint = UnicodeAttribute()
    horizon_end = UTCDateTimeAttribute()
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    due_index = DueIndex()


class _PolicyRecord(TenantItem):
    class Meta:
        table_name = None

    lead_times = string_list()
    templates: MapAttribute[str, Any] = MapAttribute()
    updated_at = UTCDateTimeAttribute()


class _Attempt(MapAttribute):
    channel = UnicodeAttribute()
    status = UnicodeAttribute()  # sent | failed | skipped | error
    provider_message_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()


class _ReminderRecord(TenantItem):
    class Meta:
        table_name = None

    kind = UnicodeAttribute()
    source_id = UnicodeAttribute()
    revision = NumberAttribute()
    contact_id = UnicodeAttribute()
    template = UnicodeAttribute()
    lead_time = UnicodeAttribute(null=True)
    dose_at = UTCDateTimeAttribute(null=True)
    planned_at = UTCDateTimeAttribute()
    remind_at = NumberAttribute()
    state = UnicodeAttribute()
    note = UnicodeAttribute(null=True)
    job_id = UnicodeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    attempts = ListAttribute(of=_Attempt, default=list)  # the delivery's attempts, copied when it settles
    delivered_via = UnicodeAttribute(null=True)
    provider_message_id = UnicodeAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute(null=True)

    due_index = DueIndex()
    time_index = _TimeIndex()


def _table(model: type[Any]) -> Any:
    """A model bound to the reminders table named by settings."""
    return bind_to(model, get_settings().reminders_table, "REMINDERS_TABLE")


def _get(model: type[Any], tenant_id: str, sk: str, *, consistent: bool = False) -> Any:
    return get_or_none(_table(model), tenant_id, sk, consistent=consistent)


def _unchanged(model: Any, replaces: Any) -> Any:
    """Create only if absent; replace only if nobody changed the item since `replaces` was read."""
    return model.sk.does_not_exist() if replaces is None else (model.updated_at == replaces.updated_at)


def _due_shard(tenant_id: str, sk: str) -> str:
    return shard_for(f"{tenant_id}/{sk}")


# --- keys ----------------------------------------------------------------------------------------------
def appointment_key(appointment_id: str) -> str:
    return f"appt#{appointment_id}"


def medication_key(schedule_id: str) -> str:
    return f"med#{schedule_id}"


def appointment_reminders_prefix(appointment_id: str) -> str:
    return f"rem#appt#{appointment_id}#"


def medication_reminders_prefix(schedule_id: str) -> str:
    return f"rem#med#{schedule_id}#"


def appointment_reminder_key(appointment_id: str, revision: int, lead: str) -> str:
    return f"{appointment_reminders_prefix(appointment_id)}{revision:06d}#{lead}"


def medication_reminder_key(schedule_id: str, revision: int, dose_at: datetime) -> str:
    return f"{medication_reminders_prefix(schedule_id)}{revision:06d}#{dose_at.astimezone(UTC):%Y%m%dT%H%MZ}"


# --- appointments --------------------------------------------------------------------------------------
def _appointment(r: _AppointmentRecord) -> Appointment:
    return Appointment(
        tenant_id=r.tenant_id,
        id=r.sk.removeprefix("appt#"),
        contact_id=r.contact_id,
        subject_name=r.subject_name,
        starts_at=r.starts_at,
        status=r.status,
        revision=int(r.revision),
        created_at=r.created_at,
        updated_at=r.updated_at,
        location=r.location,
    )


def get_appointment(tenant_id: str, appointment_id: str, *, consistent: bool = False) -> Appointment | None:
    record = _get(_AppointmentRecord, tenant_id, appointment_key(appointment_id), consistent=consistent)
    return _appointment(record) if record else None


def put_appointment(appointment: Appointment, *, replaces: Appointment | None) -> bool:
    model = _table(_AppointmentRecord)
    record = model(
        appointment.tenant_id,
        appointment_key(appointment.id),
        contact_id=appointment.contact_id,
        subject_name=appointment.subject_name,
        starts_at=appointment.starts_at,
        location=appointment.location,
        status=appointment.status,
        revision=appointment.revision,
        created_at=appointment.created_at,
        updated_at=appointment.updated_at,
    )
    return save_if(record, _unchanged(model, replaces))


# --- medication schedules ------------------------------------------------------------------------------
def _medication(r: _MedicationRecord) -> Medication:
    return Medication(
        tenant_id=r.tenant_id,
        id=r.sk.removeprefix("med#"),
        contact_id=r.contact_id,
        medication=r.medication,
        dose=r.dose,
        start_date=r.start_date,
        timezone=r.timezone,
        revision=int(r.revision),
        fingerprint=r.fingerprint,
        horizon_end=r.horizon_end,
        created_at=r.created_at,
        updated_at=r.updated_at,
        times_of_day=tuple(r.times_of_day) if r.times_of_day else None,
        every_hours=int(r.every_hours) if r.every_hours else None,
        start_time=r.start_time,
        end_date=r.end_date,
        due_at=int(r.due_at) if r.due_at is not None else None,
    )


def get_medication(tenant_id: str, schedule_id: str, *, consistent: bool = False) -> Medication | None:
    record = _get(_MedicationRecord, tenant_id, medication_key(schedule_id), consistent=consistent)
    return _medication(record) if record else None


def put_medication(med: Medication, *, replaces: Medication | None) -> bool:
    """Create or replace a schedule; with `due_at`, it waits in the due index for its next horizon roll."""
    model = _table(_MedicationRecord)
    key = medication_key(med.id)
    record = model(
        med.tenant_id,
        key,
        contact_id=med.contact_id,
        medication=med.medication,
        dose=med.dose,
        times_of_day=list(med.times_of_day) if med.times_of_day else None,
        every_hours=med.every_hours,
        start_time=med.start_time,
        start_date=med.start_date,
        end_date=med.end_date,
        timezone=med.timezone,
        revision=med.revision,
        fingerprint=med.fingerprint,
        horizon_end=med.horizon_end,
        due_shard=_due_shard(med.tenant_id, key) if med.due_at is not None else None,
        due_at=med.due_at,
        created_at=med.created_at,
        updated_at=med.updated_at,
    )
    return save_if(record, _unchanged(model, replaces))


def delete_medication(med: Medication) -> bool:
    model = _table(_MedicationRecord)
    record = model(med.tenant_id, medication_key(med.id))
    return conditional(lambda: record.delete(condition=model.sk.exists()))


def advance_horizon(med: Medication, horizon_end: datetime, next_roll: datetime | None, now: datetime) -> bool:
    """Move the planned horizon forward (and the next roll in the due index; None: the schedule has ended and
    leaves the index), only from the revision and horizon this roll started from."""
    model = _table(_MedicationRecord)
    key = medication_key(med.id)
    actions = [model.horizon_end.set(horizon_end), model.updated_at.set(now)]
    if next_roll is None:
        actions += [model.due_shard.remove(), model.due_at.remove()]
    else:
        actions += [model.due_shard.set(_due_shard(med.tenant_id, key)), model.due_at.set(int(next_roll.timestamp()))]
    condition = (model.revision == med.revision) & (model.horizon_end == med.horizon_end)
    return update_if(model(med.tenant_id, key), actions, condition)


# --- policy --------------------------------------------------------------------------------------------
def get_policy(tenant_id: str) -> Rules | None:
    record = _get(_PolicyRecord, tenant_id, POLICY_KEY)
    if record is None:
        return None
    templates = {**DEFAULT_TEMPLATES, **record.templates.as_dict()}
    return Rules(tuple(record.lead_times), templates["appointment"], templates["medication"])


def put_policy(tenant_id: str, rules: Rules, now: datetime) -> None:
    model = _table(_PolicyRecord)
    templates = {"appointment": rules.appointment_template, "medication": rules.medication_template}
    model(tenant_id, POLICY_KEY, lead_times=list(rules.lead_times), templates=templates, updated_at=now).save()


# --- reminders -----------------------------------------------------------------------------------------
def _attempts(records: list[_Attempt] | None) -> tuple[Attempt, ...]:
    return tuple(Attempt(a.channel, a.status, a.at, a.detail, a.provider_message_id) for a in records or [])


def _attempt_records(attempts: list[Attempt]) -> list[_Attempt]:
    return [
        _Attempt(
            channel=a.channel, status=a.status, provider_message_id=a.provider_message_id, detail=a.detail, at=a.at
        )
        for a in attempts
    ]


def _reminder(r: _ReminderRecord) -> Reminder:
    return Reminder(
        tenant_id=r.tenant_id,
        key=r.sk,
        kind=r.kind,
        source_id=r.source_id,
        revision=int(r.revision),
        contact_id=r.contact_id,
        template=r.template,
        planned_at=r.planned_at,
        remind_at=int(r.remind_at),
        created_at=r.created_at,
        updated_at=r.updated_at,
        state=r.state,
        lead_time=r.lead_time,
        dose_at=r.dose_at,
        note=r.note,
        job_id=r.job_id,
        due_at=int(r.due_at) if r.due_at is not None else None,
        attempts=_attempts(r.attempts),
        delivered_via=r.delivered_via,
    )


def get_reminder(tenant_id: str, key: str, *, consistent: bool = False) -> Reminder | None:
    record = _get(_ReminderRecord, tenant_id, key, consistent=consistent)
    return _reminder(record) if record else None


def insert_reminder(reminder: Reminder) -> bool:
    """Create a reminder unless it exists (any state): planning is idempotent. It waits in the due index."""
    model = _table(_ReminderRecord)
    record = model(
        reminder.tenant_id,
        reminder.key,
        kind=reminder.kind,
        source_id=reminder.source_id,
        revision=reminder.revision,
        contact_id=reminder.contact_id,
        template=reminder.template,
        lead_time=reminder.lead_time,
        dose_at=reminder.dose_at,
        planned_at=reminder.planned_at,
        remind_at=reminder.remind_at,
        state=ReminderState.PENDING,
        note=reminder.note,
        due_shard=_due_shard(reminder.tenant_id, reminder.key),
        due_at=reminder.remind_at,
        attempts=[],
        created_at=reminder.created_at,
        updated_at=reminder.updated_at,
    )
    return save_if(record, model.sk.does_not_exist())


def _leaves(model: Any, state: str, now: datetime) -> list[Any]:
    """What every way out of the open states does: the new state, out of the due index, aging out later."""
    return [
        model.state.set(state),
        model.updated_at.set(now),
        model.expires_at.set(expires_at(now, RETENTION)),
        model.due_shard.remove(),
        model.due_at.remove(),
    ]


def close_reminder(
    reminder: Reminder,
    state: str,
    note: str | None,
    *,
    expect: tuple[str, ...] = OPEN,
    now: datetime | None = None,
) -> bool:
    """pending/queued -> cancelled | expired | skipped | failed: leaves the due index, ages out later."""
    model = _table(_ReminderRecord)
    now = now or utcnow()
    actions = [*_leaves(model, state, now), model.note.set(note[:500] if note else None)]
    return update_if(model(reminder.tenant_id, reminder.key), actions, model.state.is_in(*expect))


def reschedule_reminder(reminder: Reminder, remind_at: int, note: str) -> bool:
    """A pending reminder moves to a new send time (quiet hours), only if nobody else touched it meanwhile."""
    model = _table(_ReminderRecord)
    actions = [
        model.remind_at.set(remind_at),
        model.due_at.set(remind_at),
        model.note.set(note),
        model.updated_at.set(utcnow()),
    ]
    condition = (model.state == ReminderState.PENDING) & (model.due_at == reminder.due_at)
    return update_if(model(reminder.tenant_id, reminder.key), actions, condition)


# A queued reminder stays in the due index, due again this long after it was queued: if its job ended without
# closing it (cancelled, failed outside delivery, or finished early), the sweep sees that and acts.
QUEUED_CHECK = timedelta(minutes=15)


def mark_queued(reminder: Reminder, job_id: str, due_at: int, now: datetime) -> bool:
    """pending -> queued once, owned by `job_id`: overlapping sweeps (and a worker taking a due pending reminder
    itself) race on this condition and only one wins. It stays in the due index, due QUEUED_CHECK after `now`."""
    model = _table(_ReminderRecord)
    actions = [
        model.state.set(ReminderState.QUEUED),
        model.job_id.set(job_id),
        model.updated_at.set(now),
        model.due_at.set(int((now + QUEUED_CHECK).timestamp())),
    ]
    condition = (model.state == ReminderState.PENDING) & (model.due_at == due_at)
    return update_if(model(reminder.tenant_id, reminder.key), actions, condition)


def check_queued_later(reminder: Reminder, due_at: int, now: datetime) -> bool:
    """A queued reminder whose job is still running: look again after another QUEUED_CHECK."""
    model = _table(_ReminderRecord)
    actions = [model.due_at.set(int((now + QUEUED_CHECK).timestamp())), model.updated_at.set(now)]
    condition = (model.state == ReminderState.QUEUED) & (model.due_at == due_at)
    return update_if(model(reminder.tenant_id, reminder.key), actions, condition)


def requeue_pending(reminder: Reminder, due_at: int, note: str, now: datetime) -> bool:
    """queued -> pending, due now: its job finished without sending it (nothing was delivered), so the sweep
    fires it again, with a new job (its id is derived from the due time too)."""
    model = _table(_ReminderRecord)
    actions = [
        model.state.set(ReminderState.PENDING),
        model.job_id.remove(),
        model.note.set(note[:500]),
        model.due_at.set(int(now.timestamp())),
        model.updated_at.set(now),
    ]
    condition = (model.state == ReminderState.QUEUED) & (model.due_at == due_at) & model.delivered_via.does_not_exist()
    return update_if(model(reminder.tenant_id, reminder.key), actions, condition)


def mark_sent(reminder: Reminder, job_id: str, delivered: Attempt, attempts: list[Attempt], now: datetime) -> bool:
    """-> sent, with the delivery's attempts, once (False: it was marked sent already)."""
    model = _table(_ReminderRecord)
    actions = [
        *_leaves(model, ReminderState.SENT, now),
        model.job_id.set(job_id),
        model.note.remove(),
        model.attempts.set(_attempt_records(attempts)),
        model.delivered_via.set(delivered.channel),
        model.delivered_at.set(delivered.at),
        model.provider_message_id.set(delivered.provider_message_id),
    ]
    return update_if(model(reminder.tenant_id, reminder.key), actions, model.delivered_via.does_not_exist())


def mark_undelivered(
    reminder: Reminder, state: str, job_id: str, reason: str, attempts: list[Attempt], now: datetime
) -> bool:
    """-> failed (no channel could deliver) or skipped (opted out of every channel), with the attempts."""
    model = _table(_ReminderRecord)
    actions = [
        *_leaves(model, state, now),
        model.job_id.set(job_id),
        model.note.set(reason[:500]),
        model.attempts.set(_attempt_records(attempts)),
    ]
    return update_if(model(reminder.tenant_id, reminder.key), actions)


def due_keys(now: datetime) -> Iterator[tuple[str, str, int]]:
    """(tenant_id, sk, due_at) of every item due by `now` (reminders and horizons), across all shards."""
    for item in due(_table(_ReminderRecord).due_index, now):
        yield item.tenant_id, item.sk, int(item.due_at)


def reminders_between(
    tenant_id: str, start: datetime, end: datetime, *, state: str | None, limit: int, after: tuple[str, int] | None
) -> tuple[list[Reminder], tuple[str, int] | None]:
    """A tenant's reminders by send time (time-index), optionally in one state; `after` is a page's last
    (key, remind_at), and so is what is returned with the page (None: the last page)."""
    model = _table(_ReminderRecord)
    start_key = None
    if after is not None:
        start_key = {"tenant_id": {"S": tenant_id}, "sk": {"S": after[0]}, "remind_at": {"N": str(after[1])}}
    results = model.time_index.query(
        tenant_id,
        model.remind_at.between(int(start.timestamp()), int(end.timestamp())),
        filter_condition=(model.state == state) if state else None,
        page_size=max(limit, 100),
        last_evaluated_key=start_key,
    )
    records, last = filtered_page(results, model, limit=limit)
    return [_reminder(r) for r in records], ((last["sk"]["S"], int(last["remind_at"]["N"])) if last else None)


def last_reminder_revision(tenant_id: str, prefix: str) -> int:
    """The highest revision among a source's reminders (0: none). Keys sort by revision, so one item is read."""
    found = reminders_under(tenant_id, prefix, limit=1)
    return found[0].revision if found else 0


def medications_of(tenant_id: str, contact_id: str) -> list[Medication]:
    """A contact's medication schedules (a query over the tenant's schedules)."""
    model = _table(_MedicationRecord)
    found = model.query(tenant_id, model.sk.startswith(medication_key("")))
    return [m for m in map(_medication, found) if m.contact_id == contact_id]


def open_reminders(tenant_id: str, prefix: str) -> list[Reminder]:
    """The pending or queued reminders under a source's prefix (an appointment's or a schedule's)."""
    model = _table(_ReminderRecord)
    found = model.query(tenant_id, model.sk.startswith(prefix), filter_condition=model.state.is_in(*OPEN))
    return [_reminder(r) for r in found]


def reminders_under(tenant_id: str, prefix: str, *, limit: int) -> list[Reminder]:
    """The latest `limit` reminders under a source's prefix (newest key first)."""
    model = _table(_ReminderRecord)
    found = model.query(
        tenant_id, model.sk.startswith(prefix), scan_index_forward=False, limit=limit, page_size=min(limit, 100)
    )
    return [_reminder(r) for r in found]

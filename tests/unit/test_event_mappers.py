"""Each capability's mapping from a committed change of its own items to domain events (pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.jobs import events as job_events
from conveyor.notify import events as notify_events
from conveyor.platform.events import Change
from conveyor.reminders import events as reminder_events
from conveyor.webhooks import events as webhook_events
from conveyor.webhooks.consumer import change_of

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _change(table: str, old: dict | None, new: dict | None, stream_id: str = "s-1") -> Change:
    return Change(table=table, stream_event_id=stream_id, at=AT, old=old, new=new)


JOB = {"tenant_id": "t", "sk": "job_01", "type": "email.send", "queue": "email", "attempts": 1}


def test_a_job_that_completes_is_one_job_completed_event_with_its_result():
    change = _change("JobsTable", {**JOB, "state": "active"}, {**JOB, "state": "completed", "result": '{"sent": 1}'})
    [event] = job_events.map_change(change)
    assert (event.type, event.tenant_id) == ("job.completed", "t")
    assert event.data["result"] == {"sent": 1} and event.data["job_id"] == "job_01"
    assert job_events.map_change(change)[0].id == event.id  # a replayed stream record: the same event


def test_only_terminal_transitions_of_ordinary_jobs_are_events():
    failed = {**JOB, "state": "failed", "error": {"type": "PermanentError", "message": "no"}}
    assert [e.type for e in job_events.map_change(_change("JobsTable", {**JOB, "state": "active"}, failed))] == [
        "job.failed"
    ]
    assert job_events.map_change(_change("JobsTable", None, {**JOB, "state": "queued"})) == []
    assert job_events.map_change(_change("JobsTable", failed, {**failed, "updated_at": "x"})) == []  # not a move
    delivery = {**JOB, "type": "webhook.deliver", "state": "completed"}
    assert job_events.map_change(_change("JobsTable", {**delivery, "state": "active"}, delivery)) == []
    assert (
        job_events.map_change(_change("RemindersTable", {**JOB, "state": "active"}, {**JOB, "state": "completed"}))
        == []
    )


APPT = {
    "tenant_id": "t",
    "sk": "appt#a1",
    "contact_id": "c1",
    "subject_name": "Rex",
    "starts_at": "2026-12-02T09:00:00Z",
    "status": "scheduled",
}


def test_appointments_are_created_updated_and_cancelled():
    def types(old, new):
        return [e.type for e in reminder_events.map_change(_change("RemindersTable", old, new))]

    assert types(None, APPT) == ["appointment.created"]
    assert types(APPT, {**APPT, "starts_at": "2026-12-03T09:00:00Z"}) == ["appointment.updated"]
    assert types(APPT, {**APPT, "status": "cancelled"}) == ["appointment.cancelled"]
    assert types(APPT, {**APPT, "revision": 2}) == []  # nothing a subscriber sees changed


def test_a_reminder_sent_or_failed_is_an_event():
    rem = {"tenant_id": "t", "sk": "rem#appt#a1#000001#P1D", "kind": "appointment", "source_id": "a1",
           "contact_id": "c1", "state": "queued"}  # fmt: skip
    sent = {**rem, "state": "sent", "delivered_via": "email"}
    [event] = reminder_events.map_change(_change("RemindersTable", rem, sent))
    assert event.type == "reminder.sent" and event.data["delivered_via"] == "email"
    [failed] = reminder_events.map_change(_change("RemindersTable", rem, {**rem, "state": "failed", "note": "x"}))
    assert failed.type == "reminder.failed"


def test_contacts_and_delivered_notifications():
    contact = {"tenant_id": "t", "sk": "contact#c1", "name": "Ann", "timezone": "UTC", "channels": ["email"]}

    def types(old, new):
        return [e.type for e in notify_events.map_change(_change("RemindersTable", old, new))]

    assert types(None, contact) == ["contact.created"]
    assert types(contact, {**contact, "name": "Ann B"}) == ["contact.updated"]
    assert types(contact, {**contact, "updated_at": "later"}) == []
    assert types(contact, None) == ["contact.deleted"]
    log = {"tenant_id": "t", "sk": "dlv#job_01", "contact_id": "c1"}
    [event] = notify_events.map_change(
        _change("RemindersTable", log, {**log, "delivered_via": "in_app", "provider_message_id": "ntf_1"})
    )
    assert event.type == "notification.delivered" and event.data["job_id"] == "job_01"


def test_a_subscription_disabled_by_the_system_is_announced_but_not_one_switched_off_by_its_tenant():
    sub = {"tenant_id": "t", "sk": "sub#whk_1", "url": "https://h.example.com", "state": "active"}
    gone = {**sub, "state": "disabled", "disabled_reason": "the endpoint answered 410 Gone"}
    [event] = webhook_events.map_change(_change("WebhooksTable", sub, gone))
    assert event.type == "webhook.endpoint.disabled" and event.data["subscription_id"] == "whk_1"
    by_tenant = {**sub, "state": "disabled", "disabled_reason": "by tenant request"}
    assert webhook_events.map_change(_change("WebhooksTable", sub, by_tenant)) == []
    warned = {**sub, "warnings_sent": 1, "failing_since": "2026-11-30T10:00:00Z"}
    assert [e.type for e in webhook_events.map_change(_change("WebhooksTable", sub, warned))] == [
        "webhook.endpoint.failing"
    ]


def test_a_stream_record_becomes_a_change_timed_by_the_item_without_its_binary_attributes():
    record = {
        "eventID": "e-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/conveyor-WebhooksTable/stream/2026",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795000000,
            "NewImage": {
                "tenant_id": {"S": "t"},
                "sk": {"S": "sub#whk_1"},
                "count": {"N": "3"},
                "secrets": {"L": [{"M": {"ciphertext": {"B": "c2VjcmV0"}}}]},
                "updated_at": {"S": "2026-12-01T10:00:00.123000+0000"},
            },
        },
    }
    change = change_of(record, {"conveyor-WebhooksTable": "WebhooksTable"})
    assert change is not None and change.table == "WebhooksTable" and change.old is None
    assert change.new["count"] == 3 and change.new["secrets"] == [{"ciphertext": None}]
    assert change.at == datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert change_of(record, {"conveyor-JobsTable": "JobsTable"}) is None

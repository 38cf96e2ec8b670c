"""Due reminders go out once, on time, over the contact's preferred channel — never twice, never after a cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

APPOINTMENT = "2099-06-10T10:00:00+01:00"  # 09:00 UTC; reminders due 2099-06-09T09:00Z (PT24H), 2099-06-10T07:00Z
DAY_BEFORE = datetime(2099, 6, 9, 9, 0, tzinfo=UTC)
TWO_HOURS_BEFORE = datetime(2099, 6, 10, 7, 0, tzinfo=UTC)


def notification_jobs(stack: Any) -> list[Any]:
    from conveyor.jobs.repository import _jobs  # every job of the world, whatever its tenant

    return [j for j in _jobs().scan() if j.type == "notification.send"]


def reminder(reminders: list[dict[str, Any]], lead: str) -> dict[str, Any]:
    return next(r for r in reminders if r["lead_time"] == lead and r["state"] != "cancelled")


def test_a_due_reminder_is_emailed_once_at_its_time_on_the_reminders_queue(
    stack: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    # Given an appointment whose 24 h reminder is due at 09:00 UTC the day before
    contact("c1", name="Ada", email="ada@example.com")
    appointment("a1", APPOINTMENT)

    # When the scheduler runs a minute early, nothing goes out
    assert sweep(DAY_BEFORE - timedelta(minutes=1))["sweep_reminders"] == 0
    assert outbox.emails == []

    # When it runs at the due minute
    assert sweep(DAY_BEFORE)["sweep_reminders"] == 1

    # Then one email went to the contact, rendered in their time zone
    [email] = outbox.to("ada@example.com")
    assert email.subject == "Reminder: Rex's appointment on Wed 10 Jun 2099, 10:00 BST"
    assert "at Main St" in email.body
    # And the reminder records the delivery; the other reminder still waits
    sent = reminder(reminders_of("a1"), "PT24H")
    assert sent["state"] == "sent" and sent["delivered_via"] == "email"
    assert [(a["channel"], a["status"]) for a in sent["attempts"]] == [("email", "sent")]
    assert sent["attempts"][0]["provider_message_id"]
    assert reminder(reminders_of("a1"), "PT2H")["state"] == "pending"
    # And the job ran on the reminders queue
    [job] = notification_jobs(stack)
    assert (job.queue, job.state, job.id) == ("reminders", "completed", sent["job_id"])
    # And later sweeps send nothing more
    sweep(DAY_BEFORE + timedelta(minutes=1))
    assert len(outbox.emails) == 1


def test_cancelled_appointment_sends_nothing(
    contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    contact("c1")
    appointment("a1", APPOINTMENT)
    appointment("a1", APPOINTMENT, status="cancelled")

    sweep(DAY_BEFORE)
    sweep(TWO_HOURS_BEFORE)

    assert outbox.emails == [] and outbox.sms == []
    assert {r["state"] for r in reminders_of("a1")} == {"cancelled"}


def test_cancel_after_the_sweep_queued_the_job_still_sends_nothing(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    # Given the sweep has already queued the reminder's job
    contact("c1")
    appointment("a1", APPOINTMENT)
    sweep(DAY_BEFORE, deliver=False)
    assert reminder(reminders_of("a1"), "PT24H")["state"] == "queued"

    # When the appointment is cancelled before a worker picks the job up
    appointment("a1", APPOINTMENT, status="cancelled")
    stack.drain()

    # Then nothing is sent, and the job says why
    assert outbox.emails == []
    [job] = notification_jobs(stack)
    assert job.state == "completed" and job.result["skipped"] == "the reminder is cancelled"


def test_worker_rechecks_the_appointment_and_expires_a_reminder_whose_appointment_started(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    from conveyor.reminders import repository

    # Given a queued reminder
    contact("c1")
    appointment("a1", APPOINTMENT)
    sweep(DAY_BEFORE, deliver=False)
    # When, before the worker runs, the appointment's start has passed (its record says so; no API call involved)
    model = repository._table(repository._AppointmentRecord)
    model("tenant-a", "appt#a1").update(actions=[model.starts_at.set(datetime.now(UTC) - timedelta(minutes=5))])
    stack.drain()

    # Then the worker does not send it: the reminder expired
    assert outbox.emails == []
    expired = reminder(reminders_of("a1"), "PT24H")
    assert (expired["state"], expired["note"]) == ("expired", "the appointment had already started")


def test_two_overlapping_sweeps_send_once(stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any) -> None:
    from conveyor.reminders import repository
    from conveyor.reminders.sweeps import fire

    # Given a due reminder that two scheduler runs both read while it was still pending
    contact("c1")
    appointment("a1", APPOINTMENT)
    key = "rem#appt#a1#000001#PT24H"
    seen_by_first = repository.get_reminder("tenant-a", key, consistent=True)
    seen_by_second = repository.get_reminder("tenant-a", key, consistent=True)
    due = int(seen_by_first.due_at)

    # When both act on it
    outcomes = [fire(seen_by_first, due, DAY_BEFORE), fire(seen_by_second, due, DAY_BEFORE)]
    stack.drain()

    # Then one of them queued it, there is one job and one email
    assert sorted(outcomes) == ["queued", "skipped"]
    assert len(notification_jobs(stack)) == 1
    assert len(outbox.emails) == 1


def test_a_sweep_that_runs_twice_for_the_same_minute_sends_once(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any
) -> None:
    contact("c1")
    appointment("a1", APPOINTMENT)

    first = sweep(DAY_BEFORE, deliver=False)
    second = sweep(DAY_BEFORE, deliver=False)  # e.g. a retried or overlapping invocation
    stack.drain()

    assert (first["sweep_reminders"], second["sweep_reminders"]) == (1, 0)
    assert len(notification_jobs(stack)) == 1 and len(outbox.emails) == 1


def test_a_sweep_that_failed_after_creating_the_job_reuses_it_next_time(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.reminders import repository

    # Given a sweep that created the job but failed to mark the reminder queued (e.g. DynamoDB erred, or it died)
    contact("c1")
    appointment("a1", APPOINTMENT)
    with monkeypatch.context() as patched:
        patched.setattr(repository, "mark_queued", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash")))
        assert sweep(DAY_BEFORE, deliver=False)["sweep_reminders"] == 0
    assert len(notification_jobs(stack)) == 1

    # When the next run finds the reminder still pending
    assert sweep(DAY_BEFORE + timedelta(minutes=1))["sweep_reminders"] == 1

    # Then it picked up the same job (its id is derived from the firing): one job, one email
    assert len(notification_jobs(stack)) == 1
    assert len(outbox.emails) == 1


def test_duplicate_sqs_delivery_sends_once(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    # Given the sweep queued the reminder's job
    contact("c1")
    appointment("a1", APPOINTMENT)
    sweep(DAY_BEFORE, deliver=False)
    job_id = reminder(reminders_of("a1"), "PT24H")["job_id"]

    # When SQS delivers its message twice (at-least-once delivery)
    sqs = stack.client("sqs")
    queue = json.loads(stack.functions["WorkerFunction"].environment["QUEUES"])["reminders"]
    sqs.send_message(
        QueueUrl=queue, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job_id, "type": "notification.send"})
    )
    delivered = stack.drain()

    # Then both copies were delivered to the worker, and one email went out
    assert delivered >= 3  # the stream record, and two queue messages
    assert len(outbox.emails) == 1


def test_a_job_redelivered_after_a_crash_does_not_resend_a_channel_that_succeeded(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    from conveyor.jobs.domain import JobState
    from conveyor.jobs.repository import _jobs

    # Given a reminder that was emailed, by a worker that then died before finishing the job
    contact("c1")
    appointment("a1", APPOINTMENT)
    sweep(DAY_BEFORE)
    job_id = reminder(reminders_of("a1"), "PT24H")["job_id"]
    jobs = _jobs()
    job = jobs.get("tenant-a", job_id)
    job.update(actions=[jobs.state.set(JobState.ACTIVE), jobs.lease_until.set(0)])  # its lease ran out

    # When the message comes back and another worker claims the job
    sqs = stack.client("sqs")
    queue = json.loads(stack.functions["WorkerFunction"].environment["QUEUES"])["reminders"]
    sqs.send_message(
        QueueUrl=queue, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job_id, "type": "notification.send"})
    )
    stack.drain()

    # Then it finishes the job without sending again
    assert len(outbox.emails) == 1
    assert jobs.get("tenant-a", job_id).state == "completed"


def test_after_a_three_hour_outage_due_reminders_go_out_and_stale_ones_expire(
    rapi: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    # Given three appointments on one morning (2 h reminders at 09:00, 10:00 and 13:00 UTC)
    assert rapi.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": ["PT2H"]}).status == 200
    contact("c1", timezone="UTC")
    appointment("early", "2099-01-10T11:00:00Z")  # reminder 09:00, appointment 11:00
    appointment("late", "2099-01-10T12:00:00Z")  # reminder 10:00, appointment 12:00
    appointment("later", "2099-01-10T15:00:00Z")  # reminder 13:00
    sweep(datetime(2099, 1, 10, 8, 59, tzinfo=UTC))  # the last run before the scheduler stopped

    # When the scheduler comes back at 11:30 (no run from 09:00 to 11:29)
    sweep(datetime(2099, 1, 10, 11, 30, tzinfo=UTC))

    # Then the reminder whose appointment is still ahead went out; the one whose appointment started expired
    two_hours = {a: reminder(reminders_of(a), "PT2H") for a in ("early", "late", "later")}
    assert two_hours["late"]["state"] == "sent"
    assert (two_hours["early"]["state"], two_hours["early"]["note"]) == (
        "expired",
        "the appointment had already started",
    )
    assert two_hours["later"]["state"] == "pending"
    assert len(outbox.emails) == 1


def test_quiet_hours_set_after_planning_defer_the_reminder_at_the_sweep(
    rapi: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    # Given a reminder planned for 07:00 London time (06:00 UTC) before a 09:00 appointment
    assert rapi.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": ["PT2H"]}).status == 200
    contact("c1")
    appointment("a1", "2099-06-10T09:00:00+01:00")
    # When the contact then asks for quiet until 08:00
    contact("c1", quiet_hours={"start": "22:00", "end": "08:00"})
    sweep(datetime(2099, 6, 10, 6, 0, tzinfo=UTC))

    # Then nothing goes out at 07:00; the reminder waits for 08:00 local
    assert outbox.emails == []
    deferred = reminder(reminders_of("a1"), "PT2H")
    assert (deferred["state"], deferred["remind_at"]) == ("pending", "2099-06-10T07:00:00Z")
    sweep(datetime(2099, 6, 10, 7, 0, tzinfo=UTC))
    assert len(outbox.emails) == 1


# --- channels ----------------------------------------------------------------------------------------------
def test_falls_back_to_the_next_channel_when_the_preferred_one_has_no_address(
    contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    contact("c1", channels=["sms", "email"], phone=None)
    appointment("a1", APPOINTMENT)

    sweep(DAY_BEFORE)

    sent = reminder(reminders_of("a1"), "PT24H")
    assert [(a["channel"], a["status"], a["detail"]) for a in sent["attempts"]] == [
        ("sms", "skipped", "no phone number"),
        ("email", "sent", None),
    ]
    assert len(outbox.emails) == 1 and outbox.sms == []


def test_falls_back_to_sms_when_email_fails_permanently(
    stack: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    # Given SES refuses to send (the sender identity is no longer verified)
    contact("c1", channels=["email", "sms", "in_app"], phone="+447700900123")
    appointment("a1", APPOINTMENT)
    stack.client("sesv2").delete_email_identity(EmailIdentity=stack.template.parameters["EmailFrom"])

    sweep(DAY_BEFORE)

    # Then the reminder went by SMS, and the failed email attempt is on record
    sent = reminder(reminders_of("a1"), "PT24H")
    assert sent["delivered_via"] == "sms"
    assert [(a["channel"], a["status"]) for a in sent["attempts"]] == [("email", "failed"), ("sms", "sent")]
    assert "MessageRejected" in sent["attempts"][0]["detail"]
    [(phone, text)] = outbox.sms
    assert phone == "+447700900123"
    assert text.startswith("Reminder: Rex's appointment is on Wed 10 Jun 2099, 10:00 BST")


def test_opted_out_channels_are_skipped(
    contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    contact("c1", channels=["email", "sms"], opted_out=["email"])
    appointment("a1", APPOINTMENT)

    sweep(DAY_BEFORE)

    assert outbox.emails == [] and len(outbox.sms) == 1
    sent = reminder(reminders_of("a1"), "PT24H")
    assert [(a["channel"], a["status"], a["detail"]) for a in sent["attempts"]] == [
        ("email", "skipped", "opted out"),
        ("sms", "sent", None),
    ]


def test_a_contact_opted_out_of_everything_gets_nothing(
    stack: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    contact("c1", channels=["email", "sms"], opted_out=["sms", "email"])
    appointment("a1", APPOINTMENT)

    sweep(DAY_BEFORE)

    assert outbox.emails == [] and outbox.sms == []
    skipped = reminder(reminders_of("a1"), "PT24H")
    assert (skipped["state"], skipped["note"]) == ("skipped", "the contact opted out of every channel")
    assert notification_jobs(stack)[0].state == "completed"


def test_no_usable_channel_fails_the_reminder_and_its_job_with_the_reason(
    stack: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    contact("c1", channels=["sms"], phone=None)
    appointment("a1", APPOINTMENT)

    sweep(DAY_BEFORE)

    failed = reminder(reminders_of("a1"), "PT24H")
    assert failed["state"] == "failed"
    assert failed["note"] == "no channel could deliver: sms skipped (no phone number)"
    [job] = notification_jobs(stack)
    assert job.state == "failed" and job.error["message"] == failed["note"]


def test_in_app_reminders_land_in_the_contacts_feed(
    rapi: Any, contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    # Given a contact who prefers in-app notifications
    contact("c1", channels=["in_app", "email"])
    appointment("a1", APPOINTMENT)

    # When both reminders are due
    sweep(DAY_BEFORE)
    sweep(TWO_HOURS_BEFORE)

    # Then the feed has both, newest first, and no email was sent
    assert outbox.emails == []
    feed = rapi.get("/v1/contacts/c1/notifications").json()
    assert [i["title"] for i in feed["items"]] == ["Reminder: Rex's appointment on Wed 10 Jun 2099, 10:00 BST"] * 2
    newest, oldest = feed["items"]
    assert newest["source"]["reminder_id"].endswith("#PT2H") and oldest["source"]["reminder_id"].endswith("#PT24H")
    assert newest["read_at"] is None
    # And one can be marked read (twice is harmless)
    first = rapi.post(f"/v1/contacts/c1/notifications/{newest['id']}/read")
    again = rapi.post(f"/v1/contacts/c1/notifications/{newest['id']}/read")
    assert first.status == again.status == 200
    assert first.json()["read_at"] is not None and again.json()["read_at"] == first.json()["read_at"]
    sent = reminder(reminders_of("a1"), "PT2H")
    assert sent["attempts"][0]["provider_message_id"] == newest["id"]


def test_a_throttled_email_is_retried_on_the_same_channel_without_falling_back(
    stack: Any,
    contact: Any,
    appointment: Any,
    reminders_of: Any,
    sweep: Any,
    outbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from botocore.awsrequest import AWSResponse

    from conveyor.jobs import registry
    from conveyor.platform.aws import client

    # Given SES throttles the first send (fault injected into the real client), and retries come back in ~1 s
    kind = registry.get("notification.send")
    monkeypatch.setitem(
        registry._TYPES,
        "notification.send",
        registry.JobType(
            kind.name,
            kind.queue,
            kind.payload_model,
            kind.handler,
            registry.RetryPolicy(max_attempts=5, base_seconds=1, cap_seconds=1),
        ),
    )
    calls = {"n": 0}

    def throttle_once(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            error = {
                "Error": {"Code": "TooManyRequestsException", "Message": "slow down"},
                "ResponseMetadata": {"HTTPStatusCode": 429},
            }
            return AWSResponse("https://email.local", 429, {}, None), error
        return None

    client("sesv2").meta.events.register("before-call.sesv2.SendEmail", throttle_once)
    try:
        contact("c1", channels=["email", "sms"])
        appointment("a1", APPOINTMENT)

        # When the reminder is sent: the first try is throttled
        sweep(DAY_BEFORE)
        assert outbox.emails == [] and outbox.sms == []
        time.sleep(1.1)  # the retry's visibility delay
        stack.drain()
    finally:
        client("sesv2").meta.events.unregister("before-call.sesv2.SendEmail", throttle_once)

    # Then it went out by email on the retry; SMS was never used
    assert len(outbox.emails) == 1 and outbox.sms == []
    sent = reminder(reminders_of("a1"), "PT24H")
    assert [(a["channel"], a["status"]) for a in sent["attempts"]] == [("email", "error"), ("email", "sent")]


def test_a_reminder_the_sweep_cannot_handle_does_not_hold_back_the_others(
    contact: Any, appointment: Any, reminders_of: Any, sweep: Any, outbox: Any
) -> None:
    from conveyor.notify import repository

    # Given two due reminders, one of whose contact records is corrupt (a zone that does not exist)
    contact("broken", email="broken@example.com")
    contact("fine", email="fine@example.com")
    appointment("a1", APPOINTMENT, contact_id="broken")
    appointment("a2", APPOINTMENT, contact_id="fine")
    model = repository._table(repository._ContactRecord)
    model("tenant-a", "contact#broken").update(actions=[model.timezone.set("Nowhere/Else")])

    # When the sweep runs
    result = sweep(DAY_BEFORE)

    # Then the healthy one went out, and the broken one waits (pending) for a fix instead of blocking the run
    assert result["sweep_reminders"] == 1
    assert len(outbox.to("fine@example.com")) == 1
    assert reminder(reminders_of("a1"), "PT24H")["state"] == "pending"


def test_on_the_last_attempt_a_throttled_channel_falls_back_to_the_next(
    stack: Any,
    contact: Any,
    appointment: Any,
    reminders_of: Any,
    sweep: Any,
    outbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.awsrequest import AWSResponse

    from conveyor.jobs import registry
    from conveyor.platform.aws import client

    # Given SES keeps throttling, and notification jobs get a single attempt
    kind = registry.get("notification.send")
    monkeypatch.setitem(
        registry._TYPES,
        "notification.send",
        registry.JobType(kind.name, kind.queue, kind.payload_model, kind.handler, registry.RetryPolicy(max_attempts=1)),
    )

    def throttle(**_: Any) -> Any:
        error = {
            "Error": {"Code": "TooManyRequestsException", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 429},
        }
        return AWSResponse("https://email.local", 429, {}, None), error

    client("sesv2").meta.events.register("before-call.sesv2.SendEmail", throttle)
    try:
        contact("c1", channels=["email", "sms"])
        appointment("a1", APPOINTMENT)
        sweep(DAY_BEFORE)
    finally:
        client("sesv2").meta.events.unregister("before-call.sesv2.SendEmail", throttle)

    # Then, rather than fail, the reminder went by SMS
    sent = reminder(reminders_of("a1"), "PT24H")
    assert sent["delivered_via"] == "sms" and len(outbox.sms) == 1
    assert sent["attempts"][0]["channel"] == "email" and sent["attempts"][0]["status"] == "failed"
    assert sent["attempts"][0]["detail"].startswith("gave up on the last attempt")

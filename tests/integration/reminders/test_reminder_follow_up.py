"""A reminder is sent once even when sweeps overlap at the start of quiet hours, and never stays `queued`
forever: when its job ends without closing it, the sweep closes it (cancelled, failed) or fires it again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

APPOINTMENT = "2099-06-10T10:00:00+01:00"  # 09:00 UTC; the PT24H reminder is due 2099-06-09T09:00Z (10:00 BST)
DUE = datetime(2099, 6, 9, 9, 0, tzinfo=UTC)
KEY = "rem#appt#a1#000001#PT24H"


def test_two_sweeps_overlapping_at_the_start_of_quiet_hours_send_the_reminder_once(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.reminders import repository
    from conveyor.reminders.sweeps import fire

    # Given a reminder due at 10:00 London time, and the contact's quiet hours (set since) starting then
    contact("c1", channels=["email"])
    appointment("a1", APPOINTMENT)
    contact("c1", channels=["email"], quiet_hours={"start": "10:00", "end": "11:00"})
    first = repository.get_reminder("tenant-a", KEY, consistent=True)
    second = repository.get_reminder("tenant-a", KEY, consistent=True)
    due = int(first.due_at)

    # When one sweep (just before 10:00) enqueues the job, and before it marks the reminder queued, another
    # (just after 10:00) defers the reminder to the end of the quiet hours
    mark_queued = repository.mark_queued

    def second_sweep_first(*args: Any, **kwargs: Any) -> bool:
        assert fire(second, due, DUE + timedelta(seconds=10)) == "deferred"
        return mark_queued(*args, **kwargs)

    monkeypatch.setattr(repository, "mark_queued", second_sweep_first)
    assert fire(first, due, DUE - timedelta(seconds=10)) == "skipped"
    monkeypatch.setattr(repository, "mark_queued", mark_queued)
    stack.drain()  # the first sweep's job runs: the reminder is not due yet, nothing is sent
    assert outbox.emails == []

    # Then the sweep at the end of the quiet hours sends it, once
    sweep(DUE + timedelta(hours=1, seconds=30))
    sweep(DUE + timedelta(hours=1, minutes=1))
    assert len(outbox.to("ada@example.com")) == 1
    assert repository.get_reminder("tenant-a", KEY, consistent=True).state == "sent"


def test_a_reminder_whose_job_was_cancelled_is_cancelled_by_the_next_sweeps_follow_up(
    stack: Any, api_as: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    # Given a reminder the sweep queued, and its job cancelled by a key that may (jobs:write + reminders:write)
    contact("c1", channels=["email"])
    appointment("a1", APPOINTMENT)
    assert sweep(DUE, deliver=False)["sweep_reminders"] == 1
    queued = next(r for r in reminders_of("a1") if r["lead_time"] == "PT24H")
    assert queued["state"] == "queued"
    operator = api_as("tenant-a", "jobs:write,reminders:write")
    assert operator.post(f"/v1/jobs/{queued['job_id']}/cancel").status == 200
    stack.drain()

    # When the scheduler runs a quarter of an hour later
    sweep(DUE + timedelta(minutes=16))

    # Then the reminder is closed as cancelled, with the reason, and nothing was sent
    closed = next(r for r in reminders_of("a1") if r["lead_time"] == "PT24H")
    assert closed["state"] == "cancelled" and "cancelled" in closed["note"], closed
    assert outbox.emails == []


def test_a_reminder_whose_job_failed_outside_delivery_is_failed_by_the_next_sweeps_follow_up(
    stack: Any, contact: Any, appointment: Any, sweep: Any, outbox: Any, reminders_of: Any
) -> None:
    from conveyor.jobs import repository as jobs_store

    # Given a reminder the sweep queued, whose job's worker timed out on every attempt (claimed, never finished)
    contact("c1", channels=["email"])
    appointment("a1", APPOINTMENT)
    assert sweep(DUE, deliver=False)["sweep_reminders"] == 1
    job_id = next(r for r in reminders_of("a1") if r["lead_time"] == "PT24H")["job_id"]
    while (job := jobs_store.claim("tenant-a", job_id, lease_seconds=-3600)) and job.attempts < job.max_attempts:
        pass

    # When the scheduler runs a quarter of an hour later (the stalled-job sweep fails the job on its last attempt)
    sweep(DUE + timedelta(minutes=16))

    # Then the reminder is closed as failed, with its job's reason, and nothing was sent
    closed = next(r for r in reminders_of("a1") if r["lead_time"] == "PT24H")
    assert closed["state"] == "failed" and job_id in closed["note"], closed
    assert outbox.emails == []


def test_a_reminder_whose_job_is_still_running_is_left_to_it(
    stack: Any, contact: Any, appointment: Any, sweep: Any, reminders_of: Any
) -> None:
    contact("c1", channels=["email"])
    appointment("a1", APPOINTMENT)
    sweep(DUE, deliver=False)
    sweep(DUE + timedelta(minutes=16), deliver=False)  # its job is still queued: looked at again later
    assert next(r for r in reminders_of("a1") if r["lead_time"] == "PT24H")["state"] == "queued"
    stack.drain()
    assert next(r for r in reminders_of("a1") if r["lead_time"] == "PT24H")["state"] == "sent"

"""Appointment reminders are planned at the right UTC instants, re-planned on reschedule, dropped on cancel."""

from __future__ import annotations

from typing import Any

# Europe/London springs forward on 2099-03-29 at 01:00 UTC (GMT -> BST).
SUNDAY_AFTER_SPRING_FORWARD = "2099-03-29T09:00:00+01:00"  # 08:00 UTC


def pending(reminders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in reminders if r["state"] == "pending"]


def test_default_lead_times_make_two_reminders_at_exact_utc_instants_across_a_dst_change(
    contact: Any, appointment: Any, reminders_of: Any
) -> None:
    # Given a London contact and an appointment the morning after the clocks go forward
    contact("c1", timezone="Europe/London")

    # When the appointment is booked with the default policy (24 h and 2 h before)
    booked = appointment("a1", SUNDAY_AFTER_SPRING_FORWARD)

    # Then it is stored in UTC, and shown in the contact's time
    assert booked["starts_at"] == "2099-03-29T08:00:00Z"
    assert booked["starts_at_local"] == "2099-03-29T09:00:00+01:00"
    # And there are two reminders: exactly 24 h before (08:00 GMT on Saturday) and 2 h before (07:00 BST)
    reminders = reminders_of("a1")
    assert [(r["lead_time"], r["remind_at"]) for r in reminders] == [
        ("PT24H", "2099-03-28T08:00:00Z"),
        ("PT2H", "2099-03-29T06:00:00Z"),
    ]
    assert {r["state"] for r in reminders} == {"pending"}


def test_a_day_lead_time_is_a_calendar_day_in_the_contacts_zone(
    rapi: Any, contact: Any, appointment: Any, reminders_of: Any
) -> None:
    # Given a policy that reminds one calendar day before (P1D) and 90 minutes before
    assert rapi.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": ["P1D", "PT90M"]}).status == 200
    contact("c1", timezone="Europe/London")

    # When an appointment is booked at 09:00 local the day the clocks go forward
    appointment("a1", SUNDAY_AFTER_SPRING_FORWARD)

    # Then the day-before reminder is at 09:00 local on Saturday (09:00 GMT: only 23 hours earlier)
    reminders = reminders_of("a1")
    assert [(r["lead_time"], r["remind_at"]) for r in reminders] == [
        ("P1D", "2099-03-28T09:00:00Z"),
        ("PT90M", "2099-03-29T06:30:00Z"),
    ]


def test_new_york_contact_gets_reminders_in_utc_across_the_us_change(
    contact: Any, appointment: Any, reminders_of: Any
) -> None:
    # Given a New York contact (EST -> EDT on 2099-03-08 at 07:00 UTC)
    contact("c1", timezone="America/New_York")

    # When an appointment is at 10:00 EDT on the Sunday of the change
    appointment("a1", "2099-03-08T10:00:00-04:00")

    # Then the 24 h reminder is 24 real hours earlier: 10:00 EDT = 14:00 UTC -> Saturday 14:00 UTC (09:00 EST)
    assert [r["remind_at"] for r in reminders_of("a1")] == ["2099-03-07T14:00:00Z", "2099-03-08T12:00:00Z"]


def test_reschedule_cancels_the_old_reminders_and_plans_new_ones(
    contact: Any, appointment: Any, reminders_of: Any
) -> None:
    # Given an appointment with its two reminders
    contact("c1")
    first = appointment("a1", "2099-06-10T10:00:00+01:00")

    # When it moves a day later
    moved = appointment("a1", "2099-06-11T10:00:00+01:00")

    # Then the old reminders are cancelled and two new ones are pending at the new times
    assert moved["revision"] == first["revision"] + 1
    reminders = reminders_of("a1")
    old = [r for r in reminders if r["revision"] == first["revision"]]
    assert [r["state"] for r in old] == ["cancelled", "cancelled"]
    assert all(r["note"] == "the appointment was rescheduled" for r in old)
    assert [r["remind_at"] for r in pending(reminders)] == ["2099-06-10T09:00:00Z", "2099-06-11T07:00:00Z"]


def test_an_edit_that_does_not_move_the_time_keeps_the_reminders(
    contact: Any, appointment: Any, reminders_of: Any
) -> None:
    contact("c1")
    first = appointment("a1", "2099-06-10T10:00:00+01:00")

    again = appointment("a1", "2099-06-10T09:00:00Z", location="Side entrance")  # same instant, other offset

    assert again["revision"] == first["revision"]
    assert len(reminders_of("a1")) == 2 and len(pending(reminders_of("a1"))) == 2


def test_cancelling_the_appointment_cancels_its_reminders(contact: Any, appointment: Any, reminders_of: Any) -> None:
    contact("c1")
    appointment("a1", "2099-06-10T10:00:00+01:00")

    appointment("a1", "2099-06-10T10:00:00+01:00", status="cancelled")

    assert [r["state"] for r in reminders_of("a1")] == ["cancelled", "cancelled"]


def test_lead_times_already_past_at_booking_are_not_planned(contact: Any, appointment: Any, reminders_of: Any) -> None:
    from datetime import UTC, datetime, timedelta

    # Given an appointment booked 3 hours ahead: its 24 h reminder would be in the past
    contact("c1")
    starts = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    appointment("a1", starts.isoformat())

    # Then only the 2 h reminder exists
    assert [r["lead_time"] for r in reminders_of("a1")] == ["PT2H"]


def test_quiet_hours_move_a_reminder_to_their_end_when_that_is_before_the_appointment(
    contact: Any, appointment: Any, reminders_of: Any
) -> None:
    # Given a contact who wants nothing between 21:00 and 08:00 London time
    contact("c1", quiet_hours={"start": "21:00", "end": "08:00"})

    # When the 2 h reminder of a 09:00 appointment would arrive at 07:00
    appointment("a1", "2099-06-10T09:00:00+01:00")

    # Then it goes out at 08:00 local (07:00 UTC) instead; the 24 h one (09:00 the day before) is not quiet
    two_hours = next(r for r in reminders_of("a1") if r["lead_time"] == "PT2H")
    assert two_hours["planned_at"] == "2099-06-10T06:00:00Z"
    assert two_hours["remind_at"] == "2099-06-10T07:00:00Z"


def test_quiet_hours_ending_after_the_appointment_do_not_hold_the_reminder_back(
    contact: Any, appointment: Any, reminders_of: Any
) -> None:
    # Given quiet hours until 08:00 and an appointment at 07:30: the end of the quiet period is too late
    contact("c1", quiet_hours={"start": "21:00", "end": "08:00"})
    appointment("a1", "2099-06-10T07:30:00+01:00")

    # Then the 2 h reminder stays at 05:30 local: it goes out at once, before the appointment
    two_hours = next(r for r in reminders_of("a1") if r["lead_time"] == "PT2H")
    assert two_hours["remind_at"] == two_hours["planned_at"] == "2099-06-10T04:30:00Z"

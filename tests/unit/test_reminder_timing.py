"""Reminder time rules: lead times, quiet hours and dose recurrence, in the contact's zone, DST-correct."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from conveyor.platform.clock import zone
from conveyor.reminders.timing import DoseRule, LeadTime, QuietHours, describe, send_time

LONDON, NEW_YORK = zone("Europe/London"), zone("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- lead times --------------------------------------------------------------------------------------------
def test_hours_are_exact_and_days_are_calendar_days_across_spring_forward() -> None:
    starts = utc("2099-03-29T08:00")  # 09:00 BST, the morning the clocks went forward

    assert LeadTime.parse("PT24H").before(starts, LONDON) == utc("2099-03-28T08:00")  # 08:00 GMT: 24 h
    assert LeadTime.parse("P1D").before(starts, LONDON) == utc("2099-03-28T09:00")  # 09:00 GMT: 23 h
    assert LeadTime.parse("P1DT2H").before(starts, LONDON) == utc("2099-03-28T07:00")


def test_a_calendar_day_across_fall_back_is_25_hours() -> None:
    starts = utc("2099-11-02T15:00")  # 10:00 EST, the day after New York fell back

    assert LeadTime.parse("P1D").before(starts, NEW_YORK) == utc("2099-11-01T15:00")  # 10:00 EST...
    assert LeadTime.parse("P1W").before(starts, NEW_YORK) == utc("2099-10-26T14:00")  # ...and 10:00 EDT a week ago


@pytest.mark.parametrize("text", ["24h", "P", "PT", "P1DT", "-PT2H", "PT0M", "P61D", "PT2H30", ""])
def test_malformed_or_out_of_range_lead_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601|between"):
        LeadTime.parse(text)


# --- quiet hours -------------------------------------------------------------------------------------------
QUIET = QuietHours(time(21, 0), time(8, 0))


def test_quiet_hours_spanning_midnight_end_the_next_morning_local_time() -> None:
    assert QUIET.end_of_quiet(utc("2099-06-10T21:30"), LONDON) == utc("2099-06-11T07:00")  # 22:30 BST -> 08:00
    assert QUIET.end_of_quiet(utc("2099-06-10T05:00"), LONDON) == utc("2099-06-10T07:00")  # 06:00 BST -> 08:00
    assert QUIET.end_of_quiet(utc("2099-06-10T07:00"), LONDON) is None  # 08:00 sharp: quiet is over
    assert QUIET.end_of_quiet(utc("2099-06-10T19:59"), LONDON) is None


def test_quiet_hours_within_a_day() -> None:
    siesta = QuietHours(time(13, 0), time(15, 0))
    assert siesta.end_of_quiet(utc("2099-01-10T13:30"), LONDON) == utc("2099-01-10T15:00")
    assert siesta.end_of_quiet(utc("2099-01-10T15:00"), LONDON) is None


def test_quiet_hours_ending_on_the_night_clocks_change_use_the_new_offset() -> None:
    # 00:30 GMT on the night London springs forward: quiet until 08:00 BST = 07:00 UTC
    assert QUIET.end_of_quiet(utc("2099-03-29T00:30"), LONDON) == utc("2099-03-29T07:00")


def test_send_time_moves_out_of_quiet_hours_only_if_still_before_the_deadline() -> None:
    planned = utc("2099-06-10T05:00")  # 06:00 BST
    assert send_time(planned, LONDON, QUIET, deadline=utc("2099-06-10T08:00")) == utc("2099-06-10T07:00")
    assert send_time(planned, LONDON, QUIET, deadline=utc("2099-06-10T07:00")) == planned  # 08:00 is too late
    assert send_time(planned, LONDON, None, deadline=None) == planned


# --- doses -------------------------------------------------------------------------------------------------
def test_times_of_day_are_wall_clock_times_across_dst() -> None:
    rule = DoseRule(start_date=date(2099, 3, 28), end_date=date(2099, 3, 30), times=(time(8), time(20)))

    doses = list(rule.doses(LONDON, utc("2099-03-01T00:00"), utc("2099-04-30T00:00")))

    assert [describe(d, LONDON) for d in doses] == [
        "Sat 28 Mar 2099, 08:00 GMT",
        "Sat 28 Mar 2099, 20:00 GMT",
        "Sun 29 Mar 2099, 08:00 BST",
        "Sun 29 Mar 2099, 20:00 BST",
        "Mon 30 Mar 2099, 08:00 BST",
        "Mon 30 Mar 2099, 20:00 BST",
    ]


def test_a_dose_in_the_skipped_hour_moves_forward_and_a_repeated_hour_counts_once() -> None:
    skipped = DoseRule(start_date=date(2099, 3, 29), end_date=date(2099, 3, 29), times=(time(1, 30),))
    repeated = DoseRule(start_date=date(2099, 10, 25), end_date=date(2099, 10, 25), times=(time(1, 30),))

    assert list(skipped.doses(LONDON, utc("2099-03-28T00:00"), utc("2099-03-30T00:00"))) == [utc("2099-03-29T01:30")]
    assert list(repeated.doses(LONDON, utc("2099-10-24T00:00"), utc("2099-10-26T00:00"))) == [
        utc("2099-10-25T00:30")
    ]  # 01:30 BST, the first of the two


def test_every_n_hours_is_elapsed_time_from_the_first_dose() -> None:
    rule = DoseRule(start_date=date(2099, 3, 28), end_date=date(2099, 3, 29), every_hours=8, start_time=time(6))

    doses = list(rule.doses(LONDON, utc("2099-03-01T00:00"), utc("2099-04-01T00:00")))

    assert doses == [
        utc("2099-03-28T06:00"),
        utc("2099-03-28T14:00"),
        utc("2099-03-28T22:00"),
        utc("2099-03-29T06:00"),
        utc("2099-03-29T14:00"),
        utc("2099-03-29T22:00"),
    ]
    assert describe(doses[3], LONDON) == "Sun 29 Mar 2099, 07:00 BST"  # elapsed hours, not wall-clock ones


def test_doses_are_only_those_inside_the_window_and_the_schedule() -> None:
    rule = DoseRule(start_date=date(2099, 1, 1), end_date=None, times=(time(9),))

    window = list(rule.doses(LONDON, utc("2099-01-05T09:00"), utc("2099-01-07T09:00")))

    assert window == [utc("2099-01-06T09:00"), utc("2099-01-07T09:00")]  # after < dose <= until


def test_next_dose_finds_a_far_start_and_ends_with_the_schedule() -> None:
    rule = DoseRule(start_date=date(2099, 1, 1), end_date=date(2099, 1, 2), times=(time(9),))

    assert rule.next_dose(LONDON, utc("2026-01-01T00:00")) == utc("2099-01-01T09:00")
    assert rule.next_dose(LONDON, utc("2099-01-02T09:00")) is None


def test_zone_accepts_iana_names_only() -> None:
    assert str(zone("Asia/Kolkata")) == "Asia/Kolkata"
    for bad in ("CEST", "Europe/Londn", "../etc/passwd", "localtime"):
        with pytest.raises(ValueError, match="IANA"):
            zone(bad)

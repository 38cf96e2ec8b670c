"""Schedules in the local stack fire when EventBridge would: rate(), AWS cron() and at() expressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from conveyor_local.schedules import Schedule, ScheduleError, croniter_expression, schedules_of

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)  # a Wednesday


def schedule(expression: str, **kw: object) -> Schedule:
    return Schedule("Fn", "Ev", expression, _start=START, **kw)


def test_rate_fires_every_period_counted_from_the_start() -> None:
    every_5 = schedule("rate(5 minutes)")
    assert every_5.next_after(START) == START + timedelta(minutes=5)
    assert every_5.next_after(START + timedelta(minutes=7)) == START + timedelta(minutes=10)
    assert schedule("rate(1 hour)").next_after(START) == START + timedelta(hours=1)
    assert schedule("rate(1 day)").next_after(START) == START + timedelta(days=1)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 10 * * ? *)", datetime(2025, 1, 2, 10, 0, tzinfo=UTC)),  # daily 10:00
        ("cron(15 12 * * ? *)", datetime(2025, 1, 1, 12, 15, tzinfo=UTC)),  # later today
        ("cron(0 8 ? * 2 *)", datetime(2025, 1, 6, 8, 0, tzinfo=UTC)),  # AWS day 2 is Monday
        ("cron(0 8 ? * MON-FRI *)", datetime(2025, 1, 2, 8, 0, tzinfo=UTC)),
        ("cron(0 9 ? * 6L *)", datetime(2025, 1, 31, 9, 0, tzinfo=UTC)),  # last Friday of the month
        ("cron(0 9 ? * 2#1 *)", datetime(2025, 1, 6, 9, 0, tzinfo=UTC)),  # first Monday of the month
        ("cron(0 0 1 * ? 2026)", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),  # the year field
    ],
)
def test_aws_cron_expressions_fire_at_the_next_matching_minute(expression: str, expected: datetime) -> None:
    assert schedule(expression).next_after(START) == expected


def test_cron_honours_the_schedule_time_zone() -> None:
    nine_in_paris = schedule("cron(0 9 * * ? *)", timezone="Europe/Paris")
    assert nine_in_paris.next_after(START) == datetime(2025, 1, 2, 8, 0, tzinfo=UTC)  # 09:00 CET = 08:00 UTC


def test_at_fires_once() -> None:
    once = schedule("at(2025-01-01T12:30:00)")
    assert once.next_after(START) == datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
    assert once.next_after(START + timedelta(hours=1)) is None


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(5 weeks)", "cron(0 10 * * ?)", "every 5 minutes"])
def test_unreadable_expressions_are_refused_with_the_event_named(expression: str) -> None:
    with pytest.raises(ScheduleError, match="Fn.Ev"):
        schedule(expression).next_after(START)


def test_aws_weekday_numbers_become_cron_numbers_but_steps_and_nth_counts_do_not() -> None:
    assert croniter_expression("0 8 ? * 1,7 *") == "0 8 * * 0,6 0 *"
    assert croniter_expression("0 8 ? * 2-6 *") == "0 8 * * 1-5 0 *"
    assert croniter_expression("0 8 ? * 3#2 *") == "0 8 * * 2#2 0 *"
    assert croniter_expression("*/5 * * * ? *") == "*/5 * * * * 0 *"


def test_schedule_events_are_read_from_both_event_types_and_disabled_ones_are_marked() -> None:
    functions = {
        "Fn": SimpleNamespace(
            logical_id="Fn",
            code_dir=Path("."),
            events={
                "V2": {
                    "Type": "ScheduleV2",
                    "Properties": {
                        "ScheduleExpression": "rate(1 minute)",
                        "ScheduleExpressionTimezone": "Europe/Paris",
                    },
                },
                "V1": {"Type": "Schedule", "Properties": {"Schedule": "rate(2 minutes)", "Input": '{"kind": "v1"}'}},
                "Off": {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "rate(1 day)", "State": "DISABLED"}},
                "Http": {"Type": "HttpApi", "Properties": {}},
            },
        )
    }
    found = {s.event_name: s for s in schedules_of(functions)}
    assert set(found) == {"V2", "V1", "Off"}
    assert found["V2"].expression == "rate(1 minute)" and found["V2"].timezone == "Europe/Paris"
    assert found["V1"].event(START, "us-east-1", "1") == {"kind": "v1"}  # Input is what the target receives
    assert found["V2"].event(START, "us-east-1", "1")["detail-type"] == "Scheduled Event"
    assert not found["Off"].enabled and found["V2"].enabled

"""Schedule and ScheduleV2 events as EventBridge fires them: rate(), cron() and at() expressions.

`Schedule.next_after(t)` is the next time the schedule fires after `t`. AWS cron has six fields
(minutes hours day-of-month month day-of-week year), `?` for "any", and numbers days 1-7 from Sunday; croniter
evaluates it once those are translated (croniter's 7-field form: ... seconds year). ScheduleV2's
ScheduleExpressionTimezone is honoured; rate() runs from the moment the local stack starts, as a new rule does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SCHEDULE_TYPES = ("Schedule", "ScheduleV2")
_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


class ScheduleError(ValueError):
    """A schedule expression the local stack cannot read (it names the function and the event)."""


@dataclass(frozen=True)
class Schedule:
    function_id: str
    event_name: str
    expression: str
    kind: str = "ScheduleV2"
    timezone: str = "UTC"
    enabled: bool = True
    input: Any = None
    _start: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)

    @property
    def name(self) -> str:
        return f"{self.function_id}.{self.event_name}"

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing strictly after `after` (None: a one-time schedule already past)."""
        match = re.fullmatch(r"\s*(rate|cron|at)\((.*)\)\s*", self.expression)
        if not match:
            raise ScheduleError(f"{self.name}: unreadable schedule expression {self.expression!r}")
        kind, body = match.groups()
        if kind == "rate":
            period = rate_seconds(body, self.name)
            elapsed = (after - self._start).total_seconds()
            return self._start + timedelta(seconds=period * (int(elapsed // period) + 1))
        zone = ZoneInfo(self.timezone)
        if kind == "at":
            when = datetime.fromisoformat(body.strip()).replace(tzinfo=zone).astimezone(UTC)
            return when if when > after else None
        from croniter import croniter

        return croniter(croniter_expression(body, self.name), after.astimezone(zone)).get_next(datetime).astimezone(UTC)

    def event(self, at: datetime, region: str, account: str) -> Any:
        """What the target receives: the configured Input, else EventBridge's 'Scheduled Event'."""
        if self.input is not None:
            return json.loads(self.input) if isinstance(self.input, str) else self.input
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "0",
            "id": f"local-{self.name}-{stamp}",
            "detail-type": "Scheduled Event",
            "source": "aws.events" if self.kind == "Schedule" else "aws.scheduler",
            "account": account,
            "time": stamp,
            "region": region,
            "resources": [f"arn:aws:events:{region}:{account}:rule/{self.name}"],
            "detail": {},
        }


def rate_seconds(body: str, name: str = "schedule") -> int:
    match = re.fullmatch(r"\s*(\d+)\s+([a-z]+)\s*", body)
    if not match or match.group(2) not in _UNITS or int(match.group(1)) < 1:
        raise ScheduleError(f"{name}: rate({body}) must be 'N minute(s)|hour(s)|day(s)'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def croniter_expression(body: str, name: str = "schedule") -> str:
    """AWS `cron(m h dom mon dow year)` -> croniter's `m h dom mon dow second year`."""
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(f"{name}: cron({body}) needs six fields: minutes hours day-of-month month day-of-week year")
    minute, hour, dom, month, dow, year = ("*" if f == "?" else f for f in fields)
    return " ".join([minute, hour, dom, month, _weekdays(dow), "0", year])


def _weekdays(field_: str) -> str:
    """AWS numbers days 1 (SUN) - 7 (SAT); cron 0 (SUN) - 6 (SAT). `6L` (last Friday) is croniter's `L5`."""
    last = re.fullmatch(r"(\d)L", field_)
    if last:
        return f"L{int(last.group(1)) - 1}"
    return re.sub(r"(?<![/#\d])([1-7])(?!\d)", lambda m: str(int(m.group(1)) - 1), field_)


def schedules_of(functions: dict[str, Any], resolve: Any = lambda v: v) -> list[Schedule]:
    """Every Schedule/ScheduleV2 event of the template's functions."""
    found = []
    for spec in functions.values():
        for event_name, event in spec.events.items():
            if event.get("Type") not in SCHEDULE_TYPES:
                continue
            props = resolve(event.get("Properties", {}))
            state = str(props.get("State", "ENABLED")).upper()
            enabled = bool(props.get("Enabled", True)) and state != "DISABLED"
            found.append(
                Schedule(
                    function_id=spec.logical_id,
                    event_name=event_name,
                    expression=str(props["Schedule"] if event["Type"] == "Schedule" else props["ScheduleExpression"]),
                    kind=event["Type"],
                    timezone=str(props.get("ScheduleExpressionTimezone") or "UTC"),
                    enabled=enabled,
                    input=props.get("Input"),
                )
            )
    return found

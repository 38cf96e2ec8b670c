"""Time rules for reminders, pure functions: lead times, quiet hours and medication doses in a contact's time zone.

Everything that goes in or out is an aware UTC datetime; local wall-clock reasoning happens only in here, with
zoneinfo. Local times that do not exist (the hour skipped when clocks go forward) are read with the offset
before the change, i.e. they land that many minutes later on the new clock; local times that happen twice (the
hour repeated when clocks go back) mean the first occurrence. That is RFC 5545's rule for calendar events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d{1,2})W)?(?:(?P<days>\d{1,3})D)?(?:T(?:(?P<hours>\d{1,4})H)?(?:(?P<minutes>\d{1,5})M)?)?$"
)
MAX_LEAD = timedelta(days=60)
# The instants reminders can be planned for: far enough from datetime's year 1 and 9999 that every zone offset,
# lead time and the dose horizon stay representable. Appointments and medication schedules outside are refused
# at the edge (422), so nothing is stored that planning or showing in local time would fail on.
PLANNABLE_FROM = datetime(1970, 1, 1, tzinfo=UTC)
PLANNABLE_UNTIL = datetime(3000, 1, 1, tzinfo=UTC)


def plannable_instant(instant: datetime) -> datetime:
    """`instant` if reminders can be planned for it, else ValueError naming the range."""
    if not PLANNABLE_FROM <= instant < PLANNABLE_UNTIL:
        raise ValueError(f"must be from {PLANNABLE_FROM:%Y-%m-%d} and before {PLANNABLE_UNTIL:%Y-%m-%d} (UTC)")
    return instant


def plannable_day(day: date) -> date:
    """`day` if doses can be planned on it (in any zone), else ValueError naming the range."""
    if not PLANNABLE_FROM.date() < day < PLANNABLE_UNTIL.date() - timedelta(days=1):
        raise ValueError(f"must be after {PLANNABLE_FROM:%Y-%m-%d} and before {PLANNABLE_UNTIL:%Y-%m-%d}")
    return day


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `day at` in `tz` (gap -> shifted forward, repeated hour -> first)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def describe(instant: datetime, tz: ZoneInfo) -> str:
    """How a contact reads an instant: 'Sun 29 Mar 2099, 09:00 BST'."""
    local = instant.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {local.tzname()}"


# --- lead times --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LeadTime:
    """An ISO 8601 duration before an appointment, e.g. PT24H, PT2H, P1D, P1DT12H.

    As in RFC 5545, the day part (D, W) is nominal: calendar days in the contact's time zone, so P1D before a
    09:00 appointment is 09:00 the day before even across a DST change (23 or 25 hours). The time part (H, M)
    is exact elapsed time: PT24H is always 24 hours.
    """

    text: str
    days: int
    exact: timedelta

    @classmethod
    def parse(cls, text: str) -> LeadTime:
        match = _DURATION.match(text)
        if not match or text in ("P", "PT") or text.endswith("T"):
            raise ValueError(f"{text!r} is not an ISO 8601 duration like 'PT24H', 'PT2H', 'P1D' or 'PT30M'")
        parts = {k: int(v or 0) for k, v in match.groupdict().items()}
        days = parts["weeks"] * 7 + parts["days"]
        exact = timedelta(hours=parts["hours"], minutes=parts["minutes"])
        total = timedelta(days=days) + exact
        if total < timedelta(minutes=1) or total > MAX_LEAD:
            raise ValueError(f"{text!r} must be between 1 minute and {MAX_LEAD.days} days")
        return cls(text, days, exact)

    def before(self, instant: datetime, tz: ZoneInfo) -> datetime:
        at = instant
        if self.days:
            local = instant.astimezone(tz)
            at = local_instant(local.date() - timedelta(days=self.days), local.time().replace(tzinfo=None), tz)
        return at.astimezone(UTC) - self.exact


# --- quiet hours -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window (start inclusive, end exclusive) in which nothing should arrive; may span midnight."""

    start: time
    end: time

    def end_of_quiet(self, instant: datetime, tz: ZoneInfo) -> datetime | None:
        """When the quiet period containing `instant` ends (UTC), or None if `instant` is not in one."""
        local = instant.astimezone(tz)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            quiet, end_day = self.start <= now < self.end, local.date()
        else:  # spans midnight, e.g. 21:00-08:00
            quiet = now >= self.start or now < self.end
            end_day = local.date() + timedelta(days=1) if now >= self.start else local.date()
        return local_instant(end_day, self.end, tz) if quiet else None


def send_time(planned: datetime, tz: ZoneInfo, quiet: QuietHours | None, deadline: datetime | None) -> datetime:
    """When a reminder planned for `planned` goes out: at the end of the quiet period it falls in, if that is still
    before `deadline` (the appointment); otherwise at once, as planned."""
    if quiet is None:
        return planned
    end = quiet.end_of_quiet(planned, tz)
    if end is None or (deadline is not None and end >= deadline):
        return planned
    return end


# --- medication doses --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DoseRule:
    """A medication schedule's recurrence: wall-clock `times` each day, or every `every_hours` (elapsed) from
    `start_time` on `start_date`; between `start_date` and `end_date` (inclusive, local dates; None = ongoing)."""

    start_date: date
    end_date: date | None
    times: tuple[time, ...] = ()
    every_hours: int | None = None
    start_time: time = time(8, 0)

    def doses(self, tz: ZoneInfo, after: datetime, until: datetime) -> Iterator[datetime]:
        """Dose instants (UTC) with after < instant <= until, in order, each once."""
        last = local_instant(self.end_date + timedelta(days=1), time(0), tz) if self.end_date else None
        if last is not None:
            until = min(until, last - timedelta(microseconds=1))
        if until <= after:
            return
        if self.every_hours:
            step = timedelta(hours=self.every_hours)
            first = local_instant(self.start_date, self.start_time, tz)
            k = max(0, (after - first) // step)
            at = first + k * step
            while at <= until:
                if at > after:
                    yield at
                at += step
            return
        day = max(self.start_date, after.astimezone(tz).date() - timedelta(days=1))
        seen: set[datetime] = set()
        while True:
            if local_instant(day, time(0), tz) > until:
                return
            for at in sorted(local_instant(day, t, tz) for t in self.times):
                if after < at <= until and at not in seen:
                    seen.add(at)
                    yield at
            day += timedelta(days=1)

    def next_dose(self, tz: ZoneInfo, after: datetime) -> datetime | None:
        """The first dose after `after` (None once the schedule has ended), however far off its start is."""
        after = max(after, local_instant(self.start_date, time(0), tz) - timedelta(seconds=1))
        return next(self.doses(tz, after, after + timedelta(days=8)), None)  # every_hours <= 168

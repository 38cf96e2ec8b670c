"""The one clock: timezone-aware UTC. Capabilities take `now` from here (tests pass their own `now`)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

T = TypeVar("T")
monotonic = time.monotonic  # the clock run-time budgets read (read through this module, so tests can replace it)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Deadline:
    """A share of a run's time, on the monotonic clock. `bounded(items)` hands out items while time is left and
    notes when it stopped early (`cut_short`): what was not handed out waits for the next run."""

    def __init__(self, seconds: float) -> None:
        self.at = monotonic() + max(0.0, seconds)
        self.cut_short = False

    def remaining(self) -> float:
        return max(0.0, self.at - monotonic())

    def expired(self) -> bool:
        return monotonic() >= self.at

    def bounded(self, items: Iterable[T]) -> Iterator[T]:
        """The items, checked against the deadline before each one is fetched (a page query included)."""
        iterator = iter(items)
        while not self.expired():
            try:
                item = next(iterator)
            except StopIteration:
                return
            yield item
        self.cut_short = True


def as_utc(value: datetime) -> datetime:
    """An aware instant in UTC. One whose UTC form is outside datetime's years 1-9999 (0001-01-01T00:00+14:00,
    9999-12-31T23:00-12:00) becomes the nearest representable instant: as a bound it selects the same."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def iso_8601(value: Any) -> Any:
    """Only ISO 8601 text (or a datetime) is a date-time: pydantic would also read a number, or a string of one
    (`0`, `"0.5"`, `false`), as seconds since 1970, which the documented `date-time` format does not allow."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_8601.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2026-12-01T09:30:00+01:00")


def _instant() -> Any:
    from pydantic import AfterValidator, AwareDatetime, BeforeValidator

    return Annotated[AwareDatetime, BeforeValidator(iso_8601), AfterValidator(as_utc)]


# An instant the API takes (query bounds, run_at...): ISO 8601 with an offset, handed on in UTC, never
# overflowing later.
Instant = _instant()


@cache
def _zone_names() -> frozenset[str]:
    # 'localtime' and 'Factory' are files of some systems' zone directories, not places.
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError for anything else (abbreviations like 'CEST', paths, typos)."""
    if name not in _zone_names():
        raise ValueError(f"{name!r} is not an IANA time zone name (e.g. 'Europe/London', 'America/New_York')")
    return ZoneInfo(name)

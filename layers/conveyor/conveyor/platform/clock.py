"""The one clock: timezone-aware UTC. Capabilities take `now` from here (tests pass their own `now`)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware instant in UTC. One whose UTC form is outside datetime's years 1-9999 (0001-01-01T00:00+14:00,
    9999-12-31T23:00-12:00) becomes the nearest representable instant: as a bound it selects the same."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def _instant() -> Any:
    from pydantic import AfterValidator, AwareDatetime

    return Annotated[AwareDatetime, AfterValidator(as_utc)]


# An instant the API takes (query bounds, run_at...): with an offset, handed on in UTC, never overflowing later.
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

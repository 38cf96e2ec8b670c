"""The one clock: timezone-aware UTC. Capabilities take `now` from here (tests pass their own `now`)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones


def utcnow() -> datetime:
    return datetime.now(UTC)


@cache
def _zone_names() -> frozenset[str]:
    # 'localtime' and 'Factory' are files of some systems' zone directories, not places.
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError for anything else (abbreviations like 'CEST', paths, typos)."""
    if name not in _zone_names():
        raise ValueError(f"{name!r} is not an IANA time zone name (e.g. 'Europe/London', 'America/New_York')")
    return ZoneInfo(name)

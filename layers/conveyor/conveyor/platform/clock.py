"""The one clock: timezone-aware UTC. Capabilities take `now` from here (tests pass their own `now`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any


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

"""The one clock: timezone-aware UTC. Capabilities take `now` from here (tests pass their own `now`)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)

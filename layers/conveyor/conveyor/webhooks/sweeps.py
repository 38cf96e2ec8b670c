"""Webhooks' scheduled work: pending deliveries whose job was lost get a new one (see service.redeliver_overdue)."""

from __future__ import annotations

from datetime import datetime

from conveyor.webhooks import service


def redeliver_overdue(now: datetime) -> int:
    return service.redeliver_overdue(now)

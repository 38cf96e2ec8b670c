"""CRM sync's scheduled work: each connection's delta sync on its schedule (default hourly), and freeing
connections whose sync ended (their watermark moves then). Connections due carry `due_at` in the sparse
due-index; the sweep reads only those."""

from __future__ import annotations

from datetime import datetime

from conveyor.platform.clock import Deadline
from conveyor.sync import service


def run_schedules(now: datetime, deadline: Deadline | None = None) -> int:
    return service.run_schedules(now, deadline or Deadline(20.0))

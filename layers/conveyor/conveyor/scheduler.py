"""The one-minute scheduler: every sweep that moves due work forward. Each sweep is idempotent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from conveyor.jobs.store import utcnow
from conveyor.jobs.sweep import release_due_jobs
from conveyor.reminders.sweep import sweep_reminders

Sweep = Callable[[datetime], int]

SWEEPS: tuple[Sweep, ...] = (release_due_jobs, sweep_reminders)


def run(now: datetime | None = None) -> dict[str, int]:
    at = now or utcnow()
    return {sweep.__name__: sweep(at) for sweep in SWEEPS}

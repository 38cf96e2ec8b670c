"""Processes: long-running work fanned out into batches (jobs) and fanned back in with exact counts.

Public API for other capabilities (sync, reports, reminders campaigns...): declare a process type with
`process_type(...)` next to its two job types (a driver that declares batches through `ctx.process.add_batches`
and calls `ctx.process.fetch_done()`, and a batch job that calls `ctx.process.record(...)` once), and start
processes with `start(...)`. Everything else is private to this package.
"""

from conveyor.processes.domain import ChildPolicy, ErrorSample, Process, Progress, State, Tolerance, progress
from conveyor.processes.service import ProcessType, StartSpec, process_type, require, start


def find(tenant_id: str, process_id: str) -> Process | None:
    """The tenant's process (strongly consistent), or None."""
    from conveyor.processes import repository

    return repository.get(tenant_id, process_id, consistent=True)


__all__ = [
    "ChildPolicy",
    "ErrorSample",
    "Process",
    "ProcessType",
    "Progress",
    "StartSpec",
    "State",
    "Tolerance",
    "find",
    "process_type",
    "progress",
    "require",
    "start",
]

"""The one list of capabilities: each one's router (and the /v1 path segments it serves), job type modules and
sweeps.

The API, the worker and the scheduler compose themselves from this list. Adding a capability is one package and
one `Capability(...)` line here. Everything is named by import path and loaded on first use, so a function only
imports what it serves (the worker never imports routes, the API never imports job handlers' heavy deps, and a
request for /v1/jobs/... never imports the reports capability's routes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from conveyor.jobs import registry
from conveyor.platform import events
from conveyor.platform.clock import Deadline


@dataclass(frozen=True)
class Capability:
    name: str
    router: str | None = None  # "module:attribute" of a Powertools Router, mounted under /v1
    # The first path segments under /v1 its router serves ("jobs": /v1/jobs, /v1/jobs/<id>...): the API mounts the
    # router on the first request for one of them (a unit test checks them against the router's routes).
    segments: tuple[str, ...] = ()
    job_modules: tuple[str, ...] = ()  # modules whose @job_type handlers register on import
    sweeps: tuple[str, ...] = ()  # "module:function" run by the one-minute scheduler, in this order
    # "module:function" turning a committed change of this capability's items into domain events
    # (conveyor.platform.events.EventMapper); the webhooks capability consumes the tables' streams.
    events: str | None = None
    # "module:attribute" of the jobs engine's ProcessPort (conveyor.jobs.registry): how processes join the engine
    # without jobs importing them.
    process_port: str | None = None
    # (path prefix, "module:function") of a capability that answers whole HTTP requests outside /v1 (e.g. the
    # dashboard's HTML pages); the API function imports the module on the first request under that prefix only.
    pages: tuple[str, str] | None = None


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "jobs",
        router="conveyor.jobs.api:router",
        segments=("jobs",),
        job_modules=("conveyor.email.jobs",),
        sweeps=(
            "conveyor.jobs.sweeps:release_due_jobs",
            "conveyor.jobs.sweeps:recover_lost_jobs",
        ),
        events="conveyor.jobs.events:map_change",
    ),
    Capability(
        "notify",
        router="conveyor.notify.api:router",
        segments=("contacts", "notifications"),
        job_modules=("conveyor.notify.jobs",),
        events="conveyor.notify.events:map_change",
    ),
    Capability(
        "reminders",
        router="conveyor.reminders.api:router",
        segments=("appointments", "medication-schedules", "reminders", "reminder-policy"),
        job_modules=("conveyor.reminders.jobs", "conveyor.reminders.campaign"),
        sweeps=("conveyor.reminders.sweeps:sweep_reminders",),
        events="conveyor.reminders.events:map_change",
    ),
    # Admin's bulk operations on jobs (DELETE /v1/jobs, POST /v1/jobs/retry-failed) share the "jobs" segment: a
    # request for it mounts both routers, in this list's order.
    Capability("admin", router="conveyor.admin.routes:router", segments=("queues", "jobs")),
    Capability(
        "webhooks",
        router="conveyor.webhooks.api:router",
        segments=("webhooks",),
        job_modules=("conveyor.webhooks.jobs",),
        sweeps=("conveyor.webhooks.sweeps:redeliver_overdue",),
        events="conveyor.webhooks.events:map_change",
    ),
    Capability(
        "processes",
        router="conveyor.processes.api:router",
        segments=("processes",),
        job_modules=("conveyor.processes.jobs",),
        sweeps=("conveyor.processes.sweeps:sweep_stalled_processes",),
        events="conveyor.processes.events:map_change",
        process_port="conveyor.processes.jobs:port",
    ),
    Capability(
        "sync",
        router="conveyor.sync.api:router",
        segments=("connectors", "connections"),
        job_modules=("conveyor.sync.jobs",),
        sweeps=("conveyor.sync.sweeps:run_schedules",),
    ),
    Capability(
        "reports",
        router="conveyor.reports.api:router",
        segments=("reports", "report-types"),
        job_modules=("conveyor.reports.jobs",),
    ),
    Capability("dashboard", pages=("/dashboard", "conveyor.dashboard.web:handle")),
)

# A sweep: (the run's instant, its share of the run's time) -> how much it did. It stops at the deadline
# (Deadline.bounded) and leaves the rest for the next run.
Sweep = Callable[[datetime, Deadline], int]


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def load_router(capability: Capability) -> Any:
    """The capability's Powertools Router (its module imported on first use)."""
    if capability.router is None:
        raise LookupError(f"capability {capability.name!r} serves no /v1 routes")
    return _resolve_cached(capability.router)


def serving(segment: str) -> tuple[Capability, ...]:
    """The capabilities whose routers serve /v1/<segment>..., in list order (none: no route there, a 404)."""
    return _by_segment().get(segment, ())


@cache
def _by_segment() -> dict[str, tuple[Capability, ...]]:
    found: dict[str, tuple[Capability, ...]] = {}
    for capability in CAPABILITIES:
        for segment in capability.segments:
            found[segment] = (*found.get(segment, ()), capability)
    return found


@cache
def sweeps() -> tuple[Sweep, ...]:
    return tuple(_resolve(path) for capability in CAPABILITIES for path in capability.sweeps)


def pages_for(path: str) -> Callable[[dict[str, Any], Any], dict[str, Any]] | None:
    """The handler of the capability serving `path` outside /v1 (loaded on first use), or None."""
    for capability in CAPABILITIES:
        if capability.pages:
            prefix, target = capability.pages
            if path == prefix or path.startswith(prefix + "/"):
                return _resolve_cached(target)
    return None


@cache
def _resolve_cached(path: str) -> Any:
    return _resolve(path)


def job_modules() -> tuple[str, ...]:
    return tuple(module for capability in CAPABILITIES for module in capability.job_modules)


def install() -> None:
    """Hand the job registry its modules and platform.events its mappers (both imported lazily, on first use).
    They sit below every capability and cannot import this list, so each composition root (API, worker,
    scheduler, events) calls this."""
    registry.use_modules(job_modules())
    registry.use_process_port(next((c.process_port for c in CAPABILITIES if c.process_port), None))
    events.use_sources(tuple(capability.events for capability in CAPABILITIES if capability.events))

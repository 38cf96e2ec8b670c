"""The one list of capabilities: each one's router, job type modules and sweeps.

The API, the worker and the scheduler compose themselves from this list. Adding a capability is one package and
one `Capability(...)` line here. Everything is named by import path and loaded on first use, so a function only
imports what it serves (the worker never imports routes, the API never imports job handlers' heavy deps).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from conveyor.jobs import registry


@dataclass(frozen=True)
class Capability:
    name: str
    router: str | None = None  # "module:attribute" of a Powertools Router, mounted under /v1
    job_modules: tuple[str, ...] = ()  # modules whose @job_type handlers register on import
    sweeps: tuple[str, ...] = ()  # "module:function" run by the one-minute scheduler, in this order
    # "module:function" turning a committed change of this capability's items into domain events
    # (conveyor.platform.events.EventMapper); the webhooks capability consumes the tables' streams.
    events: str | None = None
    # (path prefix, "module:function") of a capability that answers whole HTTP requests outside /v1 (e.g. the
    # dashboard's HTML pages); the API function imports the module on the first request under that prefix only.
    pages: tuple[str, str] | None = None


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "jobs",
        router="conveyor.jobs.api:router",
        job_modules=("conveyor.email.jobs",),
        sweeps=("conveyor.jobs.sweeps:release_due_jobs", "conveyor.jobs.sweeps:recover_stalled_jobs"),
        events="conveyor.jobs.events:map_change",
    ),
    Capability(
        "notify",
        router="conveyor.notify.api:router",
        job_modules=("conveyor.notify.jobs",),
        events="conveyor.notify.events:map_change",
    ),
    Capability(
        "reminders",
        router="conveyor.reminders.api:router",
        job_modules=("conveyor.reminders.jobs",),
        sweeps=("conveyor.reminders.sweeps:sweep_reminders",),
        events="conveyor.reminders.events:map_change",
    ),
    Capability("admin", router="conveyor.admin.routes:router"),
    Capability(
        "webhooks",
        router="conveyor.webhooks.api:router",
        job_modules=("conveyor.webhooks.jobs",),
        sweeps=("conveyor.webhooks.sweeps:redeliver_overdue",),
        events="conveyor.webhooks.events:map_change",
    ),
    Capability("dashboard", pages=("/dashboard", "conveyor.dashboard.web:handle")),
)

Sweep = Callable[[datetime], int]


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def routers() -> Iterator[Any]:
    for capability in CAPABILITIES:
        if capability.router:
            yield _resolve(capability.router)


@cache
def sweeps() -> tuple[Sweep, ...]:
    return tuple(_resolve(path) for capability in CAPABILITIES for path in capability.sweeps)


def event_mappers() -> tuple[Any, ...]:
    return tuple(_resolve(capability.events) for capability in CAPABILITIES if capability.events)


def event_catalogue() -> tuple[Any, ...]:
    """Every capability's documented event types (`CATALOGUE` beside its mapper), in list order."""
    found: list[Any] = []
    for capability in CAPABILITIES:
        if capability.events:
            module = importlib.import_module(capability.events.partition(":")[0])
            found += getattr(module, "CATALOGUE", ())
    return tuple(found)


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
    """Hand the job registry its modules (imported lazily, on the first lookup). The registry sits below every
    capability and cannot import this list, so each composition root (API, worker, scheduler) calls this."""
    registry.use_modules(job_modules())

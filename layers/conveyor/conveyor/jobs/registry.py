"""The job type registry: type name -> payload model, queue family, handler and retry policy.

Adding a job type is one module (payload model + handler + `@job_type(...)`) named in its capability's
`job_modules` (conveyor/capabilities.py, which hands the list to `use_modules`).
Handler modules import their heavy dependencies inside the handler, so the API can validate payloads cheaply.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from conveyor.platform.errors import InvalidInput

MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's ceiling for a message's visibility timeout


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2^(n-1))) seconds."""

    max_attempts: int = 3
    base_seconds: int = 10
    cap_seconds: int = 900
    max_defers: int = 10  # RetryLater deferrals allowed per run, and...
    max_defer_total_seconds: int = 6 * 3600  # ...their total span, so a job cannot be deferred forever
    max_continues: int = 200  # checkpoint-and-continue runs allowed (Continue), so a job cannot loop forever

    def backoff(self, attempt: int, rng: random.Random | None = None) -> int:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1), MAX_VISIBILITY_SECONDS)
        return max(1, int((rng or random).uniform(0, ceiling)))  # noqa: S311 - jitter, not security


class Continue(Exception):  # noqa: N818 - a request to the worker, not an error
    """Raised by a handler whose work outlasts its invocation: the job is requeued with `state` saved (the next
    run reads it as `ctx.checkpoint`), without spending an attempt. Bounded by RetryPolicy.max_continues."""

    def __init__(self, state: Any) -> None:
        super().__init__("continue from a checkpoint")
        self.state = state


@dataclass(frozen=True)
class JobRef:
    """What the engine tells the process port about a job that belongs to a process."""

    tenant_id: str
    job_id: str
    type: str
    queue: str
    payload: dict[str, Any]
    process_id: str
    batch_key: str | None  # None: the process's own job (its fetch / driver); else the batch it runs


class ProcessPort(Protocol):
    """The seam through which the processes capability (above jobs) joins in; jobs never imports it.

    admit   before a process's job runs: None to run it, or a reason not to (paused: parked; finished: skipped)
    handle  the `ctx.process` object handed to the handler
    failed  the job failed for good (its batch counts as failed; a failed fetch fails the process)
    """

    def admit(self, job: JobRef) -> str | None: ...

    def handle(self, job: JobRef) -> Any: ...

    def failed(self, job: JobRef, error_type: str, message: str) -> None: ...


@dataclass(frozen=True)
class JobContext:
    """What a running handler knows about its job, and its levers.

    report_progress(percent) -> False once this attempt no longer owns the job (lease lost, cancelled): stop.
    remaining_seconds()      time left in this invocation (before the worker's safety margin).
    checkpoint               the state saved by the last `Continue`, None on a fresh run.
    process                  the process this job belongs to (add_batches, fetch_done, record, context), or None.
    """

    job_id: str
    tenant_id: str
    type: str
    attempt: int
    report_progress: Callable[[int], bool] = field(repr=False)
    max_attempts: int = 1  # attempt == max_attempts: the last try (a handler may then give up gracefully)
    checkpoint: Any = None
    process: Any = field(default=None, repr=False)
    remaining: Callable[[], float] = field(default=lambda: 60.0, repr=False)

    def remaining_seconds(self) -> float:
        return max(0.0, self.remaining())


Handler = Callable[[Any, JobContext], dict[str, Any] | None]


@dataclass(frozen=True)
class Scopes:
    """What a caller of /v1/jobs needs, besides jobs:read / jobs:write, for jobs of one type. A type that acts on
    another capability's data (notification.send reaches a tenant's contacts) requires that capability's scopes,
    so /v1/jobs never lets a key do or see what the capability's own routes would refuse it."""

    read: str | None = None  # to list or read jobs of this type
    write: str | None = None  # to enqueue, cancel or retry them


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    payload_model: type[BaseModel]
    handler: Handler
    retry: RetryPolicy
    scopes: Scopes = Scopes()


_TYPES: dict[str, JobType] = {}
_modules: tuple[str, ...] = ()
_loaded = False
_process_port: str | None = None  # "module:attribute", resolved on the first job that belongs to a process


def use_process_port(path: str | None) -> None:
    """Name the ProcessPort implementation (given by the composition root, conveyor.capabilities)."""
    global _process_port
    _process_port = path


def process_port() -> ProcessPort | None:
    if not _process_port:
        return None
    module, _, attribute = _process_port.partition(":")
    return getattr(importlib.import_module(module), attribute)


def use_modules(modules: tuple[str, ...]) -> None:
    """The job type modules to import on first lookup (given by the composition root, conveyor.capabilities)."""
    global _modules, _loaded
    if modules != _modules:
        _modules, _loaded = modules, False


def job_type(
    name: str,
    *,
    queue: str,
    payload: type[BaseModel],
    retry: RetryPolicy | None = None,
    scopes: Scopes | None = None,
):
    """Register the decorated function as the handler of job type `name` (`scopes`: see Scopes)."""

    def register(handler: Handler) -> Handler:
        _TYPES[name] = JobType(name, queue, payload, handler, retry or RetryPolicy(), scopes or Scopes())
        return handler

    return register


def _load() -> dict[str, JobType]:
    global _loaded
    if not _loaded:
        for module in _modules:
            importlib.import_module(module)
        _loaded = True
    return _TYPES


def load_all() -> None:
    """Import every job module now. Job modules also register their capability's hooks with lower capabilities
    (notify's `on_behalf_of`, `on_contact_changed`): a capability about to call such hooks loads them first, so a
    fresh instance that has run no job yet still calls every hook."""
    _load()


def get(name: str) -> JobType | None:
    return _load().get(name)


def names() -> list[str]:
    return sorted(_load())


def unreadable_by(allows: Callable[[str], bool]) -> list[str]:
    """The job types whose read scope a caller (its `allows`) lacks: hidden from its job listings."""
    return sorted(t.name for t in _load().values() if t.scopes.read and not allows(t.scopes.read))


def require(name: str) -> JobType:
    found = get(name)
    if found is None:
        raise InvalidInput(
            f"unknown job type {name!r}",
            fields=[{"loc": ["type"], "msg": f"must be one of: {', '.join(names())}"}],
        )
    return found

"""Processes: the record, its states and allowed transitions, tolerance, progress, rate and ETA. Pure, no I/O.

A process fans work out into batches (each a job of the jobs engine) and fans their outcomes back in. Counters
only ever grow through one committed outcome per batch (see repository.record_batch); everything a reader sees
about speed (rate, ETA, percent) is derived here from counters and snapshots, never stored by a worker.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

MAX_ERROR_SAMPLES = 100  # what GET /errors returns at most (the newest)
ERRORS_PER_BATCH = 3  # samples kept per batch outcome (each is a small item written with the outcome)
EWMA_ALPHA = 0.1
SNAPSHOT_SPACING_SECONDS = 10
MAX_SNAPSHOTS = 30
STALL_AFTER_SECONDS = 600  # a running process with no heartbeat for this long is stalled
MAX_COUNTER_SHARDS = 32


class State(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({State.COMPLETED, State.COMPLETED_WITH_ERRORS, State.FAILED, State.CANCELLED})

# to-state -> the states it may come from; every transition in the repository is conditional on exactly these.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.RUNNING: frozenset({State.PENDING, State.PAUSED}),  # begin / resume
    State.PAUSED: frozenset({State.RUNNING}),
    State.COMPLETED: frozenset({State.RUNNING}),
    State.COMPLETED_WITH_ERRORS: frozenset({State.RUNNING}),
    State.FAILED: frozenset({State.PENDING, State.RUNNING, State.PAUSED}),
    State.CANCELLED: frozenset({State.PENDING, State.RUNNING, State.PAUSED}),
}


def allowed_from(target: State) -> frozenset[State]:
    return TRANSITIONS.get(target, frozenset())


class ChildPolicy(StrEnum):
    """What a child's failure (failed or cancelled) does to its parent.

    fail_parent      the parent fails at once (its remaining batches are not run)
    ignore           (default) the failure is recorded on the parent, which still waits for its other children
                     and ends `completed_with_errors`
    continue_parent  the failure is recorded and the parent stops waiting for its children: it finishes as soon
                     as its own batches are done (BullMQ's continueParentOnFailure)
    """

    FAIL_PARENT = "fail_parent"
    IGNORE = "ignore"
    CONTINUE_PARENT = "continue_parent"


@dataclass(frozen=True)
class Tolerance:
    """Step Functions semantics: the process fails when failures EXCEED a threshold (equal is tolerated); with
    both set, exceeding either fails it; with neither set nothing is tolerated (any failure fails it)."""

    count: int | None = None
    percent: float | None = None

    def exceeded(self, failed: int, total: int | None) -> bool:
        if failed <= 0:
            return False
        if self.count is None and self.percent is None:
            return True
        if self.count is not None and failed > self.count:
            return True
        # percent is judged against the total once it is known (declared, or everything processed)
        return self.percent is not None and total is not None and total > 0 and failed * 100 > self.percent * total


@dataclass(frozen=True)
class Counters:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    batches_done: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.processed + other.processed,
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.skipped + other.skipped,
            self.batches_done + other.batches_done,
        )


@dataclass(frozen=True)
class Outcome:
    """One batch's outcome, committed once."""

    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    errors: tuple[ErrorSample, ...] = ()

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.skipped

    def __post_init__(self) -> None:
        if min(self.succeeded, self.failed, self.skipped) < 0:
            raise ValueError("outcome counts cannot be negative")


@dataclass(frozen=True)
class ErrorSample:
    record_id: str | None
    message: str
    at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    processed: int


@dataclass(frozen=True)
class Children:
    total: int = 0
    done: int = 0
    failed: int = 0
    released: bool = False  # a continue_parent child failed: the parent no longer waits for its children

    @property
    def settled(self) -> bool:
        return self.released or self.done >= self.total


@dataclass
class Process:
    id: str
    tenant_id: str
    type: str
    name: str
    state: State
    params: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] | None = None
    parent_id: str | None = None
    child_policy: ChildPolicy | None = None
    expected_total: int | None = None
    counters: Counters = field(default_factory=Counters)
    batches_total: int = 0
    fetch_done: bool = False
    counter_shards: int = 0
    tolerance: Tolerance = field(default_factory=Tolerance)
    children: Children = field(default_factory=Children)
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    heartbeat_at: datetime | None = None
    stalled_at: datetime | None = None
    snapshots: tuple[Snapshot, ...] = ()

    @property
    def all_batches_done(self) -> bool:
        return self.fetch_done and self.counters.batches_done >= self.batches_total

    @property
    def total(self) -> int | None:
        """The item count percentages are judged against: declared, else known once every batch is done."""
        if self.expected_total is not None:
            return self.expected_total
        return self.counters.processed if self.all_batches_done else None

    def outcome_state(self) -> State | None:
        """Where the completion gate takes a running process, or None while it must keep waiting."""
        if self.state is not State.RUNNING or not self.all_batches_done or not self.children.settled:
            return None
        if self.tolerance.exceeded(self.counters.failed, self.total):
            return State.FAILED
        if self.counters.failed or self.children.failed:
            return State.COMPLETED_WITH_ERRORS
        return State.COMPLETED

    def over_tolerance(self) -> bool:
        """Failures already exceed the tolerance: fail now, run no further batches."""
        return not self.state.finished and self.tolerance.exceeded(self.counters.failed, self.total)


# --- rate, ETA, percent: computed on read --------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    percent: float | None
    indeterminate: bool
    rate_per_second: float | None  # overall: processed / elapsed
    smoothed_rate_per_second: float | None  # EWMA over snapshots >= 10 s apart
    eta_at: datetime | None
    eta_seconds: float | None  # from `as_of`
    as_of: datetime | None


def smoothed_rate(snapshots: list[Snapshot] | tuple[Snapshot, ...], alpha: float = EWMA_ALPHA) -> float | None:
    """EWMA of the rates between consecutive snapshots at least SNAPSHOT_SPACING_SECONDS apart (closer ones are
    skipped), seeded with the first interval's rate. None with fewer than two usable snapshots."""
    usable: list[Snapshot] = []
    for snap in sorted(snapshots, key=lambda s: s.at):
        if not usable or (snap.at - usable[-1].at).total_seconds() >= SNAPSHOT_SPACING_SECONDS:
            usable.append(snap)
    ewma: float | None = None
    for before, after in zip(usable, usable[1:], strict=False):
        rate = max(0, after.processed - before.processed) / (after.at - before.at).total_seconds()
        ewma = rate if ewma is None else alpha * rate + (1 - alpha) * ewma
    return ewma


def progress(process: Process, as_of: datetime | None) -> Progress:
    """Derived from the record alone (no wall clock), so an unchanged process reads the same: its ETag holds.

    `as_of` is when the counters last changed. Percent is capped below 100 until the process is finished; ETA is
    null and `indeterminate` true while the total is unknown."""
    processed = process.counters.processed
    end = process.finished_at or as_of
    rate = None
    if process.started_at and end and end > process.started_at:
        rate = processed / (end - process.started_at).total_seconds()
    snaps = list(process.snapshots)
    if as_of is not None and not process.state.finished:
        snaps.append(Snapshot(as_of, processed))
    smooth = smoothed_rate(snaps)
    total = process.expected_total
    if process.state in (State.COMPLETED, State.COMPLETED_WITH_ERRORS):
        return Progress(100.0, False, rate, smooth, process.finished_at, 0.0, as_of)
    if total is None:
        return Progress(None, True, rate, smooth, None, None, as_of)
    percent = 100.0 * processed / total if total else 0.0
    percent = min(percent, 99.9) if not process.state.finished else min(percent, 100.0)
    eta_seconds = eta_at = None
    speed = smooth if smooth else rate
    if not process.state.finished and speed and as_of is not None:
        eta_seconds = max(0, total - processed) / speed
        eta_at = as_of + timedelta(seconds=eta_seconds)
    return Progress(round(percent, 1), False, rate, smooth, eta_at, eta_seconds, as_of)


def next_snapshots(current: tuple[Snapshot, ...], snap: Snapshot) -> tuple[Snapshot, ...] | None:
    """The snapshot list with `snap` added, or None if the last one is less than 10 s older (nothing to write)."""
    if current and (snap.at - current[-1].at).total_seconds() < SNAPSHOT_SPACING_SECONDS:
        return None
    return (*current, snap)[-MAX_SNAPSHOTS:]


def shard_of(batch_key: str, shards: int) -> int:
    """The counter shard (and ledger partition) a batch commits to: stable, spread evenly."""
    return zlib.crc32(batch_key.encode()) % max(1, shards)

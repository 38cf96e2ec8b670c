"""Processes' domain events, from the processes table's stream: a process started, completed, failed or was
cancelled.

Named in conveyor/capabilities.py (`events=`); the webhooks capability consumes ProcessesTable's stream (the
EventsFunction's ProcessEvents mapping in template.yaml) and calls `map_change` for each record. Only process
records (pk `tenant#...`, sk `prc_<ULID>`) produce events:
  process.started    pending -> running (its first job began)
  process.completed  -> completed or completed_with_errors (`state` tells which)
  process.failed     -> failed (over its failure tolerance, a fail_parent child failed, or failed by hand)
  process.cancelled  -> cancelled
Batches, ledger items, counter shards, error samples and heartbeats produce none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.platform.events import Change, DomainEvent, EventType, event

TABLE = "ProcessesTable"
_COUNTERS = ("processed", "succeeded", "failed", "skipped", "batches_total", "batches_done")
_BY_STATE = {
    "completed": "process.completed",
    "completed_with_errors": "process.completed",
    "failed": "process.failed",
    "cancelled": "process.cancelled",
}


class ProcessEventData(BaseModel):
    process_id: str = Field(examples=["prc_01JDX3Q7ZV5J1M9S2K8T4W6Y0A"])
    process_type: str = Field(examples=["reminders.campaign"])
    name: str | None = None
    state: str = Field(description="running | completed | completed_with_errors | failed | cancelled")
    parent_id: str | None = Field(default=None, description="the parent process, for a child")
    expected_total: int | None = Field(default=None, ge=0, description="the declared item count, if known")
    processed: int = Field(default=0, ge=0)
    succeeded: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    batches_total: int = Field(default=0, ge=0)
    batches_done: int = Field(default=0, ge=0)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, description="process.failed: why")


_SAMPLE = {
    "process_id": "prc_01JDX3Q7ZV5J1M9S2K8T4W6Y0A",
    "process_type": "reminders.campaign",
    "name": "December check-ups",
    "state": "completed",
    "expected_total": 10000,
    "processed": 10000,
    "succeeded": 10000,
    "batches_total": 100,
    "batches_done": 100,
    "started_at": "2026-12-01T10:00:00Z",
    "finished_at": "2026-12-01T10:04:10Z",
}
CATALOGUE = (
    EventType(
        "process.started",
        "A process began (its first batch started).",
        ProcessEventData,
        {**_SAMPLE, "state": "running", "processed": 0, "succeeded": 0, "batches_done": 0, "finished_at": None},
    ),  # fmt: skip
    EventType(
        "process.completed",
        "A process finished: every batch and child done, failures within its tolerance "
        "(`state` completed_with_errors when some failed).",
        ProcessEventData,
        _SAMPLE,
    ),
    EventType(
        "process.failed",
        "A process failed: failures exceeded its tolerance, a fail_parent child failed, or it was failed by hand.",
        ProcessEventData,
        {**_SAMPLE, "state": "failed", "succeeded": 9000, "failed": 1000, "error": "failures exceeded the tolerance"},
    ),
    EventType(
        "process.cancelled",
        "A process was cancelled (no batch started after it; running ones finished).",
        ProcessEventData,
        {**_SAMPLE, "state": "cancelled", "processed": 4200, "succeeded": 4200, "batches_done": 42},
    ),
)


def _is_process(image: dict[str, Any] | None) -> bool:
    if not image:
        return False
    sk, pk = str(image.get("sk", "")), str(image.get("pk", ""))
    return pk.startswith("tenant#") and sk.startswith("prc_") and "#" not in sk


def _data(image: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "process_id": image["sk"],
        "process_type": image.get("type") or "",
        "name": image.get("name"),
        "state": image.get("state"),
        "parent_id": image.get("parent_id"),
        "expected_total": image.get("expected_total"),
        "started_at": image.get("started_at"),
        "finished_at": image.get("finished_at"),
        "error": image.get("error"),
    }
    data.update({name: int(image.get(name) or 0) for name in _COUNTERS})
    return ProcessEventData.model_validate(data).model_dump(mode="json")


def map_change(change: Change) -> list[DomainEvent]:
    new = change.new
    if change.table != TABLE or not _is_process(new):
        return []
    assert new is not None  # noqa: S101 - _is_process checked it
    tenant = str(new.get("tenant_id", ""))
    if change.moved("state", "running") and (change.old or {}).get("state") in (None, "pending"):
        return [event(change, "process.started", tenant, _data(new))]
    for state, event_type in _BY_STATE.items():
        if change.moved("state", state):
            return [event(change, event_type, tenant, _data(new))]
    return []

"""The jobs engine's domain events: a job reached `completed` or `failed` (from the jobs table's stream).

Webhook deliveries run as jobs too (`webhook.*` types); they never announce themselves, or every delivery
would cause another one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.platform.events import Change, DomainEvent, EventType, event

TABLE = "JobsTable"
QUIET_PREFIXES = ("webhook.",)


class JobError(BaseModel):
    type: str
    message: str


class JobEventData(BaseModel):
    job_id: str = Field(examples=["job_01JDX3Q7ZV5J1M9S2K8T4W6Y0A"])
    job_type: str = Field(examples=["email.send"])
    queue: str
    attempts: int = Field(ge=0)
    finished_at: datetime | None = None
    result: Any = Field(default=None, description="job.completed: what the handler returned")
    error: JobError | None = Field(default=None, description="job.failed: why")


_SAMPLE = {
    "job_id": "job_01JDX3Q7ZV5J1M9S2K8T4W6Y0A",
    "job_type": "email.send",
    "queue": "email",
    "attempts": 1,
    "finished_at": "2026-12-01T10:00:00Z",
}
CATALOGUE = (
    EventType("job.completed", "A job finished successfully.", JobEventData, {**_SAMPLE, "result": {"sent": 1}}),
    EventType(
        "job.failed",
        "A job failed for good (attempts spent, or a permanent error).",
        JobEventData,
        {**_SAMPLE, "attempts": 3, "error": {"type": "PermanentError", "message": "address rejected"}},
    ),
)


def _json(value: Any) -> Any:
    """The job's result as the handler returned it (stored as a JSON string)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _number(value: Any) -> int:
    return int(value or 0)


def map_change(change: Change) -> list[DomainEvent]:
    new = change.new
    if change.table != TABLE or new is None or not change.key().startswith("job_"):
        return []
    if str(new.get("type", "")).startswith(QUIET_PREFIXES):
        return []
    for state in ("completed", "failed"):
        if change.moved("state", state):
            data: dict[str, Any] = {
                "job_id": new["sk"],
                "job_type": new.get("type"),
                "queue": new.get("queue"),
                "attempts": _number(new.get("attempts")),
                "finished_at": new.get("finished_at"),
            }
            if state == "completed":
                data["result"] = _json(new.get("result"))
            else:
                data["error"] = new.get("error")
            return [
                event(
                    change, f"job.{state}", new["tenant_id"], JobEventData.model_validate(data).model_dump(mode="json")
                )
            ]
    return []

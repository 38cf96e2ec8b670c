"""The jobs API's request and response shapes (pydantic; they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from conveyor.jobs.store import STATES, JobRecord

JobState = Literal["scheduled", "queued", "active", "retrying", "completed", "failed", "cancelled"]
assert set(get_args(JobState)) == set(STATES)  # noqa: S101 - the two lists must not drift

MAX_SCHEDULE_DAYS = 365


class EnqueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100, examples=["email.send"])
    payload: dict[str, Any] = Field(default_factory=dict)
    run_at: AwareDatetime | None = Field(default=None, description="Run at (or after) this instant.")
    delay_seconds: int | None = Field(default=None, ge=0, le=MAX_SCHEDULE_DAYS * 86400)
    max_attempts: int | None = Field(default=None, ge=1, le=10)

    @model_validator(mode="after")
    def _one_schedule(self) -> EnqueueRequest:
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        if self.run_at is not None and self.run_at > datetime.now(UTC) + timedelta(days=MAX_SCHEDULE_DAYS):
            raise ValueError(f"run_at can be at most {MAX_SCHEDULE_DAYS} days ahead")
        return self


class JobError(BaseModel):
    type: str
    message: str


class TimelineEvent(BaseModel):
    state: JobState
    at: datetime
    note: str | None = None


class Job(BaseModel):
    id: str
    type: str
    queue: str
    state: JobState
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    progress: int = Field(ge=0, le=100)
    result: Any = None
    error: JobError | None = None
    run_at: datetime | None = None
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timeline: list[TimelineEvent] = Field(default_factory=list)

    @classmethod
    def of(cls, record: JobRecord) -> Job:
        return cls(
            id=record.id,
            type=record.type,
            queue=record.queue,
            state=record.state,
            payload=record.payload or {},
            attempts=int(record.attempts),
            max_attempts=int(record.max_attempts),
            progress=int(record.progress),
            result=record.result,
            error=record.error.as_dict() if record.error else None,
            run_at=record.run_at,
            idempotency_key=record.idempotency_key,
            created_at=record.created_at,
            updated_at=record.updated_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            timeline=[TimelineEvent(state=e.state, at=e.at, note=e.note) for e in record.timeline or []],
        )


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")

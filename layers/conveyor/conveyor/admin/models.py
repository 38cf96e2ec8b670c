"""The admin API's request and response shapes (pydantic; they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from conveyor.jobs.api import JobError, JobState
from conveyor.platform.clock import Instant


class Messages(BaseModel):
    visible: int = Field(description="Waiting to be picked up (ApproximateNumberOfMessages).")
    in_flight: int = Field(description="Received and not yet deleted, incl. jobs waiting out a retry backoff.")
    delayed: int = Field(description="Sent with a delay that has not passed yet.")


class DeadLetters(BaseModel):
    depth: int = Field(description="Messages in the queue's dead-letter queue (all tenants).")
    oldest_age_seconds: int | None = Field(
        default=None, description="Age of the oldest of up to 10 sampled DLQ messages, since first sent."
    )


class JobCounts(BaseModel):
    by_state: dict[JobState, int]
    completed_last_hour: int
    failed_last_hour: int
    completed_per_minute: list[int] = Field(
        default_factory=lambda: [0] * 60, description="Jobs completed in each of the last 60 minutes, oldest first."
    )
    failed_per_minute: list[int] = Field(
        default_factory=lambda: [0] * 60, description="Jobs failed in each of the last 60 minutes, oldest first."
    )


class QueueStatus(BaseModel):
    name: str
    messages: Messages
    dead_letters: DeadLetters
    paused: bool | None = Field(description="The worker's event source mapping is disabled (null: not known).")
    mapping_state: str | None = None
    jobs: JobCounts = Field(description="The caller's jobs in this queue created within `jobs_window`.")


class CountWindow(BaseModel):
    since: datetime = Field(description="Jobs created at or after this instant are counted.")
    complete: bool = Field(
        description="False when the window held more jobs than one call counts; the counts "
        "then cover the newest jobs from `since` on."
    )
    counted: int


class QueuesOverview(BaseModel):
    queues: list[QueueStatus]
    jobs_window: CountWindow


class JobSummary(BaseModel):
    state: JobState
    attempts: int
    max_attempts: int
    error: JobError | None = None


class DeadLetter(BaseModel):
    message_id: str
    job_id: str | None = None
    tenant_id: str | None = None
    type: str | None = None
    sent_at: datetime | None = None
    receive_count: int | None = None
    body: str | None = Field(default=None, description="Only for unreadable messages (all_tenants view).")
    job: JobSummary | None = Field(default=None, description="The job's current state, when it still exists.")


class DeadLetterPage(BaseModel):
    queue: str
    messages: list[DeadLetter]
    examined: int = Field(description="DLQ messages looked at (all made visible again).")
    depth: int


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"max": 100}]})

    max: StrictInt | None = Field(default=None, ge=1, le=1000, description="Move at most this many (default 100).")
    all_tenants: StrictBool = Field(default=False, description="Every message, whoever it belongs to (platform scope).")


class RedriveResult(BaseModel):
    queue: str
    moved: int
    examined: int
    remaining: int = Field(description="Approximate DLQ depth afterwards (all tenants).")
    done: bool = Field(description="Nothing of yours was left to move when the call stopped; if false, call again.")
    method: Literal["receive_send_delete", "move_task"]
    task_handle: str | None = Field(
        default=None, description="With method=move_task: SQS moves the messages asynchronously (ListMessageMoveTasks)."
    )


class PauseResult(BaseModel):
    queue: str
    paused: bool
    mapping_state: str


class RetryFailedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"queue": "email", "limit": 50}]})

    type: str | None = Field(default=None, min_length=1, max_length=100)
    queue: str | None = Field(default=None, min_length=1, max_length=64, description="Only jobs of this queue.")
    since: Instant | None = Field(default=None, description="Only jobs created at or after this instant.")
    limit: StrictInt = Field(default=100, ge=1, le=100, description="Retry at most this many in this call.")
    cursor: str | None = Field(default=None, max_length=200, description="`next_cursor` of the previous call.")


class BulkResult(BaseModel):
    changed: int = Field(description="Jobs retried or deleted by this call.")
    skipped: int = Field(description="Matched, but changed state meanwhile (left as they are).")
    examined: int
    next_cursor: str | None = Field(default=None, description="More may match: call again with this cursor.")

"""The scheduler shares each run's time between its sweeps: a backlog of due scheduled jobs never starves the
reminder and stalled-job sweeps (Lambda would stop the run at its Timeout first), and it drains over
successive runs, each within the function's time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from factories import email_job

from conveyor.platform.clock import utcnow
from tests.integration.ops_support import dispatch, queue_url

BACKLOG = 60
RELEASE_SECONDS = 2.0  # what releasing one due job "takes" on the run's clock


class Stopped(BaseException):
    """Lambda stopping the function at its Timeout: nothing inside the function can catch it."""


class RunClock:
    """The monotonic clock the scheduler's budgets read. It moves only when a due job is released (by
    RELEASE_SECONDS); passing the function's Timeout after an invocation started stops it, as Lambda would."""

    def __init__(self, timeout: float) -> None:
        self.timeout, self.now = timeout, 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.now > self.timeout:
            raise Stopped(f"past the {self.timeout:.0f} s Timeout")


@pytest.fixture
def run_clock(stack: Any, monkeypatch: pytest.MonkeyPatch) -> RunClock:
    from conveyor.jobs import repository
    from conveyor.platform import clock

    run = RunClock(stack.functions["SchedulerFunction"].timeout)
    release = repository.release

    def slow_release(*args: Any) -> bool:
        run.advance(RELEASE_SECONDS)
        return release(*args)

    monkeypatch.setattr(clock, "monotonic", run)
    monkeypatch.setattr(repository, "release", slow_release)
    return run


def scheduler_run(stack: Any, run: RunClock) -> dict[str, int]:
    """One invocation of the scheduler function (the template's schedule, the real handler and context)."""
    run.now = 0.0
    (result,) = stack.fire_schedules()
    return result


def test_a_backlog_of_due_jobs_leaves_time_for_the_other_sweeps_and_drains_over_successive_runs(
    stack: Any, api: Any, api_as: Any, run_clock: RunClock
) -> None:
    from conveyor.jobs import repository

    # Given a backlog of scheduled jobs that all come due at once, more than one run could release in its time
    later = utcnow() + timedelta(minutes=20)
    backlog = [
        api.post("/v1/jobs", email_job(run_at=(later - timedelta(minutes=1)).isoformat())).json()["id"]
        for _ in range(BACKLOG)
    ]
    # And a reminder due then
    reminders = api_as("tenant-a", "reminders:write,reminders:read")
    contact = {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London", "channels": ["email"]}
    assert reminders.request("PUT", "/v1/contacts/c1", contact).status in (200, 201)
    appointment = {"contact_id": "c1", "subject_name": "Rex", "starts_at": (later + timedelta(hours=24)).isoformat()}
    assert reminders.request("PUT", "/v1/appointments/a1", appointment).status in (200, 201)
    # And a job whose worker died and whose message is gone
    stalled = api.post("/v1/jobs", email_job()).json()["id"]
    dispatch(stack)
    sqs, url = stack.client("sqs"), queue_url(stack, "email")
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert repository.claim("tenant-a", stalled, lease_seconds=0) is not None

    with time_machine.travel(later, tick=True):
        # When the scheduler runs (Lambda stops it at its Timeout)
        first = scheduler_run(stack, run_clock)

        # Then the same run also swept the reminder and the stalled job, and released part of the backlog
        assert first["sweep_reminders"] == 1
        assert first["recover_lost_jobs"] == 1
        assert 0 < first["release_due_jobs"] < BACKLOG

        # And successive runs, each within the function's time, release the rest, each job once
        released = [first["release_due_jobs"]]
        while sum(released) < BACKLOG and len(released) < 5:
            released.append(scheduler_run(stack, run_clock)["release_due_jobs"])
        assert sum(released) == BACKLOG and len(released) <= 3, released
        assert scheduler_run(stack, run_clock)["release_due_jobs"] == 0

    for job_id in backlog:
        job = repository.get("tenant-a", job_id)
        assert job.state == "queued"
        assert sum(e.note == "released by scheduler" for e in job.timeline) == 1

"""Delayed jobs: SQS DelaySeconds up to 15 minutes, the scheduler's sweep beyond, exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

from factories import email_job

from conveyor import scheduler
from conveyor.jobs import repository
from conveyor.platform.clock import utcnow


def test_a_job_due_within_15_minutes_is_sent_with_sqs_delay_seconds(api, stack, aws_calls):
    job = api.post("/v1/jobs", email_job(delay_seconds=300)).json()

    stack.drain()

    assert job["state"] == "queued"
    [batch] = aws_calls("sqs", "SendMessageBatch")
    [entry] = batch["Entries"]
    assert 295 <= entry["DelaySeconds"] <= 300
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"  # still waiting in SQS


def test_a_job_an_hour_ahead_waits_scheduled_and_is_released_once_by_overlapping_sweeps(
    api, stack, sent_emails, monkeypatch
):
    job = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()
    assert job["state"] == "scheduled"
    stack.drain()
    assert scheduler.run(utcnow())["release_due_jobs"] == 0  # not due yet

    # Two sweeps overlap: both list the due job before either releases it. (DynamoDB applies each conditional
    # write atomically; moto does not lock between threads, so the lock below stands in for that.)
    both_listed, one_write_at_a_time = threading.Barrier(2), threading.Lock()
    list_due, release = repository.due_keys, repository.release

    def listed_by_both(now):
        keys = list(list_due(now))
        both_listed.wait(timeout=10)
        return iter(keys)

    def atomic_release(*args):
        with one_write_at_a_time:
            return release(*args)

    monkeypatch.setattr(repository, "due_keys", listed_by_both)
    monkeypatch.setattr(repository, "release", atomic_release)
    _time_passes(stack, job["id"], timedelta(hours=1, seconds=5))
    results: list[dict[str, int]] = []
    threads = [threading.Thread(target=lambda: results.append(scheduler.run(utcnow()))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stack.drain()

    # Then exactly one released it, and it ran once
    assert sorted(r["release_due_jobs"] for r in results) == [0, 1]
    done = api.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "completed"
    assert [e["state"] for e in done["timeline"]] == ["scheduled", "queued", "active", "completed"]
    assert len(sent_emails()) == 1


def _time_passes(stack, job_id: str, elapsed: timedelta) -> None:
    """Move a scheduled job's due time into the past, as if `elapsed` had gone by."""
    from conveyor.jobs.repository import _jobs

    JobRecord = _jobs()  # noqa: N806 - the model class
    job = JobRecord.get("tenant-a", job_id)
    job.update(
        actions=[
            JobRecord.run_at.set(job.run_at - elapsed),
            JobRecord.due_at.set(int(job.due_at - elapsed.total_seconds())),
        ]
    )


def test_a_scheduled_job_can_be_cancelled_and_is_never_released(api, stack, sent_emails):
    job = api.post("/v1/jobs", email_job(run_at=(utcnow() + timedelta(days=2)).isoformat())).json()

    cancelled = api.post(f"/v1/jobs/{job['id']}/cancel").json()
    released = scheduler.run(utcnow() + timedelta(days=3))
    stack.drain()

    assert cancelled["state"] == "cancelled"
    assert released["release_due_jobs"] == 0
    assert sent_emails() == []


def test_the_scheduler_function_sweeps_on_its_eventbridge_event(api, stack, sent_emails):
    job = api.post("/v1/jobs", email_job(run_at=(utcnow() + timedelta(seconds=901)).isoformat())).json()
    assert job["state"] == "scheduled"

    [schedule] = stack.schedules  # the template's one-minute schedule, fired with its EventBridge event
    result = stack.fire(schedule)

    assert schedule.function_id == "SchedulerFunction"
    assert result["release_due_jobs"] == 0  # the handler sweeps "now"; the job is 15 minutes out


def test_a_run_at_in_the_past_runs_now(api, stack):
    job = api.post("/v1/jobs", email_job(run_at="2020-01-01T00:00:00Z")).json()

    stack.drain()

    assert job["state"] == "queued" and job["run_at"] is None
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"

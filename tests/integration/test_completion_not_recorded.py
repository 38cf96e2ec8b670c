"""A job whose handler succeeded but whose completion could not be recorded is not run again: `email.send` never
sends an email twice because DynamoDB failed right after SES accepted it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from botocore.exceptions import ClientError
from factories import email_job
from pynamodb.exceptions import UpdateError

from conveyor.platform.clock import utcnow


@pytest.fixture
def completions_fail(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The next `left` completion writes fail as DynamoDB fails past the client's retries (HTTP 500)."""
    from conveyor.jobs import repository

    real, state = repository.complete, {"left": 0}

    def complete(job: Any, result: Any) -> bool:
        if state["left"]:
            state["left"] -= 1
            cause = ClientError(
                {
                    "Error": {"Code": "InternalServerError", "Message": "Internal server error"},
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                },
                "UpdateItem",
            )
            raise UpdateError("Failed to update item", cause=cause)
        return real(job, result)

    monkeypatch.setattr(repository, "complete", complete)
    return state


def test_an_email_ses_accepted_is_not_sent_again_when_recording_its_completion_failed(
    api: Any, stack: Any, sent_emails: Any, completions_fail: dict[str, int]
) -> None:
    # Given an email job, and DynamoDB failing the write that records its completion, once
    completions_fail["left"] = 1
    job_id = api.post("/v1/jobs", email_job()).json()["id"]

    # When the worker runs it (SES accepts the email), and then every message that comes back is delivered
    stack.drain()
    assert len(sent_emails()) == 1
    with time_machine.travel(utcnow() + timedelta(minutes=7), tick=True):  # past the delays and the lease
        stack.drain()

    # Then the job is completed with SES's message id, by the one attempt that sent it; the email went out once
    (email,) = sent_emails()
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("completed", 1), job
    assert job["result"] == {"message_id": email.id}


def test_a_carried_completion_for_an_attempt_that_is_over_changes_nothing(
    api: Any, stack: Any, sent_emails: Any, completions_fail: dict[str, int]
) -> None:
    from conveyor.jobs import repository

    # Given an email whose completion was carried, and the job cancelled-and-retried meanwhile (a new attempt)
    completions_fail["left"] = 1
    job_id = api.post("/v1/jobs", email_job()).json()["id"]
    stack.drain()
    job = repository.get("tenant-a", job_id, consistent=True)
    assert repository.fail(job, "Operator", "failed by hand") and repository.requeue(
        repository.get("tenant-a", job_id, consistent=True)
    )
    stack.drain()  # the retried job runs (a second email, asked for)

    # When the carried completion arrives, Then it does not overwrite the new attempt's outcome
    with time_machine.travel(utcnow() + timedelta(minutes=7), tick=True):
        stack.drain()
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "completed" and job["result"]["message_id"] == sent_emails()[-1].id

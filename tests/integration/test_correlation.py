"""A correlation id per API request: stored with the job, carried in its SQS message, on the worker's log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from factories import email_job, sqs_record

from conveyor.jobs import repository
from conveyor.platform.observability import logger


@pytest.fixture
def log_lines() -> Iterator[Any]:
    """The JSON lines Powertools' Logger writes (appended keys included), as dicts."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    logger.removeHandler(handler)


def _sent_bodies(aws_calls) -> list[dict[str, Any]]:
    return [json.loads(e["MessageBody"]) for call in aws_calls("sqs", "SendMessageBatch") for e in call["Entries"]]


def test_the_callers_correlation_id_follows_the_job_into_the_worker_logs(stack, api, aws_calls, log_lines):
    # Given a request that names its correlation id
    accepted = api.post("/v1/jobs", email_job(), headers={"X-Correlation-Id": "order-4711.retry-2"})
    assert accepted.status == 202
    job = accepted.json()

    # Then the response echoes it and the job is stored with it
    assert accepted.headers["x-correlation-id"] == "order-4711.retry-2"
    assert repository.get("tenant-a", job["id"], consistent=True).correlation_id == "order-4711.retry-2"

    # When the dispatcher sends it and the worker runs it
    stack.drain()

    # Then the message carried it, and every worker line about the job has it
    assert {
        "tenant_id": "tenant-a",
        "job_id": job["id"],
        "type": "email.send",
        "correlation_id": "order-4711.retry-2",
    } in (_sent_bodies(aws_calls))
    about_job = [line for line in log_lines() if line.get("job_id") == job["id"]]
    assert any(line["message"] == "job completed" for line in about_job)
    assert {line.get("correlation_id") for line in about_job} == {"order-4711.retry-2"}
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"


def test_without_a_usable_header_the_api_gateway_request_id_is_the_correlation_id(stack, api):
    # Given requests with no header, and with one that is not a sane token
    plain = api.post("/v1/jobs", email_job())
    odd = api.post("/v1/jobs", email_job(), headers={"X-Correlation-Id": "two words\nand a newline"})

    # Then each gets its request id, distinct, and that is what its job stores
    ids = [r.headers["x-correlation-id"] for r in (plain, odd)]
    assert all(ids) and ids[0] != ids[1] and "two words" not in ids[1]
    for response, correlation_id in zip((plain, odd), ids, strict=True):
        assert repository.get("tenant-a", response.json()["id"], consistent=True).correlation_id == correlation_id


def test_a_records_correlation_id_does_not_leak_into_the_next_records_logs(stack, api, log_lines):
    # Given a job run with a correlation id
    job = api.post("/v1/jobs", email_job(), headers={"X-Correlation-Id": "first-request"}).json()
    stack.drain()
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"

    # When the worker next handles a message that carries none (an unreadable one)
    worker = stack.functions["WorkerFunction"]
    queue_arn = stack.template.attributes["EmailQueue"]["Arn"]
    stack.invoke(worker, {"Records": [sqs_record("not json", queue_arn=queue_arn)]})

    # Then its lines have no correlation id
    (dropped,) = [line for line in log_lines() if line["message"].startswith("unreadable message dropped")]
    assert "correlation_id" not in dropped

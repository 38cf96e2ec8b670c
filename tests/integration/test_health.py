"""Liveness and readiness, both public (no key): /health is the process; /health/ready its dependencies."""

from __future__ import annotations

import socket

import pytest

from tests.integration.ops_support import EMAIL, dispatch, exhaust_receives, queue_url


def test_liveness_needs_no_key(api):
    response = api.get("/health", key=None)
    assert (response.status, response.json()) == (200, {"status": "ok"})


def test_ready_when_dynamodb_and_sqs_answer_and_reports_dead_letter_depths(stack, api):
    # Given one job dead-lettered in the email queue (not a readiness failure: the DLQ alarm covers it)
    api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL})
    dispatch(stack)
    exhaust_receives(stack, "email")
    # When a load balancer or a deploy pipeline asks, without a key
    response = api.get("/health/ready", key=None)
    # Then the service is ready and says what is in each DLQ
    assert response.status == 200, response.body
    body = response.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert body["checks"]["dynamodb"]["ok"] and body["checks"]["sqs"]["ok"]
    assert body["dead_letters"] == {
        "email": 1,
        "notifications": 0,
        "reminders": 0,
        "reports": 0,
        "webhooks": 0,
        "sync": 0,
    }


def test_not_ready_names_dynamodb_when_the_jobs_table_is_gone(stack, api):
    stack.client("dynamodb").delete_table(TableName=stack.functions["ApiFunction"].environment["JOBS_TABLE"])
    response = api.get("/health/ready", key=None)
    assert response.status == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failing"] == ["dynamodb"]
    assert body["checks"]["dynamodb"]["error"] == "ResourceNotFoundException"
    assert body["checks"]["sqs"]["ok"] is True


@pytest.fixture
def dynamodb_unreachable(monkeypatch):
    """DynamoDB's endpoint is a local port nothing listens on (connection refused)."""
    from conveyor.platform.aws import probe_client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{port}")
    probe_client.cache_clear()
    yield
    probe_client.cache_clear()


def test_not_ready_fast_when_dynamodb_cannot_be_reached(stack, api, dynamodb_unreachable):
    from conveyor.platform.aws import probe_client

    sent: list[str] = []  # every HTTP attempt the probe makes (a retry would be a second one)
    probe_client("dynamodb").meta.events.register("before-send.dynamodb", lambda **kw: sent.append(kw["request"].url))

    response = api.get("/health/ready", key=None)

    assert response.status == 503
    check = response.json()["checks"]["dynamodb"]
    assert response.json()["failing"] == ["dynamodb"]
    assert check["error"] == "EndpointConnectionError"
    assert len(sent) == 1 and check["latency_ms"] >= 0  # one attempt, no retries: a probe never hangs


def test_not_ready_names_sqs_when_a_queue_is_gone(stack, api):
    stack.client("sqs").delete_queue(QueueUrl=queue_url(stack, "email"))
    response = api.get("/health/ready", key=None)
    assert response.status == 503
    assert response.json()["failing"] == ["sqs"]
    assert response.json()["checks"]["sqs"]["error"]  # the AWS error code, e.g. QueueDoesNotExist

"""SQS's server-side redrive (StartMessageMoveTask) against an emulator that lacks it, as `make run`'s does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's HTTP server (what `make run` embeds), with conveyor's shared clients pointed at it."""
    from moto.server import ThreadedMotoServer

    from conveyor.platform import aws

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    aws.client.cache_clear()
    aws.probe_client.cache_clear()
    yield aws
    aws.client.cache_clear()
    aws.probe_client.cache_clear()
    server.stop()


def test_a_move_task_the_emulator_answers_with_a_500_page_is_not_available_after_one_request(emulator):
    # Given a queue and its DLQ on an emulator whose StartMessageMoveTask is an HTTP 500 HTML page
    from conveyor.admin import queues

    sqs = emulator.client("sqs")
    arns = []
    for name in ("jobs", "jobs-dlq"):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arns.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    sent: list[str] = []
    emitters = {id(c.meta.events): c.meta.events for c in (emulator.client("sqs"), emulator.probe_client("sqs"))}
    for events in emitters.values():  # whichever client the code uses; the clients may share one emitter
        events.register("before-send.sqs.StartMessageMoveTask", lambda **_: sent.append("request"))

    # When the platform redrive asks for a server-side move
    handle = queues.start_move_task(arns[1], arns[0])

    # Then the move is reported as not available (the caller falls back to receive/send/delete), tried once
    assert handle is None
    assert sent == ["request"]

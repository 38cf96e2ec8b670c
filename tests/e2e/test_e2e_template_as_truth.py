"""The local stack runs whatever the template says: a template copy with an extra queue and worker function (and
tighter redrive settings) is served with no runner change; a poison record reaches the DLQ; Ctrl-C lets in-flight
batches finish; an external emulator can stand in for the embedded one."""

from __future__ import annotations

import json
import signal
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_stack_process import ROOT, RunningStack, start_stack, template_copy, wait_until

pytestmark = pytest.mark.e2e
custom_stack_group = pytest.mark.xdist_group("custom-stack")  # the tests sharing one custom stack run together

# A worker nobody told the runner about: it records each batch (and its environment) as a file.
EXTRA_HANDLER = """
import json, os, pathlib, time, uuid

def handler(event, context):
    out = pathlib.Path(os.environ["ECHO_DIR"])
    if "Records" not in event:  # its HTTP route
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"route": event["routeKey"], "name": event["pathParameters"]["name"]})}
    bodies = [r["body"] for r in event["Records"]]
    if "slow" in bodies:
        (out / "slow-started").write_text("")
        time.sleep(1.5)
        (out / "slow-finished").write_text("")
    (out / f"batch-{uuid.uuid4().hex}.json").write_text(json.dumps({
        "bodies": bodies, "source": event["Records"][0]["eventSourceARN"], "function": context.function_name,
        "env": {k: os.environ.get(k) for k in ("EXTRA_QUEUE_URL", "GREETING", "JOBS_TABLE")}}))
    return {"batchItemFailures": []}
"""


def with_extra_worker(echo_dir: Path, code_dir: Path) -> Any:
    def change(doc: dict[str, Any]) -> None:
        resources = doc["Resources"]
        # tight redrive on a real queue, so a poison record reaches its DLQ in seconds
        resources["EmailQueue"]["Properties"].update(
            VisibilityTimeout=1,
            RedrivePolicy={**resources["EmailQueue"]["Properties"]["RedrivePolicy"], "maxReceiveCount": 2},
        )
        resources["ExtraDeadLetterQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
        resources["ExtraQueue"] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "VisibilityTimeout": 30,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["ExtraDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 5,
                },
            },
        }
        resources["ExtraFunction"] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": str(code_dir),
                "Handler": "extra_echo_handler.handler",
                "Timeout": 5,
                "Environment": {
                    "Variables": {
                        "ECHO_DIR": str(echo_dir),
                        "GREETING": "hello",
                        "EXTRA_QUEUE_URL": {"Ref": "ExtraQueue"},
                    }
                },
                "Events": {
                    "ExtraJobs": {
                        "Type": "SQS",
                        "Properties": {
                            "Queue": {"Fn::GetAtt": ["ExtraQueue", "Arn"]},
                            "BatchSize": 2,
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        },
                    },
                    "Hello": {
                        "Type": "HttpApi",
                        "Properties": {
                            "ApiId": {"Ref": "HttpApi"},
                            "Method": "GET",
                            "Path": "/extra/{name}",
                            "Auth": {"Authorizer": "NONE"},
                        },
                    },
                },
            },
        }

    return change


def start_custom(tmp_path: Path, *extra: str) -> tuple[RunningStack, Path]:
    code_dir, echo_dir = tmp_path / "extra", tmp_path / "echo"
    code_dir.mkdir()
    echo_dir.mkdir()
    (code_dir / "extra_echo_handler.py").write_text(textwrap.dedent(EXTRA_HANDLER))
    template = template_copy(tmp_path, with_extra_worker(echo_dir, code_dir))
    return start_stack(template, tmp_path / "state", *extra), echo_dir


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Path]]:
    stack, echo_dir = start_custom(tmp_path_factory.mktemp("custom"))
    yield stack, echo_dir
    stack.stop()


def batches(echo_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in echo_dir.glob("batch-*.json")]


@custom_stack_group
def test_a_queue_and_worker_added_to_the_template_run_with_no_runner_change(custom: tuple[RunningStack, Path]) -> None:
    stack, echo_dir = custom
    queue_url = stack.resource("ExtraQueue")

    # When five messages are sent to the new queue
    sqs = stack.client("sqs")
    for n in range(5):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"message-{n}")

    # Then the new function receives all of them, in batches of at most its BatchSize
    wait_until(lambda: sum(len(b["bodies"]) for b in batches(echo_dir)) >= 5, 10, "the new worker to see 5 messages")
    seen = batches(echo_dir)
    assert sorted(body for b in seen for body in b["bodies"]) == [f"message-{n}" for n in range(5)]
    assert all(len(b["bodies"]) <= 2 for b in seen)
    # with exactly the environment the template gives it: its own variables, Refs resolved, and the Globals
    assert all(b["function"] == "ExtraFunction" and b["source"].endswith(":conveyor-ExtraQueue") for b in seen)
    assert seen[0]["env"]["EXTRA_QUEUE_URL"] == queue_url
    assert seen[0]["env"]["GREETING"] == "hello"
    assert seen[0]["env"]["JOBS_TABLE"] == stack.resource("JobsTable")
    # and the acknowledged messages are gone from the queue
    wait_until(
        lambda: (
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
                "ApproximateNumberOfMessagesNotVisible"
            ]
            == "0"
        ),
        5,
        "the batch to be deleted",
    )
    # and its HTTP route is served too
    response = stack.request("GET", "/extra/ada", key=None)
    assert response.status == 200 and response.json() == {"route": "GET /extra/{name}", "name": "ada"}


@custom_stack_group
def test_a_record_the_worker_crashes_on_lands_in_the_dlq_after_max_receive_count(
    custom: tuple[RunningStack, Path],
) -> None:
    stack, _ = custom
    # Given a job whose stored record is corrupt (its attempt counter is not a number), so claiming it raises
    job_id = "job_POISON" + uuid.uuid4().hex[:8].upper()
    stack.client("dynamodb").put_item(
        TableName=stack.resource("JobsTable"),
        Item={
            "tenant_id": {"S": "tenant-poison"},
            "sk": {"S": job_id},
            "type": {"S": "email.send"},
            "queue": {"S": "email"},
            "state": {"S": "retrying"},
            "attempts": {"S": "corrupt"},
            "max_attempts": {"N": "3"},
            "payload": {"S": "{}"},
        },
    )
    body = json.dumps({"tenant_id": "tenant-poison", "job_id": job_id, "type": "email.send"})

    # When its message arrives on the queue (VisibilityTimeout 1 s, maxReceiveCount 2 in this template)
    stack.client("sqs").send_message(QueueUrl=stack.resource("EmailQueue"), MessageBody=body)

    # Then after the worker has failed on it twice, the queue's redrive policy moves it to the DLQ
    def in_dlq() -> dict[str, Any] | None:
        response = stack.client("sqs").receive_message(
            QueueUrl=stack.resource("EmailDeadLetterQueue"), MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
        )
        return next((m for m in response.get("Messages", []) if m["Body"] == body), None)

    moved = wait_until(in_dlq, 15, "the poison record in the DLQ")
    assert int(moved["Attributes"]["ApproximateReceiveCount"]) >= 2
    assert stack.log().count("record could not be processed") >= 2


def test_ctrl_c_lets_the_in_flight_batch_finish_then_stops(tmp_path: Path) -> None:
    # Given a stack whose extra worker is in the middle of a slow batch
    stack, echo_dir = start_custom(tmp_path)
    stack.client("sqs").send_message(QueueUrl=stack.resource("ExtraQueue"), MessageBody="slow")
    wait_until(lambda: (echo_dir / "slow-started").exists(), 10, "the slow batch to start")

    # When the developer presses Ctrl-C
    code = stack.stop(sig=signal.SIGINT)

    # Then the batch finished before the stack exited, cleanly
    assert (echo_dir / "slow-finished").exists()
    assert code == 0, stack.log()[-2000:]
    assert "stopped" in stack.log().splitlines()[-1]
    assert not (stack.state_dir / "stack.json").exists()


def test_an_external_emulator_can_stand_in_for_the_embedded_one(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    # Given an emulator already running elsewhere
    external = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    external.start()
    host, port = external.get_host_and_port()
    try:
        # When the stack is started against it
        stack = start_stack(ROOT / "template.yaml", tmp_path, "--endpoint-url", f"http://{host}:{port}")
        try:
            assert stack.info["endpoint_url"] == f"http://{host}:{port}"
            job = stack.enqueue(
                {"type": "email.send", "payload": {"to": ["x@example.com"], "subject": "s", "text": "t"}}
            )
            # Then the jobs run, and the tables live in that emulator
            assert stack.wait_for_job(job["id"])["state"] == "completed"
            assert stack.resource("JobsTable") in stack.client("dynamodb").list_tables()["TableNames"]
            assert (stack.outbox / f"{job['id']}.eml").exists()
        finally:
            assert stack.stop() == 0
    finally:
        external.stop()

"""Event source mappings in the local stack behave like Lambda's: filters, batching windows, partial failures."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from conveyor_local.event_sources import SqsSource, StreamSource


def sqs_source(stack: Any, name: str, **kw: Any) -> tuple[SqsSource, str]:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return SqsSource("Fn", url, arn, **kw), url


def test_the_dispatcher_is_only_given_stream_records_its_filter_matches(stack: Any, api: Any) -> None:
    # Given a job that went queued -> active -> completed (three stream records)
    job = api.post(
        "/v1/jobs", {"type": "email.send", "payload": {"to": ["a@example.com"], "subject": "s", "text": "t"}}
    ).json()
    stack.drain()
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"

    # When the dispatcher's event source (as the template declares it) reads the stream from the start
    declared = next(s for s in stack.sources if isinstance(s, StreamSource))
    source = StreamSource(declared.function_id, declared.stream_arn, filters=declared.filters)
    event = source.poll(stack.client)

    # Then only the record where the job became `queued` is delivered
    assert [r["dynamodb"]["NewImage"]["state"]["S"] for r in event["Records"]] == ["queued"]


def test_a_stream_read_whose_records_the_filter_drops_reads_on_to_the_next_match(stack: Any, api: Any) -> None:
    # Given three jobs that ran (nine stream records), then a new job, queued
    for _ in range(3):
        api.post("/v1/jobs", {"type": "email.send", "payload": {"to": ["a@example.com"], "subject": "s", "text": "t"}})
    stack.drain()
    declared = next(s for s in stack.sources if isinstance(s, StreamSource))
    source = StreamSource(declared.function_id, declared.stream_arn, batch_size=2, filters=declared.filters)
    assert len(source.poll(stack.client)["Records"]) == 2
    source.settle(stack.client, {"Records": source._pending[:2]}, None, False)  # the first two queued records
    late = api.post(
        "/v1/jobs", {"type": "email.send", "payload": {"to": ["b@example.com"], "subject": "s", "text": "t"}}
    )

    # When the source polls on, past reads of two records each that its filter drops (claims, completions)
    event = source.poll(stack.client)

    # Then it delivers the next queued records at once, up to the new job's, instead of reporting an idle stream
    assert event is not None
    ids = [r["dynamodb"]["NewImage"]["sk"]["S"] for r in event["Records"]]
    while late.json()["id"] not in ids:
        source.settle(stack.client, event, None, False)
        event = source.poll(stack.client)
        assert event is not None, "the stream was reported idle before its last queued record"
        ids = [r["dynamodb"]["NewImage"]["sk"]["S"] for r in event["Records"]]


def test_a_batching_window_gathers_messages_that_arrive_within_it(stack: Any) -> None:
    source, url = sqs_source(stack, "windowed", batch_size=5, window_seconds=2)
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="m0")

    def later() -> None:
        for n in (1, 2):
            time.sleep(0.3)
            sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")

    sender = threading.Thread(target=later)
    sender.start()
    event = source.poll(stack.client, wait_seconds=1)
    sender.join()

    assert [r["body"] for r in event["Records"]] == ["m0", "m1", "m2"]


def test_messages_no_filter_matches_are_deleted_without_reaching_the_function(stack: Any) -> None:
    source, url = sqs_source(stack, "filtered", filters=('{"body": {"kind": ["wanted"]}}',))
    sqs = stack.client("sqs")
    for kind in ("wanted", "other"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": kind}))
    sqs.send_message(QueueUrl=url, MessageBody="not json")

    event = source.poll(stack.client)

    assert [json.loads(r["body"])["kind"] for r in event["Records"]] == ["wanted"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # only the delivered one is in flight


def test_only_the_records_a_function_reports_as_failed_stay_on_the_queue(stack: Any) -> None:
    source, url = sqs_source(stack, "partial", report_failures=True)
    sqs = stack.client("sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    event = source.poll(stack.client)
    failed = next(r for r in event["Records"] if r["body"] == "m1")

    source.settle(stack.client, event, {"batchItemFailures": [{"itemIdentifier": failed["messageId"]}]}, False)

    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=failed["receiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == ["m1"]

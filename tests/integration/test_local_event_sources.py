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


def test_a_stream_batching_window_holds_records_until_it_ends_or_the_batch_is_full(stack: Any, api: Any) -> None:
    # Given the dispatcher's stream source with a 1 s batching window and a batch size of 3
    declared = next(s for s in stack.sources if isinstance(s, StreamSource))
    source = StreamSource(
        declared.function_id, declared.stream_arn, batch_size=3, filters=declared.filters, window_seconds=1
    )
    email = {"type": "email.send", "payload": {"to": ["a@example.com"], "subject": "s", "text": "t"}}
    first = api.post("/v1/jobs", email).json()["id"]

    # When it polls at once, and again after a second job, then after the window
    held = source.poll(stack.client)
    second = api.post("/v1/jobs", email).json()["id"]
    still_held = source.poll(stack.client)
    time.sleep(1.1)
    event = source.poll(stack.client)

    # Then nothing was delivered within the window, and both jobs came in one batch when it ended
    assert held is None and still_held is None
    assert [r["dynamodb"]["NewImage"]["sk"]["S"] for r in event["Records"]] == [first, second]
    source.settle(stack.client, event, None, False)

    # And a batch that fills is delivered at once, window or not
    for _ in range(3):
        api.post("/v1/jobs", email)
    assert len(source.poll(stack.client)["Records"]) == 3


def test_the_dispatch_batching_window_is_a_deployment_parameter_the_stream_mapping_takes() -> None:
    from moto import mock_aws

    from conveyor.platform.settings import get_settings
    from conveyor_local.stack import Stack
    from tests.conftest import ROOT

    def dispatcher_window(parameters: dict[str, str]) -> tuple[int, int]:
        with mock_aws():
            get_settings.cache_clear()
            running = Stack(ROOT / "template.yaml", parameters=parameters).provision()
            source = next(s for s in running.sources if getattr(s, "function_id", "") == "DispatcherFunction")
            mapping = running.client("lambda").get_event_source_mapping(UUID=source.mapping_id)
            get_settings.cache_clear()
            return source.window_seconds, mapping["MaximumBatchingWindowInSeconds"]

    # When the stack is deployed as it comes, and with DispatchBatchingWindowSeconds=3
    default, windowed = dispatcher_window({}), dispatcher_window({"DispatchBatchingWindowSeconds": "3"})

    # Then the dispatcher sends at once by default, and gathers for 3 s when asked (the local poller and the mapping)
    assert default == (0, 0) and windowed == (3, 3)


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

"""Event source mappings as Lambda runs them: SQS queues and DynamoDB streams feeding a function in batches.

SQS: receive up to BatchSize (gathering for up to MaximumBatchingWindowInSeconds once a first record is in),
invoke, then delete only what succeeded (ReportBatchItemFailures) — or nothing if the invocation failed;
visibility changes made by the function and the queue's redrive policy are the queue's own business, exactly as
on AWS. Streams: in order per shard from StartingPosition, gathered for MaximumBatchingWindowInSeconds unless the
batch fills first; a failed record and everything after it is retried
(BisectBatchOnFunctionError halves the batch after an invocation error, without spending a retry), up to
MaximumRetryAttempts, then the batch's metadata goes to the OnFailure destination. FilterCriteria apply to both:
records that match no filter are never delivered (SQS deletes them, a stream skips them), as on AWS.
A source registered as an event source mapping in the emulator's Lambda API delivers nothing while that
mapping is disabled (UpdateEventSourceMapping Enabled=false: a paused queue), exactly like Lambda.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from moto.events.utils import EventMessageType

Client = Callable[[str], Any]
PAUSED_STATES = ("Disabled", "Disabling")
# An idle stream poller costs the local stack CPU on every read (client and emulator both parse each request), so
# the shard list, which changes rarely (a table's stream gets new shards every few hours on AWS), is re-read on a
# timer rather than before every read.
SHARDS_REFRESH_SECONDS = 5.0


def _enabled(client: Client, mapping_id: str | None) -> bool:
    if mapping_id is None:
        return True
    return client("lambda").get_event_source_mapping(UUID=mapping_id).get("State") not in PAUSED_STATES


@cache
def _matcher(patterns: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
    """FilterCriteria: a record passes if any pattern matches (EventBridge pattern syntax, evaluated by moto)."""
    if not patterns:
        return lambda record: True
    from moto.events.models import EventPattern

    loaded = [EventPattern.load(p) for p in patterns]
    # moto types its argument as an EventBridge event; the pattern language reads any JSON object the same way.
    return lambda record: any(p.matches_event(cast("EventMessageType", record)) for p in loaded)


@dataclass
class SqsSource:
    function_id: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    window_seconds: int = 0
    report_failures: bool = False
    region: str = "us-east-1"
    filters: tuple[str, ...] = ()
    mapping_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.function_id} <- {self.queue_arn.rsplit(':', 1)[-1]}"

    def poll(self, client: Client, wait_seconds: int = 0, stop: threading.Event | None = None) -> dict[str, Any] | None:
        """One batch: long-poll up to `wait_seconds` for a first record, then gather for the batching window."""
        if not _enabled(client, self.mapping_id):
            return None
        records: list[dict[str, Any]] = []
        deadline = 0.0
        while len(records) < self.batch_size:
            if records:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    break
                wait = max(1, min(20, int(remaining + 0.999)))
            else:
                wait = wait_seconds
            response = client("sqs").receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(records)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages and not records:
                break
            if messages and not records:
                deadline = time.monotonic() + self.window_seconds
            records += self._kept(client, [self._record(m) for m in messages])
            if not records:
                break  # everything received was filtered out
        return {"Records": records} if records else None

    def _kept(self, client: Client, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.filters:
            return records
        matches = _matcher(self.filters)
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        for record in records:
            try:
                body: Any = json.loads(record["body"])
            except ValueError:
                body = record["body"]
            (kept if matches({**record, "body": body}) else dropped).append(record)
        self._delete(client, dropped)  # Lambda deletes SQS messages that match no filter
        return kept

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": _message_attributes(message.get("MessageAttributes")),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def settle(self, client: Client, event: dict[str, Any], result: Any, failed: bool) -> int:
        """Delete what the function handled; returns how many records count as failed."""
        records = event["Records"]
        if failed:
            return len(records)
        failures: set[str] = set()
        if self.report_failures:
            try:
                failures = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except (AttributeError, KeyError, TypeError):
                return len(records)  # Lambda treats a malformed response as a whole-batch failure
        done = [r for r in records if r["messageId"] not in failures]
        self._delete(client, done)
        return len(records) - len(done)

    def _delete(self, client: Client, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            client("sqs").delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                    for i, r in enumerate(records[start : start + 10])
                ],
            )


def _as_json(value: Any) -> Any:
    """Binary attribute values as Lambda's JSON event carries them: base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def _message_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    out = {}
    for name, value in (attributes or {}).items():
        out[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType"),
        }
    return out


@dataclass
class StreamSource:
    function_id: str
    stream_arn: str
    batch_size: int = 100
    report_failures: bool = False
    max_retries: int = -1
    on_failure_queue_url: str | None = None
    region: str = "us-east-1"
    filters: tuple[str, ...] = ()
    starting_position: str = "TRIM_HORIZON"
    bisect: bool = False
    mapping_id: str | None = None
    window_seconds: int = 0
    _iterators: dict[str, str | None] = field(default_factory=dict)
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _gathering_since: float | None = None  # monotonic time the first record of the pending batch was read
    _attempts: int = 0
    _limit: int = 0  # the batch size after bisecting; 0 = BatchSize
    _shards_read_at: float | None = None  # monotonic time of the last DescribeStream

    @property
    def name(self) -> str:
        return f"{self.function_id} <- {self.stream_arn.split('/')[1] if '/' in self.stream_arn else self.stream_arn}"

    def poll(
        self, client: Client, wait_seconds: int = 0, stop: threading.Event | None = None, *, hold: bool = True
    ) -> dict[str, Any] | None:
        """One batch, or None; `hold`: keep a batch that is not full for the batching window first."""
        if not _enabled(client, self.mapping_id):
            return None
        matches = _matcher(self.filters)
        limit = self._limit or self.batch_size
        window = self.window_seconds if hold else 0
        if not self._pending:
            self._gathering_since = None
        # Read on past records the filters drop, as Lambda does (they are not the end); with a batching window,
        # on until the batch is full.
        while not self._pending or (window and len(self._pending) < limit):
            records = self._read(client)
            if not records:
                break
            self._pending += [r for r in records if matches(r)]
        if not self._pending:
            return None
        now = time.monotonic()
        if self._gathering_since is None:
            self._gathering_since = now
        if len(self._pending) < limit and now - self._gathering_since < window:
            return None  # MaximumBatchingWindowInSeconds: wait for a fuller batch (a retry or the rest: at once)
        return {"Records": self._pending[:limit]}

    def _read(self, client: Client) -> list[dict[str, Any]]:
        streams = client("dynamodbstreams")
        now = time.monotonic()
        if self._shards_read_at is None or now - self._shards_read_at >= SHARDS_REFRESH_SECONDS:
            self._shards_read_at = now
            for shard in streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", []):
                if shard["ShardId"] not in self._iterators:
                    self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                        StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=self.starting_position
                    )["ShardIterator"]
        records = []
        for shard_id, iterator in self._iterators.items():
            if iterator is None:
                continue
            response = streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            self._iterators[shard_id] = response.get("NextShardIterator")
            records += [self._record(r) for r in response.get("Records", [])]
        return records

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        data = _as_json(dict(record["dynamodb"]))
        created = data.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            data["ApproximateCreationDateTime"] = created.timestamp()
        return {
            **{k: v for k, v in record.items() if k != "dynamodb"},
            "dynamodb": data,
            "eventSourceARN": self.stream_arn,
            "awsRegion": self.region,
        }

    def settle(self, client: Client, event: dict[str, Any], result: Any, failed: bool) -> int:
        records = event["Records"]
        first_failed = 0 if failed else len(records)
        if not failed and self.report_failures:
            try:
                sequences = [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])]
            except (AttributeError, KeyError, TypeError):
                sequences, first_failed = [], 0
            positions = [i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in sequences]
            first_failed = min(positions, default=first_failed)
        if first_failed >= len(records):
            self._pending = self._pending[len(records) :]
            self._attempts = self._limit = 0
            return 0
        self._pending = self._pending[first_failed:]
        if failed and self.bisect and len(records) > 1:
            self._limit = len(records) // 2  # split and retry; a split does not spend a retry attempt
            return len(records)
        self._attempts += 1
        if 0 <= self.max_retries < self._attempts:
            self._discard(client, records[first_failed:])
        return len(records) - first_failed

    def _discard(self, client: Client, records: list[dict[str, Any]]) -> None:
        """Retries exhausted: the batch goes to the OnFailure destination (its metadata, as on AWS)."""
        self._pending = self._pending[len(records) :]
        self._attempts = self._limit = 0
        if self.on_failure_queue_url:
            client("sqs").send_message(
                QueueUrl=self.on_failure_queue_url,
                MessageBody=json.dumps(
                    {
                        "DDBStreamBatchInfo": {
                            "streamArn": self.stream_arn,
                            "batchSize": len(records),
                            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                        }
                    }
                ),
            )

"""The queues as AWS sees them: SQS attributes, dead-letter queues, moving messages, the worker's mappings.

No tenant policy here (that is conveyor.admin.service); every function is bounded in calls and time.
A queue's DLQ is found from its RedrivePolicy (template.yaml declares it there, so there is one truth).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conveyor.platform.aws import client, error_code, http_status, probe_client
from conveyor.platform.observability import logger
from conveyor.platform.settings import get_settings

HOLD_SECONDS = 30  # how long received DLQ messages stay invisible while an operation looks at them
RECEIVE = {
    "MaxNumberOfMessages": 10,
    "WaitTimeSeconds": 0,
    "MessageAttributeNames": ["All"],
    "MessageSystemAttributeNames": ["SentTimestamp", "ApproximateReceiveCount"],
}


@dataclass(frozen=True)
class QueueRef:
    family: str
    url: str
    arn: str
    dlq_url: str | None
    dlq_arn: str | None


@dataclass
class Message:
    """One received message: its body's job reference when readable."""

    raw: dict[str, Any]
    tenant_id: str | None = None
    job_id: str | None = None
    job_type: str | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Message:
        try:
            body = json.loads(raw.get("Body") or "")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(raw)
        return cls(raw, _text(body.get("tenant_id")), _text(body.get("job_id")), _text(body.get("type")))

    @property
    def sent_at(self) -> datetime | None:
        sent = (self.raw.get("Attributes") or {}).get("SentTimestamp")
        return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None

    @property
    def receive_count(self) -> int | None:
        count = (self.raw.get("Attributes") or {}).get("ApproximateReceiveCount")
        return int(count) if count else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_refs: dict[tuple[str, str], QueueRef] = {}


def queue_ref(family: str, sqs: Any = None) -> QueueRef:
    """The family's queue and its DLQ (resolved once per process from the queue's own RedrivePolicy)."""
    url = get_settings().queue_url(family)
    found = _refs.get((family, url))
    if found is None:
        sqs = sqs or client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])["Attributes"]
        dlq_arn = json.loads(attributes.get("RedrivePolicy") or "{}").get("deadLetterTargetArn")
        dlq_url = None
        if dlq_arn:
            _, _, _, _, account, name = dlq_arn.split(":", 5)
            dlq_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        found = _refs[(family, url)] = QueueRef(family, url, attributes["QueueArn"], dlq_url, dlq_arn)
    return found


def depths(url: str, sqs: Any = None) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = (sqs or client("sqs")).get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {name: int(attributes.get(name, 0)) for name in names}


def oldest_age_seconds(url: str, now: datetime) -> int | None:
    """Age of the oldest message among one receive of up to 10 (SQS has no exact attribute for it; the
    ApproximateAgeOfOldestMessage metric drives the alarm). VisibilityTimeout=0 leaves them where they are."""
    messages = client("sqs").receive_message(QueueUrl=url, VisibilityTimeout=0, **RECEIVE).get("Messages", [])
    sent = [m.sent_at for m in map(Message.of, messages) if m.sent_at is not None]
    return max(0, int((now - min(sent)).total_seconds())) if sent else None


@dataclass
class _Held:
    """Messages received (so invisible) during one operation; whatever is not consumed is released after."""

    url: str
    handles: dict[str, str] = field(default_factory=dict)  # message id -> receipt handle

    def release(self) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, handle in enumerate(self.handles.values())
        ]
        for start in range(0, len(entries), 10):
            client("sqs").change_message_visibility_batch(QueueUrl=self.url, Entries=entries[start : start + 10])
        self.handles.clear()


def peek(
    url: str, wanted: Callable[[Message], bool], limit: int, *, max_receives: int = 10
) -> tuple[list[Message], int]:
    """Up to `limit` messages `wanted` accepts, without consuming any: every message received is made visible
    again before returning. Returns (messages, how many were looked at)."""
    held = _Held(url)
    found: list[Message] = []
    try:
        for _ in range(max_receives):
            messages = [Message.of(m) for m in _receive(url)]
            if not messages:
                break
            for message in messages:
                held.handles[message.raw["MessageId"]] = message.raw["ReceiptHandle"]
                if len(found) < limit and wanted(message):
                    found.append(message)
            if len(found) >= limit:
                break
        examined = len(held.handles)
    finally:
        held.release()
    return found, examined


@dataclass
class Moved:
    moved: int = 0
    examined: int = 0
    exhausted: bool = False  # the DLQ had nothing more to look at when the operation stopped


def move(
    source_url: str,
    target_url: str,
    wanted: Callable[[Message], bool],
    limit: int,
    *,
    seconds: float = 5.0,
    max_receives: int = 50,
) -> Moved:
    """Move up to `limit` accepted messages from `source_url` to `target_url`: send, then delete (a failure in
    between leaves a duplicate, never a loss; the worker's claim makes duplicates harmless). Messages not
    accepted are made visible again at the end. Bounded by `limit`, receives and wall-clock `seconds`."""
    held = _Held(source_url)
    result = Moved()
    deadline = time.monotonic() + seconds
    sqs = client("sqs")
    try:
        for _ in range(max_receives):
            if result.moved >= limit or time.monotonic() >= deadline:
                break
            messages = [Message.of(m) for m in _receive(source_url)]
            if not messages:
                result.exhausted = True
                break
            result.examined += len(messages)
            chosen = []
            for message in messages:
                if len(chosen) + result.moved < limit and wanted(message):
                    chosen.append(message)
                else:
                    held.handles[message.raw["MessageId"]] = message.raw["ReceiptHandle"]
            if not chosen:
                continue
            entries = [{"Id": str(i), "MessageBody": m.raw["Body"], **_attributes(m)} for i, m in enumerate(chosen)]
            sent = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
            ok = {int(s["Id"]) for s in sent.get("Successful", [])}
            for i, message in enumerate(chosen):
                if i not in ok:  # not sent: it stays in the DLQ
                    held.handles[message.raw["MessageId"]] = message.raw["ReceiptHandle"]
            done = [chosen[i] for i in sorted(ok)]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=source_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m.raw["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            result.moved += len(done)
    finally:
        held.release()
    return result


def _receive(url: str) -> list[dict[str, Any]]:
    return client("sqs").receive_message(QueueUrl=url, VisibilityTimeout=HOLD_SECONDS, **RECEIVE).get("Messages", [])


def _attributes(message: Message) -> dict[str, Any]:
    attributes = message.raw.get("MessageAttributes")
    return {"MessageAttributes": attributes} if attributes else {}


# StartMessageMoveTask is SQS's own redrive (server side, any size). Emulators may not have it (moto 5 raises
# NotImplementedError in process; a server answers with an error code, or, as moto's server behind `make run` does,
# with an HTTP 500 page): then the caller moves messages itself. Asked once, without retries: a 5xx is not worth
# three tries when the fallback is correct anywhere (bounded receive -> send -> delete, `done: false` until empty).
_MISSING = {"UnsupportedOperation", "InvalidAction", "NotImplemented", "NotImplementedException", "UnknownOperation"}


def start_move_task(dlq_arn: str, target_arn: str) -> str | None:
    """The task handle, or None where the API is not available (unknown to the server, or a server error)."""
    from botocore.exceptions import ClientError

    try:
        started = probe_client("sqs").start_message_move_task(SourceArn=dlq_arn, DestinationArn=target_arn)
    except NotImplementedError:
        return None
    except ClientError as exc:
        if error_code(exc) in _MISSING or http_status(exc) >= 500:
            logger.warning(
                "StartMessageMoveTask not available; moving messages one by one",
                extra={"code": error_code(exc), "status": http_status(exc)},
            )
            return None
        raise
    return str(started["TaskHandle"])


# --- the worker's event source mappings (pause / resume) ---------------------------------------------
def mapping_states() -> dict[str, str]:
    """Queue ARN -> State ("Enabled", "Disabled", "Enabling", ...) of each of the worker's mappings."""
    worker = get_settings().worker_function
    if not worker:
        return {}
    states: dict[str, str] = {}
    args: dict[str, Any] = {"FunctionName": worker}
    while True:
        page = client("lambda").list_event_source_mappings(**args)
        for mapping in page.get("EventSourceMappings", []):
            states[mapping["EventSourceArn"]] = mapping.get("State", "")
        if not page.get("NextMarker"):
            return states
        args["Marker"] = page["NextMarker"]


def set_enabled(queue_arn: str, enabled: bool) -> str | None:
    """Enable or disable the worker's mapping for this queue; its new State, or None if there is no mapping."""
    worker = get_settings().worker_function
    if not worker:
        return None
    lam = client("lambda")
    found = lam.list_event_source_mappings(FunctionName=worker, EventSourceArn=queue_arn).get("EventSourceMappings")
    if not found:
        return None
    return str(lam.update_event_source_mapping(UUID=found[0]["UUID"], Enabled=enabled).get("State", ""))


PAUSED_STATES = frozenset({"Disabled", "Disabling"})

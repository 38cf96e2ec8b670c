"""Test data factories: valid requests and events, varied per test with keyword overrides."""

from __future__ import annotations

import json
import uuid
from typing import Any

EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}


def email_job(**overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/jobs body for an email job."""
    return {"type": "email.send", "payload": dict(EMAIL), **overrides}


def sqs_record(body: str | dict[str, Any], *, queue_arn: str, receive_count: int = 1) -> dict[str, Any]:
    """One record of an SQS -> Lambda event, as the event source mapping delivers it."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "rh-" + uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }

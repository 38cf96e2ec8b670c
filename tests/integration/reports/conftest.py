"""Report test helpers: the `test.numbers` type (numbers_report.py), a reports API client, reading a report's object."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from numbers_report import CALLS  # noqa: F401 - registers test.numbers


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@pytest.fixture
def reports_api(api_as):
    return api_as("tenant-a", "reports:read,reports:write,jobs:read,reminders:read,webhooks:read")


def bucket_name(stack: Any) -> str:
    return stack.template.physical["ReportsBucket"]


def object_bytes(stack: Any, key: str) -> bytes:
    return stack.client("s3").get_object(Bucket=bucket_name(stack), Key=key)["Body"].read()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def make_visible(stack: Any, aws_calls: Any) -> None:
    """Let a retry's backoff 'elapse': the delay the worker last set on each message becomes zero."""
    sqs = stack.client("sqs")
    for change in aws_calls("sqs", "ChangeMessageVisibility"):
        try:
            sqs.change_message_visibility(
                QueueUrl=change["QueueUrl"], ReceiptHandle=change["ReceiptHandle"], VisibilityTimeout=0
            )
        except sqs.exceptions.ReceiptHandleIsInvalid:
            pass  # received again or deleted since


def run_to_end(stack: Any, aws_calls: Any, rounds: int = 5) -> None:
    for _ in range(rounds):
        stack.drain()
        make_visible(stack, aws_calls)
    stack.drain()

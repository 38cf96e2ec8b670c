"""Report test helpers imported by the tests (fixtures live in conftest.py): a report's object, its CSV rows,
running a report's jobs to their end."""

from __future__ import annotations

import csv
import io
from typing import Any


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

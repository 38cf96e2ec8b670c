"""DynamoDB stream records, typed: Powertools' parser model, its images left in DynamoDB's attribute-value form.

The dispatcher (jobs' outbox) and the events function read the same records; each decodes the images it needs
itself (the jobs repository from attribute values; the events consumer to plain Python, binaries dropped).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel


@cache
def stream_record() -> type[DynamoDBStreamRecordModel]:
    """The record model, built on the first batch, not at import: the parser's models load together (~25% of
    the dispatcher's cold start otherwise, measured by `make bench`)."""
    from aws_lambda_powertools.utilities.parser.models import (
        DynamoDBStreamChangedRecordModel,
        DynamoDBStreamRecordModel,
    )
    from pydantic import field_validator

    class Change(DynamoDBStreamChangedRecordModel):
        @field_validator("Keys", "NewImage", "OldImage", mode="before")
        @classmethod
        def deserialize_field(cls, value: Any) -> Any:  # replaces Powertools' deserialization of the images
            return value

    class StreamRecord(DynamoDBStreamRecordModel):
        dynamodb: Change

    return StreamRecord

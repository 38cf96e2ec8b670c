"""PynamoDB plumbing shared by capabilities: binding a model to the table name the template gives it, and JSON
attributes stored at the size they were received."""

from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import JSONAttribute
from pynamodb.models import Model


def bind(model: type[Model], table_name: str) -> type[Model]:
    """Point a model at its table (names come from settings, never hard-coded); cheap after the first call."""
    if model.Meta.table_name != table_name:
        model.Meta.table_name = table_name
        model._connection = None  # PynamoDB caches the connection with the old name
    return model


class CompactJSONAttribute(JSONAttribute):
    """JSON stored as sent: UTF-8, no ASCII escapes, no spaces. PynamoDB's JSONAttribute escapes every non-ASCII
    character (é -> \\u00e9, an emoji -> two of them), so stored bytes could be 3-6x the bytes received and pass
    DynamoDB's 400 KB item limit. Reads are unchanged (any JSON decodes), so items written either way load."""

    def serialize(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def stored_size(value: Any) -> int:
    """The bytes `value` takes in a CompactJSONAttribute (DynamoDB counts UTF-8 bytes)."""
    return len(CompactJSONAttribute().serialize(value).encode()) if value is not None else 0

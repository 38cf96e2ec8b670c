"""PynamoDB plumbing shared by capabilities: binding a model to the table name the template gives it."""

from __future__ import annotations

from pynamodb.models import Model


def bind(model: type[Model], table_name: str) -> type[Model]:
    """Point a model at its table (names come from settings, never hard-coded); cheap after the first call."""
    if model.Meta.table_name != table_name:
        model.Meta.table_name = table_name
        model._connection = None  # PynamoDB caches the connection with the old name
    return model

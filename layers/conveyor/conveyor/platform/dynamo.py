"""PynamoDB plumbing shared by capabilities: binding a model to the table name the template gives it."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pynamodb.attributes import ListAttribute, UnicodeAttribute
from pynamodb.models import Model

M = TypeVar("M", bound=Model)


def bind(model: type[M], table_name: str) -> type[M]:
    """Point a model at its table (names come from settings, never hard-coded); cheap after the first call."""
    if model.Meta.table_name != table_name:
        model.Meta.table_name = table_name
        model._connection = None  # PynamoDB caches the connection with the old name
    return model


def string_list(**options: Any) -> ListAttribute[str]:
    """A list of strings (a DynamoDB L of S). PynamoDB's stubs type `ListAttribute(of=UnicodeAttribute)` as a list
    of UnicodeAttribute objects (pynamodb/PynamoDB#1246); what it holds, and what reads return, is `list[str]`."""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, **options))

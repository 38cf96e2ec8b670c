"""The report type registry: name -> filters, columns, the scope its data needs, and its pager.

A report type reads its data only through the owning capability's public API (conveyor.reports.sources holds the
built-in ones); adding one is a `report_type(...)` call in a module listed in SOURCE_MODULES, or, for tests and
benchmarks, anywhere before use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from conveyor.platform.errors import InvalidInput
from conveyor.reports.domain import Column, Pager, ReportContext, ReportType

SOURCE_MODULES = ("conveyor.reports.sources",)
_TYPES: dict[str, ReportType] = {}
_loaded = False


def report_type(
    name: str,
    *,
    title: str,
    scope: str,
    filters: type[BaseModel],
    columns: tuple[Column, ...],
    page_size: int = 500,
    estimate: Callable[[str, Any, ReportContext], int | None] | None = None,
) -> Any:
    """Register the decorated pager as report type `name` (`estimate`: a cheap row count, if there is one)."""

    def register(pager: Pager) -> Pager:
        _TYPES[name] = ReportType(name, title, scope, filters, columns, pager, page_size, estimate)
        return pager

    return register


def unregister(name: str) -> None:
    _TYPES.pop(name, None)


def _load() -> dict[str, ReportType]:
    global _loaded
    if not _loaded:
        for module in SOURCE_MODULES:
            importlib.import_module(module)
        _loaded = True
    return _TYPES


def names() -> list[str]:
    return sorted(_load())


def all_types() -> list[ReportType]:
    return [_load()[n] for n in names()]


def require(name: str) -> ReportType:
    found = _load().get(name)
    if found is None:
        raise InvalidInput(
            f"unknown report type {name!r}", fields=[{"loc": ["type"], "msg": f"must be one of: {', '.join(names())}"}]
        )
    return found

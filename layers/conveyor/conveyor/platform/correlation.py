"""The correlation id: one per API request, stored with every job the request makes, carried in the job's SQS
message and appended to the worker's log lines while it runs the job (and to jobs that job enqueues in turn).

It is the caller's `X-Correlation-Id` header when that is a sane token, else API Gateway's request id. It lives in
a context variable for the duration of one request or one record (`bound`), never longer: Lambda reuses the
process for the next invocation, and the Logger's key is removed with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from conveyor.platform.observability import logger

HEADER = "X-Correlation-Id"
KEY = "correlation_id"  # the log key and the job's attribute
_TOKEN = re.compile(r"[A-Za-z0-9._:/=+@-]{1,128}")
_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current() -> str | None:
    """The correlation id of the request or job being handled (None outside one)."""
    return _current.get()


def from_request(event: Mapping[str, Any]) -> str | None:
    """An HTTP API (payload 2.0) event's correlation id: a well-formed header, else API Gateway's request id."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    given = headers.get(HEADER.lower())
    if isinstance(given, str) and _TOKEN.fullmatch(given):
        return given
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id) if request_id else None


def valid(value: object) -> str | None:
    """`value` if it is a correlation id this module would have made, else None (e.g. read from a message)."""
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


@contextmanager
def bound(correlation_id: str | None) -> Iterator[None]:
    """Within the block, `current()` is `correlation_id` and every log line carries it; both end with it."""
    token = _current.set(correlation_id)
    if correlation_id:
        logger.append_keys(**{KEY: correlation_id})
    try:
        yield
    finally:
        _current.reset(token)
        logger.remove_keys([KEY])

"""boto3 clients: created lazily, once per process, shared by every module (boto3 clients are thread-safe).

Endpoints follow boto3's own configuration (AWS_ENDPOINT_URL and friends), which is how the local stack
points functions at its emulator.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
# Health probes answer fast and never retry: a dependency that does not answer in time is not ready.
# (`total_max_attempts` counts the first request; botocore's `max_attempts` counts retries, so 1 meant two requests.)
_PROBE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1, read_timeout=2)


@cache
def client(service: str) -> Any:
    import boto3  # imported on first use: keeps handlers that never call AWS cheap to start

    return boto3.session.Session().client(service, config=_CONFIG)


@cache
def probe_client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, config=_PROBE_CONFIG)


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def provider_failure(service: str, exc: Exception, transient_codes: frozenset[str]) -> Exception:
    """A provider's ClientError as a job outcome: throttling and 5xx may pass (TransientError), the rest cannot."""
    from conveyor.platform.errors import PermanentError, TransientError

    code = error_code(exc)
    message = f"{service} {code}: {(getattr(exc, 'response', None) or {}).get('Error', {}).get('Message', '')}"
    if code in transient_codes or http_status(exc) >= 500:
        return TransientError(message)
    return PermanentError(message)

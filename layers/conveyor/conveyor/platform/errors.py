"""Typed errors. HTTP mapping lives in conveyor.platform.http.errors; queue behaviour in conveyor.jobs.worker."""

from __future__ import annotations

from typing import Any


class ConveyorError(Exception):
    """Base class: a message safe to show the caller, plus a stable machine-readable code."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# --- client-facing (mapped to 4xx) ---------------------------------------------------------------
class BadRequest(ConveyorError):
    code = "bad_request"


class Unauthorized(ConveyorError):
    code = "unauthorized"


class Forbidden(ConveyorError):
    code = "forbidden"


class NotFound(ConveyorError):
    code = "not_found"


class Conflict(ConveyorError):
    code = "conflict"


class PayloadTooLarge(ConveyorError):
    code = "payload_too_large"


class InvalidInput(ConveyorError):
    code = "validation_error"


class Unavailable(ConveyorError):
    """A dependency is failing right now; the caller may try again shortly."""

    code = "unavailable"


# --- job execution (mapped to queue behaviour) ---------------------------------------------------
class PermanentError(ConveyorError):
    """Retrying cannot help (bad address, unknown template...): the job fails at once."""

    code = "permanent_error"


class TransientError(ConveyorError):
    """A dependency failed in a way that may pass (throttling, 5xx): retried with backoff."""

    code = "transient_error"


class RetryLater(ConveyorError):
    """Defer the job without spending an attempt (e.g. a provider's rate limit asks us to wait)."""

    code = "retry_later"

    def __init__(self, seconds: int, message: str = "deferred by handler") -> None:
        super().__init__(message)
        self.seconds = max(1, int(seconds))

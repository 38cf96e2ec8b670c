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


class InvalidCursor(BadRequest):
    """A page cursor this list did not hand out (forged, truncated, another list's)."""


class Unauthorized(ConveyorError):
    code = "unauthorized"


class Forbidden(ConveyorError):
    code = "forbidden"


class NotFound(ConveyorError):
    code = "not_found"


class Conflict(ConveyorError):
    """The request collides with the resource's current state or another request (409)."""

    code = "conflict"


class InvalidState(Conflict):
    """The transition asked for is not allowed from the state the item is in (e.g. cancelling a finished job)."""


class PayloadTooLarge(ConveyorError):
    code = "payload_too_large"


class InvalidInput(ConveyorError):
    """The use case's input is invalid. `fields` name the problems, each {"loc": [...], "msg", "type"?} with
    `loc` relative to the input (e.g. ["payload", "to", 0]); the edge says where the input came from."""

    code = "validation_error"

    def __init__(self, message: str, *, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.fields = list(fields or [])


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

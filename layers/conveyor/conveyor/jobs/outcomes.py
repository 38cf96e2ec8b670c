"""The worker's outcome policy: what a handler's outcome does to its job and its message, decided here only.

  success                      -> complete: the job is completed; its message acknowledged
  PermanentError               -> fail at once with the reason; acknowledged (never retried)
  RetryLater(s)                -> defer: retrying without spending an attempt; the message returns after s
                                  seconds, unless the job was deferred too often or too long (then fail)
  any other exception          -> transient: retry with backoff + full jitter (the message's visibility
                                  timeout is the delay), or fail once the attempts are spent
  claimed past its last attempt (the worker died during it) -> exhausted: fail

Pure: the worker applies the decision (conditional writes, the message's visibility, metrics, reports).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from conveyor.jobs.registry import MAX_VISIBILITY_SECONDS, RetryPolicy
from conveyor.platform.errors import PermanentError, RetryLater


class Action(StrEnum):
    COMPLETE = "complete"
    FAIL = "fail"
    RETRY = "retry"  # spends an attempt; comes back after the backoff
    DEFER = "defer"  # does not spend one; comes back when the handler asked


@dataclass(frozen=True)
class Decision:
    action: Action
    error_type: str = ""
    message: str = ""
    delay_seconds: int = 0
    with_exception: bool = True  # report the handler's exception with the failure (not for a spent deferral)


@dataclass(frozen=True)
class Attempts:
    """Where the job stands when its handler returns or raises."""

    attempt: int  # this one, counting from 1 (deferrals give theirs back)
    max_attempts: int
    defers: int = 0
    deferred_for_seconds: float = 0.0  # since its first deferral


def exhausted(attempts: Attempts) -> Decision | None:
    """A job claimed again after its lease ran out past its last attempt: that attempt died (timeout, crash)."""
    if attempts.attempt > attempts.max_attempts:
        return Decision(
            Action.FAIL, "AttemptsExhausted", "the worker stopped (timeout or crash) during the last attempt"
        )
    return None


def decide(
    error: BaseException | None, attempts: Attempts, policy: RetryPolicy, rng: random.Random | None = None
) -> Decision:
    """The one outcome table (see the module's docstring)."""
    if error is None:
        return Decision(Action.COMPLETE)
    if isinstance(error, PermanentError):
        return Decision(Action.FAIL, type(error).__name__, error.message)
    if isinstance(error, RetryLater):
        if (
            attempts.defers >= policy.max_defers
            or attempts.deferred_for_seconds + error.seconds > policy.max_defer_total_seconds
        ):
            message = f"deferred {attempts.defers} times over {int(attempts.deferred_for_seconds)}s: {error.message}"
            return Decision(Action.FAIL, "DeferredTooLong", message, with_exception=False)
        return Decision(Action.DEFER, type(error).__name__, error.message, min(error.seconds, MAX_VISIBILITY_SECONDS))
    message = str(error) or type(error).__name__
    if attempts.attempt >= attempts.max_attempts:
        return Decision(Action.FAIL, type(error).__name__, message)
    return Decision(Action.RETRY, type(error).__name__, message, policy.backoff(attempts.attempt, rng))

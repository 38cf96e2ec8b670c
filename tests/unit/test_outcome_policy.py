"""The worker's outcome policy, decided without AWS: what each handler outcome does to the job."""

from __future__ import annotations

import random

import pytest

from conveyor.jobs.outcomes import Action, Attempts, decide, exhausted
from conveyor.jobs.registry import MAX_VISIBILITY_SECONDS, RetryPolicy
from conveyor.platform.errors import PermanentError, RetryLater, TransientError

POLICY = RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=60, max_defers=2, max_defer_total_seconds=600)


def test_success_completes_the_job():
    assert decide(None, Attempts(1, 3), POLICY).action == Action.COMPLETE


def test_a_permanent_error_fails_at_once_with_its_reason_even_with_attempts_left():
    decision = decide(PermanentError("recipient does not exist"), Attempts(1, 3), POLICY)
    assert (decision.action, decision.error_type, decision.message) == (
        Action.FAIL,
        "PermanentError",
        "recipient does not exist",
    )


@pytest.mark.parametrize("error", [ConnectionError("provider timed out"), TransientError("SES throttled")])
def test_any_other_error_is_retried_with_jittered_backoff_while_attempts_remain(error):
    decision = decide(error, Attempts(2, 3), POLICY, random.Random(7))
    assert (decision.action, decision.error_type) == (Action.RETRY, type(error).__name__)
    assert 1 <= decision.delay_seconds <= 20  # attempt 2: uniform(0, 10 * 2)


def test_the_last_attempt_fails_instead_of_retrying():
    decision = decide(ConnectionError("provider timed out"), Attempts(3, 3), POLICY)
    assert (decision.action, decision.error_type, decision.message) == (
        Action.FAIL,
        "ConnectionError",
        "provider timed out",
    )


def test_an_error_without_text_is_named_by_its_type():
    assert decide(ConnectionError(), Attempts(1, 3), POLICY).message == "ConnectionError"


def test_retry_later_defers_for_the_asked_time_without_spending_an_attempt():
    decision = decide(RetryLater(120, "rate limited"), Attempts(3, 3, defers=1, deferred_for_seconds=60), POLICY)
    assert (decision.action, decision.delay_seconds, decision.message) == (Action.DEFER, 120, "rate limited")


def test_a_deferral_never_asks_sqs_for_more_than_its_visibility_ceiling():
    generous = RetryPolicy(max_defer_total_seconds=10**9)
    assert decide(RetryLater(10**8), Attempts(1, 3), generous).delay_seconds == MAX_VISIBILITY_SECONDS


@pytest.mark.parametrize(
    ("defers", "deferred_for", "asked"), [(2, 10, 10), (1, 590, 20)], ids=["too-often", "too-long"]
)
def test_a_job_deferred_too_often_or_too_long_fails(defers, deferred_for, asked):
    decision = decide(RetryLater(asked, "rate limited"), Attempts(1, 3, defers, deferred_for), POLICY)
    assert (decision.action, decision.error_type) == (Action.FAIL, "DeferredTooLong")
    assert decision.message.startswith(f"deferred {defers} times over {deferred_for}s")
    assert decision.with_exception is False


def test_a_job_claimed_past_its_last_attempt_is_exhausted():
    assert exhausted(Attempts(3, 3)) is None
    decision = exhausted(Attempts(4, 3))
    assert decision is not None and (decision.action, decision.error_type) == (Action.FAIL, "AttemptsExhausted")

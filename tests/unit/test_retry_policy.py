import random

from conveyor.jobs.registry import MAX_VISIBILITY_SECONDS, RetryPolicy


def test_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(base_seconds=10, cap_seconds=900)
    rng = random.Random(7)

    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (7, 640), (8, 900), (30, 900)]:
        delays = [policy.backoff(attempt, rng) for _ in range(300)]
        assert min(delays) >= 1 and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not a fixed step
        assert len(set(delays)) > min(ceiling, 300) // 4


def test_backoff_never_exceeds_the_sqs_visibility_ceiling():
    policy = RetryPolicy(base_seconds=3600, cap_seconds=10**6)
    assert all(policy.backoff(10) <= MAX_VISIBILITY_SECONDS for _ in range(100))

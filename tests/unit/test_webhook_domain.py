"""Webhooks' pure rules: signatures (cross-checked with the `standardwebhooks` library), rotation, the retry
schedule, Retry-After, patterns, the circuit breaker and the health rules."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conveyor.webhooks import domain
from conveyor.webhooks.domain import Attempt, Health, StoredSecret, Trigger

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _signed(secrets: list[str]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": "evt_01", "type": "job.completed", "data": {}}).encode()
    return body, domain.headers(secrets, "evt_01", int(time.time()), body)


def test_a_delivery_verifies_with_the_standardwebhooks_library():
    secret = domain.new_secret()
    body, headers = _signed([secret])

    assert Webhook(secret).verify(body, headers)["type"] == "job.completed"
    assert secret.startswith("whsec_") and len(domain._key(secret)) == 32


def test_every_active_secret_signs_and_each_verifies_alone():
    new, old = domain.new_secret(), domain.new_secret()
    body, headers = _signed([new, old])

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(domain.new_secret()).verify(body, headers)


def test_a_tampered_body_does_not_verify():
    secret = domain.new_secret()
    body, headers = _signed([secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"completed", b"failed"), headers)


def _stored(n: int, expires: datetime | None = None) -> StoredSecret:
    return StoredSecret(bytes([n]), NOW - timedelta(days=n), expires)


def test_rotation_keeps_the_previous_secret_for_the_grace_period_then_drops_it():
    current = [_stored(1)]
    after = domain.rotated(current, _stored(2), NOW, timedelta(hours=24))

    assert [s.ciphertext for s in after] == [bytes([2]), bytes([1])]
    assert after[1].expires_at == NOW + timedelta(hours=24)
    later = NOW + timedelta(hours=25)
    assert [s.ciphertext for s in after if s.active(later)] == [bytes([2])]


def test_rotation_keeps_at_most_five_old_secrets():
    secrets = [_stored(1)]
    for n in range(2, 10):
        secrets = domain.rotated(secrets, _stored(n), NOW + timedelta(minutes=n), timedelta(days=7))

    assert len(secrets) == 1 + domain.MAX_OLD_SECRETS
    assert secrets[0].ciphertext == bytes([9])
    assert [s.ciphertext for s in secrets[1:]] == [bytes([n]) for n in (8, 7, 6, 5, 4)]  # the oldest went


def test_the_schedule_waits_at_least_each_step_and_at_most_ten_percent_more():
    rng = random.Random(7)
    for made, step in enumerate(domain.RETRY_SCHEDULE_SECONDS, start=1):
        for _ in range(50):
            assert step <= domain.retry_delay(made, rng=rng) <= step * 1.1
    assert domain.retry_delay(len(domain.RETRY_SCHEDULE_SECONDS) + 1) is None
    assert sum(domain.RETRY_SCHEDULE_SECONDS) / 86400 == pytest.approx(3.15, abs=0.01)


def test_retry_after_waits_at_least_that_long_capped_at_a_day():
    assert domain.retry_delay(1, retry_after=120) >= 120
    assert domain.retry_delay(3, retry_after=120) >= 1800  # never earlier than the schedule
    assert domain.retry_delay(1, retry_after=10**9) == domain.RETRY_AFTER_CAP_SECONDS


def test_retry_after_reads_seconds_and_http_dates():
    assert domain.parse_retry_after("120", NOW) == 120
    assert domain.parse_retry_after("Tue, 01 Dec 2026 10:02:00 GMT", NOW) == 120
    assert domain.parse_retry_after("soon", NOW) is None
    assert domain.parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    ("status", "delivered", "retries", "disables"),
    [(200, True, False, False), (204, True, False, False), (302, False, True, False), (500, False, True, False),
     (429, False, True, False), (410, False, False, True), (400, False, True, False)],
)  # fmt: skip
def test_what_an_answer_means(status, delivered, retries, disables):
    result = domain.outcome(Attempt(NOW, Trigger.SCHEDULED, status_code=status), 1, retry_after=None,
                            trigger=Trigger.SCHEDULED)  # fmt: skip
    assert result.delivered is delivered
    assert (result.retry_in is not None) is retries
    assert (result.disable_reason is not None) is disables


def test_network_errors_are_retried_and_test_sends_are_not():
    error = Attempt(NOW, Trigger.SCHEDULED, error=domain.ErrorClass.DNS)
    assert domain.outcome(error, 1, retry_after=None, trigger=Trigger.SCHEDULED).retry_in is not None
    assert domain.outcome(error, 1, retry_after=None, trigger=Trigger.TEST).retry_in is None


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [("*", "job.failed", True), ("contact.*", "contact.created", True), ("contact.*", "contacts.created", False),
     ("job.completed", "job.completed", True), ("job.completed", "job.failed", False),
     ("webhook.*", "webhook.endpoint.disabled", True)],
)  # fmt: skip
def test_event_type_patterns(pattern, event_type, expected):
    assert domain.matches(pattern, event_type) is expected


def test_the_breaker_opens_after_ten_consecutive_failures_and_lets_one_probe_after_the_cooldown():
    assert not domain.should_open_breaker(Health(consecutive_failures=9))
    assert domain.should_open_breaker(Health(consecutive_failures=10))
    opened = Health(consecutive_failures=10, breaker_open_until=NOW + timedelta(seconds=60), breaker_opens=1)
    assert domain.breaker_defers(opened, NOW) == NOW + timedelta(seconds=60)
    assert domain.breaker_defers(opened, NOW + timedelta(seconds=61)) is None  # the probe may go
    probing = Health(breaker_open_until=NOW, probe_until=NOW + timedelta(seconds=30), breaker_opens=1)
    assert domain.breaker_defers(probing, NOW + timedelta(seconds=1)) == NOW + timedelta(seconds=30)
    assert [domain.breaker_cooldown(n) for n in (1, 2, 3, 5, 9)] == [60, 120, 240, 900, 900]


def test_a_subscription_is_disabled_after_five_days_without_success_and_three_failures_over_twelve_hours():
    start = NOW - timedelta(days=5)
    spread = Health(failures_since_success=3, failing_since=start, last_failure_at=start + timedelta(hours=12))
    assert domain.should_disable(spread, NOW)
    assert not domain.should_disable(spread, NOW - timedelta(minutes=1))
    burst = Health(failures_since_success=50, failing_since=start, last_failure_at=start + timedelta(hours=1))
    assert not domain.should_disable(burst, NOW)  # one bad hour five days ago is not "failing for 5 days"
    assert not domain.should_disable(Health(failures_since_success=2, failing_since=start,
                                            last_failure_at=NOW), NOW)  # fmt: skip


def test_failing_warnings_come_after_one_and_four_days():
    start = NOW - timedelta(days=1)
    assert domain.warning_due(Health(failing_since=NOW - timedelta(hours=23)), NOW) is None
    assert domain.warning_due(Health(failing_since=start), NOW) == 1
    assert domain.warning_due(Health(failing_since=start, warnings_sent=1), NOW) is None
    assert domain.warning_due(Health(failing_since=NOW - timedelta(days=4), warnings_sent=1), NOW) == 2
    assert domain.warning_due(Health(failing_since=NOW - timedelta(days=9), warnings_sent=2), NOW) is None

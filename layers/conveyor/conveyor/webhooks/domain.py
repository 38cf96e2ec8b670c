"""Webhooks, the pure part: subscriptions, deliveries, the Standard Webhooks signature, the retry schedule, the
circuit breaker and the health rules that warn about and disable a failing endpoint. No I/O here.

Decisions (each with its reason):
- Retry schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (10 attempts over
  about 3 days 3 hours), each delay stretched by 0-10 % jitter, never shortened, so retries never come early
  and a burst of failures does not come back in lock-step. `Retry-After` (429/503) waits at least that long,
  capped at 24 h (the schedule's longest step) so a hostile header cannot park a delivery for ever.
- Circuit breaker per subscription: it opens after 10 consecutive failed attempts to the endpoint (across its
  deliveries). A healthy endpoint with 1 % errors has ten failures in a row with probability 1e-20; a dead one
  reaches ten within seconds under load, so the breaker spares it (and our attempts) from a flood. While open,
  deliveries are deferred without spending an attempt; after the cool-down (60 s, doubling per re-opening up
  to 15 min) one delivery probes; success closes the breaker, failure re-opens it.
- Health: a subscription with no success for 5 days, at least 3 failures, spread over at least 12 h, is
  disabled (`webhook.endpoint.disabled`); `webhook.endpoint.failing` warnings go out after 1 day and 4 days of
  failing. A 410 Gone disables at once. While disabled, new events are recorded as skipped (recoverable).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SECRET_BYTES = 32
MAX_OLD_SECRETS = 5
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)

RETRY_SCHEDULE_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_SCHEDULE_SECONDS) + 1
JITTER = 0.10
RETRY_AFTER_CAP_SECONDS = 86400

BREAKER_THRESHOLD = 10
BREAKER_COOLDOWN_SECONDS = 60
BREAKER_MAX_COOLDOWN_SECONDS = 900
PROBE_LEASE_SECONDS = 60

DISABLE_AFTER = timedelta(days=5)
DISABLE_MIN_FAILURES = 3
DISABLE_MIN_SPREAD = timedelta(hours=12)
WARN_AFTER = (timedelta(days=1), timedelta(days=4))

DELIVERY_RETENTION = timedelta(days=30)
MAX_ATTEMPTS_KEPT = 25  # a delivery's log stays bounded (400 KB items): the schedule's 10 plus manual sends


class SubscriptionState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # an attempt is due at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # attempts spent, or the endpoint answered 410
    SKIPPED = "skipped"  # the subscription was disabled when its turn came


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    RECOVER = "recover"
    TEST = "test"


class ErrorClass(StrEnum):
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    BLOCKED = "blocked"
    HTTP = "http"


REOPENABLE = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


# --- secrets and the Standard Webhooks v1 signature ----------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the secret's decoded bytes."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def signature_header(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One signature per active secret, space-separated (receivers accept any one that verifies)."""
    return " ".join(signature(secret, message_id, timestamp, body) for secret in secrets)


def headers(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, message_id, timestamp, body),
    }


@dataclass(frozen=True)
class StoredSecret:
    """A secret as stored: only its KMS ciphertext. `expires_at` None = the current secret."""

    ciphertext: bytes
    created_at: datetime
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def rotated(current: list[StoredSecret], new: StoredSecret, now: datetime, grace: timedelta) -> list[StoredSecret]:
    """The new secret first; the old ones still inside their grace, the previous current one until now+grace;
    expired ones dropped and at most MAX_OLD_SECRETS old ones kept (the oldest go first)."""
    old = []
    for secret in current:
        if secret.expires_at is None:
            secret = StoredSecret(secret.ciphertext, secret.created_at, now + grace)
        if secret.active(now):
            old.append(secret)
    old.sort(key=lambda s: s.expires_at or now, reverse=True)
    return [new, *old[:MAX_OLD_SECRETS]]


# --- event type patterns -------------------------------------------------------------------------------
def matches(pattern: str, event_type: str) -> bool:
    """`*` matches everything; `contact.*` matches `contact.created` and `contact.x.y`; else an exact type."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def wants(patterns: list[str], event_type: str) -> bool:
    return any(matches(p, event_type) for p in patterns)


# --- subscriptions and deliveries ----------------------------------------------------------------------
@dataclass(frozen=True)
class Health:
    """What the delivery path tracks per subscription (breaker and auto-disable inputs)."""

    consecutive_failures: int = 0
    failures_since_success: int = 0
    failing_since: datetime | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    warnings_sent: int = 0
    breaker_open_until: datetime | None = None
    breaker_opens: int = 0
    probe_until: datetime | None = None


@dataclass(frozen=True)
class Subscription:
    tenant_id: str
    id: str
    url: str
    event_types: list[str]
    state: SubscriptionState
    created_at: datetime
    updated_at: datetime
    secrets: list[StoredSecret] = field(default_factory=list, repr=False)
    description: str | None = None
    rate_limit_per_second: int | None = None
    alert_contact_id: str | None = None
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    health: Health = field(default_factory=Health)
    version: int = 1

    @property
    def enabled(self) -> bool:
        return self.state == SubscriptionState.ACTIVE


@dataclass(frozen=True)
class Attempt:
    at: datetime
    trigger: Trigger
    duration_ms: int = 0
    status_code: int | None = None
    error: ErrorClass | None = None
    message: str | None = None
    response_excerpt: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    tenant_id: str
    subscription_id: str
    id: str  # dlv_<event ULID>: one delivery per (subscription, event)
    event_id: str
    event_type: str
    event: dict[str, Any]
    status: DeliveryStatus
    created_at: datetime
    updated_at: datetime
    attempt_count: int = 0
    round_start: int = 0  # attempt_count when the current schedule began (a resend or recovery restarts it)
    next_attempt_at: datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    test: bool = False


def delivery_id(event_id: str) -> str:
    """Deterministic per event (and unique within its subscription), so it sorts by the event's time."""
    return "dlv_" + event_id.removeprefix("evt_")


# --- the retry schedule --------------------------------------------------------------------------------
def retry_delay(attempts_made: int, *, retry_after: int | None = None, rng: random.Random | None = None) -> int | None:
    """Seconds to wait after the `attempts_made`-th scheduled attempt failed; None when the schedule is spent."""
    if attempts_made < 1 or attempts_made > len(RETRY_SCHEDULE_SECONDS):
        return None
    base = RETRY_SCHEDULE_SECONDS[attempts_made - 1]
    delay = base + int(base * JITTER * (rng or random).random())  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, min(max(0, retry_after), RETRY_AFTER_CAP_SECONDS))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> int | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int((when - now).total_seconds()))


@dataclass(frozen=True)
class Outcome:
    """What one attempt's answer means for the delivery and the subscription."""

    delivered: bool
    retry_in: int | None  # seconds until the next attempt; None = no more attempts
    disable_reason: str | None = None  # 410 Gone: the subscription is disabled at once


def outcome(
    attempt: Attempt, attempts_made: int, *, retry_after: int | None, trigger: Trigger, rng: random.Random | None = None
) -> Outcome:
    """2xx delivered; 410 fails and disables; anything else (3xx included: never followed) retries on schedule.
    Test sends are never retried; a manual send or a recovery that fails goes back on the schedule."""
    if attempt.succeeded:
        return Outcome(True, None)
    if attempt.status_code == 410:
        return Outcome(False, None, "the endpoint answered 410 Gone")
    if trigger == Trigger.TEST:
        return Outcome(False, None)
    return Outcome(False, retry_delay(attempts_made, retry_after=retry_after, rng=rng))


# --- the circuit breaker -------------------------------------------------------------------------------
def breaker_cooldown(opens: int) -> int:
    return min(BREAKER_MAX_COOLDOWN_SECONDS, BREAKER_COOLDOWN_SECONDS * 2 ** max(0, opens - 1))


def should_open_breaker(health: Health) -> bool:
    return health.consecutive_failures >= BREAKER_THRESHOLD


def breaker_defers(health: Health, now: datetime) -> datetime | None:
    """When a delivery to this endpoint should be tried instead of now (open breaker), or None to go ahead.
    Going ahead while the breaker's cool-down has passed means being the probe (the caller claims that slot)."""
    if health.breaker_open_until is None:
        return None
    if health.breaker_open_until > now:
        return health.breaker_open_until
    if health.probe_until is not None and health.probe_until > now:
        return health.probe_until  # another delivery is probing right now
    return None


def deferred_until(at: datetime, health: Health, rng: random.Random | None = None) -> datetime:
    """Spread deferred deliveries over one cool-down after `at`, so they do not all wake together."""
    spread = breaker_cooldown(max(1, health.breaker_opens))
    return at + timedelta(seconds=1 + int(spread * (rng or random).random()))  # noqa: S311


# --- health: warnings and auto-disable -----------------------------------------------------------------
def should_disable(health: Health, now: datetime) -> bool:
    if health.failing_since is None or health.last_failure_at is None:
        return False
    return (
        now - health.failing_since >= DISABLE_AFTER
        and health.failures_since_success >= DISABLE_MIN_FAILURES
        and health.last_failure_at - health.failing_since >= DISABLE_MIN_SPREAD
    )


def warning_due(health: Health, now: datetime) -> int | None:
    """The number (1-based) of the failing warning due now, or None."""
    if health.failing_since is None or health.warnings_sent >= len(WARN_AFTER):
        return None
    if now - health.failing_since >= WARN_AFTER[health.warnings_sent]:
        return health.warnings_sent + 1
    return None

"""Webhook use cases: subscriptions (API), fan-out of domain events to deliveries (events function), one
delivery attempt (worker), recovery and the overdue sweep. Every function takes the tenant; nothing crosses one.

Delivery of one (subscription, event), end to end:
  event -> `insert_delivery` (conditional: exactly one per pair) -> job `webhook.deliver` (expected attempt n)
  job -> delivery still pending at attempt n? -> subscription disabled: skipped | breaker open: postponed, no
  attempt spent | rate limit full: postponed 1 s -> `claim_attempt` (one worker per attempt) -> signed POST ->
  `record_attempt` -> next job on the schedule (through the jobs engine: SQS delay up to 15 min, the engine's
  delayed jobs beyond). A job that is lost (a crash between the record and the enqueue) leaves the delivery
  pending in the due index; the sweep sends it again once it is 10 minutes overdue, so no retry stops with a
  "next attempt" in the past.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from conveyor import jobs
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import Conflict, InvalidCursor, InvalidInput, NotFound
from conveyor.platform.events import DomainEvent
from conveyor.platform.ids import new_id, ulid
from conveyor.platform.observability import count, logger
from conveyor.platform.outbound import Blocked, DnsFailure, OutboundClient, OutboundError, Policy, check_url
from conveyor.platform.settings import get_settings
from conveyor.webhooks import domain, repository, vault
from conveyor.webhooks.domain import (
    Attempt,
    Delivery,
    DeliveryStatus,
    ErrorClass,
    StoredSecret,
    Subscription,
    SubscriptionState,
    Trigger,
)

MAX_SUBSCRIPTIONS = 50  # per tenant: the fan-out reads them all for every event
IN_FLIGHT_LEASE_SECONDS = 45  # one attempt takes at most ~20 s (connect 5 + exchange 15)
OVERDUE = timedelta(minutes=10)
RECOVER_BUDGET_SECONDS = 30  # one recover job delivers for this long, then hands on to the next
DELIVER_JOB, RECOVER_JOB = "webhook.deliver", "webhook.recover"
BY_TENANT = "by tenant request"


def policy() -> Policy:
    return Policy(allow_private=get_settings().outbound_allow_private)


@lru_cache(maxsize=2)
def _client(current: Policy) -> OutboundClient:
    return OutboundClient(current, user_agent="Conveyor-Webhooks/1.0")


# --- subscriptions -------------------------------------------------------------------------------------
def _known_types() -> set[str]:
    from conveyor import capabilities

    return {spec.name for spec in capabilities.event_catalogue()}


def _check_patterns(patterns: list[str]) -> list[str]:
    known = _known_types()
    unknown = [p for p in patterns if p != "*" and not p.endswith(".*") and p not in known]
    if unknown:
        raise InvalidInput(
            f"unknown event types: {', '.join(unknown)}",
            fields=[{"loc": ["event_types"], "msg": f"known types: {', '.join(sorted(known))}"}],
        )
    return list(dict.fromkeys(patterns))


def _check_url(url: str) -> None:
    """Refuse a URL that can never be delivered to. A name that does not resolve (yet) is accepted: DNS errors
    are retried like any other delivery failure, and every attempt checks the addresses again."""
    try:
        check_url(url, policy())
    except DnsFailure:
        return
    except Blocked as exc:
        message = f"the URL cannot be delivered to: {exc.message}"
        raise InvalidInput(message, fields=[{"loc": ["url"], "msg": exc.message}]) from None


def create(
    tenant_id: str,
    *,
    url: str,
    event_types: list[str],
    description: str | None = None,
    enabled: bool = True,
    rate_limit_per_second: int | None = None,
    alert_contact_id: str | None = None,
) -> tuple[Subscription, str]:
    """A new subscription and its signing secret (returned here once; stored only encrypted)."""
    patterns = _check_patterns(event_types)
    _check_url(url)
    if len(repository.list_subscriptions(tenant_id)) >= MAX_SUBSCRIPTIONS:
        raise Conflict(f"a tenant can have at most {MAX_SUBSCRIPTIONS} webhook subscriptions")
    now = utcnow()
    subscription_id = new_id("whk")
    secret = domain.new_secret()
    stored = StoredSecret(vault.encrypt(tenant_id, subscription_id, secret), now)
    subscription = Subscription(
        tenant_id=tenant_id,
        id=subscription_id,
        url=url,
        event_types=patterns,
        state=SubscriptionState.ACTIVE,
        created_at=now,
        updated_at=now,
        secrets=[stored],
        description=description,
        rate_limit_per_second=rate_limit_per_second,
        alert_contact_id=alert_contact_id,
    )
    repository.insert_subscription(subscription)
    if not enabled:
        repository.disable(tenant_id, subscription_id, BY_TENANT, now)
    return get(tenant_id, subscription_id), secret


def get(tenant_id: str, subscription_id: str) -> Subscription:
    found = repository.get_subscription(tenant_id, subscription_id, consistent=True)
    if found is None:
        raise NotFound(f"webhook subscription {subscription_id!r} not found")
    return found


def list_all(tenant_id: str) -> list[Subscription]:
    return sorted(repository.list_subscriptions(tenant_id), key=lambda s: s.id)


_UNSET: Any = object()


def update(
    tenant_id: str,
    subscription_id: str,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: Any = _UNSET,
    enabled: bool | None = None,
    rate_limit_per_second: Any = _UNSET,
    alert_contact_id: Any = _UNSET,
) -> Subscription:
    current = get(tenant_id, subscription_id)
    changes: dict[str, Any] = {}
    if url is not None and url != current.url:
        _check_url(url)
        changes["url"] = url
    if event_types is not None:
        changes["event_types"] = _check_patterns(event_types)
    for name, value in (
        ("description", description),
        ("rate_limit_per_second", rate_limit_per_second),
        ("alert_contact_id", alert_contact_id),
    ):
        if value is not _UNSET:
            changes[name] = value
    if changes and not repository.update_subscription(current, current.version, **changes):
        raise Conflict("the subscription changed meanwhile; read it again and retry")
    now = utcnow()
    if enabled is True and not current.enabled:
        repository.enable(tenant_id, subscription_id, now)
    elif enabled is False and current.enabled:
        repository.disable(tenant_id, subscription_id, BY_TENANT, now)
    return get(tenant_id, subscription_id)


def delete(tenant_id: str, subscription_id: str) -> None:
    """The subscription goes at once; its deliveries age out with their TTL (pending ones are skipped)."""
    if not repository.delete_subscription(tenant_id, subscription_id):
        raise NotFound(f"webhook subscription {subscription_id!r} not found")


def rotate_secret(tenant_id: str, subscription_id: str, grace: timedelta) -> tuple[Subscription, str]:
    """A new current secret (returned once); the previous ones keep signing until `grace` has passed."""
    if grace < timedelta(0) or grace > domain.MAX_GRACE:
        limit = int(domain.MAX_GRACE.total_seconds())
        raise InvalidInput(
            f"grace_seconds must be between 0 and {limit}", fields=[{"loc": ["grace_seconds"], "msg": "out of range"}]
        )
    current = get(tenant_id, subscription_id)
    now = utcnow()
    secret = domain.new_secret()
    new = StoredSecret(vault.encrypt(tenant_id, subscription_id, secret), now)
    secrets = domain.rotated(current.secrets, new, now, grace)
    if not repository.update_subscription(current, current.version, secrets=secrets):
        raise Conflict("the subscription changed meanwhile; retry the rotation")
    return get(tenant_id, subscription_id), secret


def active_secrets(subscription: Subscription, now: datetime) -> list[str]:
    return [
        vault.decrypt(subscription.tenant_id, subscription.id, s.ciphertext)
        for s in subscription.secrets
        if s.active(now)
    ]


# --- fan-out: domain events -> deliveries --------------------------------------------------------------
def fan_out(event: DomainEvent, subscriptions: list[Subscription], now: datetime) -> int:
    """One delivery per subscription that wants the event (idempotent: a replayed event creates none twice);
    pending ones get their first job, those of a disabled subscription are recorded as skipped."""
    created = 0
    for subscription in subscriptions:
        if not domain.wants(subscription.event_types, event.type):
            continue
        if event.type.startswith("webhook.endpoint.") and event.data.get("subscription_id") == subscription.id:
            continue  # an endpoint is not told about its own failure (it would not hear it)
        delivery = Delivery(
            tenant_id=subscription.tenant_id,
            subscription_id=subscription.id,
            id=domain.delivery_id(event.id),
            event_id=event.id,
            event_type=event.type,
            event=event.envelope(),
            status=DeliveryStatus.PENDING if subscription.enabled else DeliveryStatus.SKIPPED,
            created_at=now,
            updated_at=now,
            next_attempt_at=now if subscription.enabled else None,
        )
        if repository.insert_delivery(delivery, now):
            created += 1
            if subscription.enabled:
                _enqueue(delivery, 0, Trigger.SCHEDULED)
            continue
        existing = repository.get_delivery(delivery.tenant_id, delivery.subscription_id, delivery.id)
        if existing is not None and existing.status == DeliveryStatus.PENDING and existing.attempt_count == 0:
            _enqueue(existing, 0, Trigger.SCHEDULED)  # a replayed change: its first job may never have been sent
    return created


def _enqueue(delivery: Delivery, expected: int, trigger: Trigger, run_at: datetime | None = None) -> None:
    payload = {
        "subscription_id": delivery.subscription_id,
        "delivery_id": delivery.id,
        "expected_attempts": expected,
        "trigger": str(trigger),
    }
    jobs.enqueue(delivery.tenant_id, jobs.NewJob(type=DELIVER_JOB, payload=payload, run_at=run_at))


# --- one attempt ---------------------------------------------------------------------------------------
def deliver(tenant_id: str, subscription_id: str, delivery_id: str, expected: int, trigger: Trigger) -> dict[str, Any]:
    """Perform attempt `expected + 1` of a delivery, if it is still the one due; returns what happened."""
    now = utcnow()
    delivery = repository.get_delivery(tenant_id, subscription_id, delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.PENDING or delivery.attempt_count != expected:
        return {"outcome": "stale"}  # a duplicate job, or an attempt someone else made
    subscription = repository.get_subscription(tenant_id, subscription_id, consistent=True)
    if subscription is None:
        repository.skip(delivery, "the subscription was deleted", now)
        return {"outcome": "skipped", "reason": "subscription deleted"}
    is_test = trigger == Trigger.TEST
    if not subscription.enabled and not is_test:
        repository.skip(delivery, "the subscription is disabled", now)
        count("WebhookDeliveriesSkipped", "webhook")
        return {"outcome": "skipped", "reason": "subscription disabled"}
    if not is_test:
        wait = _must_wait(subscription, now)
        if wait is not None:
            return _postpone(delivery, wait, trigger, now)
    if not repository.claim_attempt(delivery, now, IN_FLIGHT_LEASE_SECONDS):
        return {"outcome": "stale"}
    return _attempt(subscription, delivery, trigger, now)


def _must_wait(subscription: Subscription, now: datetime) -> datetime | None:
    """When this delivery should be tried instead of now: an open breaker, or a full rate-limit window."""
    health = subscription.health
    deferred = domain.breaker_defers(health, now)
    if deferred is not None:
        return domain.deferred_until(deferred, health)
    if health.breaker_open_until is not None and not repository.claim_probe(
        subscription.tenant_id, subscription.id, now
    ):
        return domain.deferred_until(now, health)  # another delivery took the probe
    limit = subscription.rate_limit_per_second
    if limit and not repository.take_rate_slot(subscription.tenant_id, subscription.id, limit, now):
        return now + timedelta(seconds=1)
    return None


def _postpone(delivery: Delivery, until: datetime, trigger: Trigger, now: datetime) -> dict[str, Any]:
    if repository.postpone(delivery, until, now):
        _enqueue(delivery, delivery.attempt_count, trigger, run_at=until)
        count("WebhookDeliveriesDeferred", "webhook")
        return {"outcome": "deferred", "until": until.isoformat()}
    return {"outcome": "stale"}


def _attempt(subscription: Subscription, delivery: Delivery, trigger: Trigger, now: datetime) -> dict[str, Any]:
    body = json.dumps(delivery.event, separators=(",", ":"), ensure_ascii=False).encode()
    headers = domain.headers(active_secrets(subscription, now), delivery.event_id, int(time.time()), body)
    started = time.monotonic()
    answer, error = None, None
    try:
        answer = _client(policy()).post(subscription.url, content=body, headers=headers)
    except OutboundError as exc:
        error = exc
    duration = answer.elapsed_ms if answer else int((time.monotonic() - started) * 1000)
    attempt = Attempt(
        at=now,
        trigger=trigger,
        duration_ms=duration,
        status_code=answer.status if answer else None,
        error=ErrorClass(error.kind) if error else (None if answer and 200 <= answer.status < 300 else ErrorClass.HTTP),
        message=error.message[:500] if error else None,
        response_excerpt=answer.excerpt.decode("utf-8", "replace") if answer else None,
    )
    made = delivery.attempt_count + 1 - delivery.round_start  # attempts in this round (resend/recover restart it)
    retry_after = domain.parse_retry_after(answer.headers.get("retry-after"), now) if answer else None
    if answer and answer.status not in (429, 503):
        retry_after = None
    result = domain.outcome(attempt, made, retry_after=retry_after, trigger=trigger)
    next_at = now + timedelta(seconds=result.retry_in) if result.retry_in is not None else None
    attempt = replace(attempt, next_attempt_at=next_at)
    status = (
        DeliveryStatus.DELIVERED
        if result.delivered
        else (DeliveryStatus.PENDING if next_at is not None else DeliveryStatus.FAILED)
    )
    if not repository.record_attempt(delivery, attempt, status, next_at, now):
        logger.warning("delivery moved on during its attempt; outcome not recorded", extra={"delivery": delivery.id})
        return {"outcome": "stale"}
    if next_at is not None:
        _enqueue(delivery, delivery.attempt_count + 1, Trigger.SCHEDULED, run_at=next_at)
    _health(subscription, attempt, result, now)
    count("WebhookDeliveries" if result.delivered else "WebhookAttemptsFailed", "webhook")
    return {
        "outcome": str(status),
        "status_code": attempt.status_code,
        "error": str(attempt.error) if attempt.error else None,
        "next_attempt_at": next_at.isoformat() if next_at else None,
    }


def _health(subscription: Subscription, attempt: Attempt, result: domain.Outcome, now: datetime) -> None:
    tenant_id, subscription_id = subscription.tenant_id, subscription.id
    if result.delivered:
        health = subscription.health
        stale = health.last_success_at is None or now - health.last_success_at > timedelta(minutes=1)
        if stale or health.consecutive_failures or health.failing_since or health.breaker_open_until:
            repository.record_success(tenant_id, subscription_id, now)
        return
    health = repository.record_failure(tenant_id, subscription_id, now)
    if health is None:
        return
    if result.disable_reason:
        _disable(subscription, result.disable_reason, now)
        return
    if domain.should_open_breaker(health) and (health.breaker_open_until is None or health.breaker_open_until <= now):
        until = now + timedelta(seconds=domain.breaker_cooldown(health.breaker_opens + 1))
        if repository.open_breaker(tenant_id, subscription_id, until, health.breaker_opens):
            logger.warning("webhook circuit breaker opened", extra={"subscription_id": subscription_id})
    warning = domain.warning_due(health, now)
    if warning is not None and repository.mark_warned(tenant_id, subscription_id, warning):
        _alert(subscription, f"failing-{warning}", "is failing",
               f"has had no successful delivery since {health.failing_since:%Y-%m-%d %H:%M} UTC. "
               "It will be disabled after 5 days without a success.")  # fmt: skip
    if domain.should_disable(health, now):
        _disable(subscription, "no successful delivery for 5 days", now)


def _disable(subscription: Subscription, reason: str, now: datetime) -> None:
    if repository.disable(subscription.tenant_id, subscription.id, reason, now):
        count("WebhookEndpointsDisabled", "webhook")
        _alert(subscription, "disabled", "was disabled",
               f"was disabled: {reason}. New events are kept as skipped; fix the endpoint, then "
               f"POST /v1/webhooks/{subscription.id}/recover to deliver them.")  # fmt: skip


def _alert(subscription: Subscription, kind: str, headline: str, text: str) -> None:
    """Tell the tenant (their alert contact, through notify), once per kind; the domain event goes out anyway."""
    if not subscription.alert_contact_id:
        return
    request = jobs.NewJob(
        type="notification.send",
        payload={
            "contact_id": subscription.alert_contact_id,
            "subject": f"Webhook endpoint {headline}",
            "text": f"The webhook endpoint {subscription.url} ({subscription.id}) {text}",
        },
    )
    started = subscription.health.failing_since or subscription.updated_at
    key = f"webhook-alert/{subscription.id}/{kind}/{started:%Y%m%dT%H%M%S}"
    jobs.enqueue(subscription.tenant_id, request, idempotency_key=key)


# --- manual sends, tests, recovery, the sweep ----------------------------------------------------------
def _delivery(tenant_id: str, subscription_id: str, delivery_id: str) -> Delivery:
    found = repository.get_delivery(tenant_id, subscription_id, delivery_id)
    if found is None:
        raise NotFound(f"delivery {delivery_id!r} not found")
    return found


def get_delivery(tenant_id: str, subscription_id: str, delivery_id: str) -> Delivery:
    get(tenant_id, subscription_id)
    return _delivery(tenant_id, subscription_id, delivery_id)


def list_deliveries(
    tenant_id: str,
    subscription_id: str,
    *,
    status: str | None,
    event_type: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Delivery], str | None]:
    get(tenant_id, subscription_id)
    items, last = repository.list_deliveries(
        tenant_id, subscription_id, status=status, event_type=event_type, limit=limit, after=_decode(cursor)
    )
    return items, _encode(last) if last else None


def _encode(delivery_id: str) -> str:
    return base64.urlsafe_b64encode(delivery_id.encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        value = ""
    if not value.startswith("dlv_") or "#" in value:
        raise InvalidCursor("invalid cursor")
    return value


def resend(tenant_id: str, subscription_id: str, delivery_id: str) -> Delivery:
    """Send a delivery again now (trigger `manual`), whatever became of it; a pending one is sent early."""
    get(tenant_id, subscription_id)
    delivery = _delivery(tenant_id, subscription_id, delivery_id)
    if delivery.status != DeliveryStatus.PENDING and not repository.reopen(delivery, utcnow()):
        raise Conflict("the delivery changed meanwhile; retry")
    _enqueue(delivery, delivery.attempt_count, Trigger.MANUAL)
    return _delivery(tenant_id, subscription_id, delivery_id)


def send_test(tenant_id: str, subscription_id: str, event_type: str) -> Delivery:
    """A signed sample of `event_type` (from the catalogue), sent now even to a disabled subscription."""
    from conveyor import capabilities

    spec = next((s for s in capabilities.event_catalogue() if s.name == event_type), None)
    if spec is None:
        raise InvalidInput(
            f"unknown event type {event_type!r}", fields=[{"loc": ["event_type"], "msg": "not in the catalogue"}]
        )
    get(tenant_id, subscription_id)
    now = utcnow()
    event = DomainEvent("evt_" + ulid(), spec.name, now, tenant_id, dict(spec.sample))
    delivery = Delivery(
        tenant_id=tenant_id,
        subscription_id=subscription_id,
        id=domain.delivery_id(event.id),
        event_id=event.id,
        event_type=event.type,
        event=event.envelope(),
        status=DeliveryStatus.PENDING,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        test=True,
    )
    repository.insert_delivery(delivery, now)
    _enqueue(delivery, 0, Trigger.TEST)
    return _delivery(tenant_id, subscription_id, delivery.id)


def recover(tenant_id: str, subscription_id: str, since: datetime) -> Subscription:
    """Re-enable the subscription (if disabled) and redeliver its failed and skipped deliveries since `since`,
    once each, in order of occurrence (one job walks them, handing on to the next)."""
    if since < utcnow() - domain.DELIVERY_RETENTION:
        raise InvalidInput(
            "since must be within the 30 days deliveries are kept", fields=[{"loc": ["since"], "msg": "too far back"}]
        )
    subscription = get(tenant_id, subscription_id)
    if not subscription.enabled:
        repository.enable(tenant_id, subscription_id, utcnow())
    _enqueue_recover(tenant_id, subscription_id, since, None)
    return get(tenant_id, subscription_id)


def _enqueue_recover(tenant_id: str, subscription_id: str, since: datetime, after: str | None) -> None:
    payload = {"subscription_id": subscription_id, "since": since.isoformat(), "after": after}
    jobs.enqueue(tenant_id, jobs.NewJob(type=RECOVER_JOB, payload=payload))


def recover_step(tenant_id: str, subscription_id: str, since: datetime, after: str | None) -> dict[str, Any]:
    """Deliver failed/skipped deliveries oldest first for up to RECOVER_BUDGET_SECONDS, then hand on."""
    started = time.monotonic()
    delivered = attempted = 0
    while time.monotonic() - started < RECOVER_BUDGET_SECONDS:
        page, after_next = repository.list_deliveries(
            tenant_id,
            subscription_id,
            statuses=(str(DeliveryStatus.FAILED), str(DeliveryStatus.SKIPPED)),
            since=since,
            oldest_first=True,
            limit=10,
            after=after,
        )
        for delivery in page:
            after = delivery.id
            if delivery.test or not repository.reopen(delivery, utcnow()):
                continue
            attempted += 1
            outcome = deliver(tenant_id, subscription_id, delivery.id, delivery.attempt_count, Trigger.RECOVER)
            delivered += outcome.get("outcome") == str(DeliveryStatus.DELIVERED)
            if time.monotonic() - started >= RECOVER_BUDGET_SECONDS:
                break
        else:
            after = after_next
            if after is None:
                return {"attempted": attempted, "delivered": delivered, "done": True}
    _enqueue_recover(tenant_id, subscription_id, since, after)
    return {"attempted": attempted, "delivered": delivered, "done": False, "continues_after": after}


def redeliver_overdue(now: datetime) -> int:
    """Pending deliveries whose job was lost (10 minutes overdue) get a new one, at most once per 10 minutes."""
    sent = 0
    for tenant_id, subscription_id, delivery_id in repository.overdue(now - OVERDUE):
        delivery = repository.get_delivery(tenant_id, subscription_id, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            continue
        if repository.postpone(delivery, now, now):
            _enqueue(delivery, delivery.attempt_count, Trigger.SCHEDULED)
            sent += 1
    if sent:
        logger.warning("overdue webhook deliveries sent again", extra={"count": sent})
    return sent

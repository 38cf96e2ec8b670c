"""Webhooks storage (template.yaml `WebhooksTable`), private to this capability; returns domain objects.

pk tenant_id, sk:
  sub#<whk_id>                 a subscription: URL, patterns, KMS-encrypted secrets, state, health, breaker
  dlv#<whk_id>#dlv_<ULID>      one delivery per (subscription, event): the envelope, status, attempts (bounded);
                               the ULID is the event's, so a subscription's deliveries sort by occurrence
  rate#<whk_id>#<epoch s>      a per-second request counter (only for subscriptions with a rate limit; TTL)
GSI due-index (due_shard, due_at) sparse, KEYS_ONLY: pending deliveries only, at their next attempt; the sweep
    finds the ones whose job was lost (long overdue) without a scan.
expires_at: TTL: deliveries 30 days after their last change (reads hide expired ones), rate counters.
The table's stream feeds the events function, filtered to `sub#` items (webhook.endpoint.* events).

Every transition is one conditional write; the caller learns whether it won (False: someone else moved first).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from conveyor.platform.dynamo import bind_to, conditional
from conveyor.platform.ids import ulid_floor
from conveyor.platform.settings import get_settings
from conveyor.webhooks.domain import (
    DELIVERY_RETENTION,
    MAX_ATTEMPTS_KEPT,
    PROBE_LEASE_SECONDS,
    Attempt,
    Delivery,
    DeliveryStatus,
    ErrorClass,
    Health,
    StoredSecret,
    Subscription,
    SubscriptionState,
    Trigger,
)

DUE_SHARDS = 8


class _SecretAttr(MapAttribute):
    ciphertext = BinaryAttribute(legacy_encoding=False)
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute(null=True)


class _AttemptAttr(MapAttribute):
    at = UTCDateTimeAttribute()
    trigger = UnicodeAttribute()
    duration_ms = NumberAttribute(default=0)
    status_code = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    message = UnicodeAttribute(null=True)
    response_excerpt = UnicodeAttribute(null=True)
    next_attempt_at = UTCDateTimeAttribute(null=True)


class _DueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "due-index"
        projection = KeysOnlyProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    due_at = NumberAttribute(range_key=True)


class _Item(Model):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class SubscriptionRecord(_Item):
    class Meta:
        table_name = None

    url = UnicodeAttribute()
    event_types = ListAttribute(of=UnicodeAttribute)
    state = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    rate_limit_per_second = NumberAttribute(null=True)
    alert_contact_id = UnicodeAttribute(null=True)
    disabled_reason = UnicodeAttribute(null=True)
    disabled_at = UTCDateTimeAttribute(null=True)
    secrets = ListAttribute(of=_SecretAttr, default=list)
    version = NumberAttribute(default=1)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    # health and breaker (written by the delivery path)
    consecutive_failures = NumberAttribute(null=True)
    failures_since_success = NumberAttribute(null=True)
    failing_since = UTCDateTimeAttribute(null=True)
    last_failure_at = UTCDateTimeAttribute(null=True)
    last_success_at = UTCDateTimeAttribute(null=True)
    warnings_sent = NumberAttribute(null=True)
    breaker_open_until = UTCDateTimeAttribute(null=True)
    breaker_opens = NumberAttribute(null=True)
    probe_until = UTCDateTimeAttribute(null=True)


class DeliveryRecord(_Item):
    class Meta:
        table_name = None

    subscription_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    event = JSONAttribute()
    status = UnicodeAttribute()
    attempt_count = NumberAttribute(default=0)
    round_start = NumberAttribute(default=0)  # attempt_count when the current schedule began (resend/recover)
    next_attempt_at = UTCDateTimeAttribute(null=True)
    in_flight_until = NumberAttribute(null=True)
    attempts = ListAttribute(of=_AttemptAttr, default=list)
    test = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)

    due_index = _DueIndex()


class RateRecord(_Item):
    class Meta:
        table_name = None

    count = NumberAttribute(default=0)
    expires_at = NumberAttribute()


M = TypeVar("M", bound=Model)


def _table(model: type[M]) -> type[M]:
    return bind_to(model, get_settings().webhooks_table, "WEBHOOKS_TABLE")


def _update(item: Model, actions: list[Any], condition: Any) -> bool:
    return conditional(lambda: item.update(actions=actions, condition=condition))


def _put(item: Model, condition: Any) -> bool:
    return conditional(lambda: item.save(condition=condition))


def _ttl(now: datetime) -> int:
    return int((now + DELIVERY_RETENTION).timestamp())


def sub_key(subscription_id: str) -> str:
    return f"sub#{subscription_id}"


def delivery_key(subscription_id: str, delivery_id: str) -> str:
    return f"dlv#{subscription_id}#{delivery_id}"


def _due_shard(tenant_id: str, sk: str) -> str:
    return str(zlib.crc32(f"{tenant_id}/{sk}".encode()) % DUE_SHARDS)


# --- mapping records <-> domain ------------------------------------------------------------------------
def _subscription(record: SubscriptionRecord) -> Subscription:
    return Subscription(
        tenant_id=record.tenant_id,
        id=record.sk.removeprefix("sub#"),
        url=record.url,
        event_types=list(record.event_types),
        state=SubscriptionState(record.state),
        created_at=record.created_at,
        updated_at=record.updated_at,
        secrets=[StoredSecret(bytes(s.ciphertext), s.created_at, s.expires_at) for s in record.secrets or []],
        description=record.description,
        rate_limit_per_second=int(record.rate_limit_per_second) if record.rate_limit_per_second else None,
        alert_contact_id=record.alert_contact_id,
        disabled_reason=record.disabled_reason,
        disabled_at=record.disabled_at,
        health=Health(
            consecutive_failures=int(record.consecutive_failures or 0),
            failures_since_success=int(record.failures_since_success or 0),
            failing_since=record.failing_since,
            last_failure_at=record.last_failure_at,
            last_success_at=record.last_success_at,
            warnings_sent=int(record.warnings_sent or 0),
            breaker_open_until=record.breaker_open_until,
            breaker_opens=int(record.breaker_opens or 0),
            probe_until=record.probe_until,
        ),
        version=int(record.version or 1),
    )


def _secret_attrs(secrets: list[StoredSecret]) -> list[_SecretAttr]:
    return [_SecretAttr(ciphertext=s.ciphertext, created_at=s.created_at, expires_at=s.expires_at) for s in secrets]


def _attempt(attr: _AttemptAttr) -> Attempt:
    return Attempt(
        at=attr.at,
        trigger=Trigger(attr.trigger),
        duration_ms=int(attr.duration_ms or 0),
        status_code=int(attr.status_code) if attr.status_code is not None else None,
        error=ErrorClass(attr.error) if attr.error else None,
        message=attr.message,
        response_excerpt=attr.response_excerpt,
        next_attempt_at=attr.next_attempt_at,
    )


def _attempt_attr(attempt: Attempt) -> _AttemptAttr:
    return _AttemptAttr(
        at=attempt.at,
        trigger=str(attempt.trigger),
        duration_ms=attempt.duration_ms,
        status_code=attempt.status_code,
        error=str(attempt.error) if attempt.error else None,
        message=attempt.message,
        response_excerpt=attempt.response_excerpt,
        next_attempt_at=attempt.next_attempt_at,
    )


def _delivery(record: DeliveryRecord) -> Delivery:
    return Delivery(
        tenant_id=record.tenant_id,
        subscription_id=record.subscription_id,
        id=record.sk.rsplit("#", 1)[-1],
        event_id=record.event_id,
        event_type=record.event_type,
        event=record.event,
        status=DeliveryStatus(record.status),
        created_at=record.created_at,
        updated_at=record.updated_at,
        attempt_count=int(record.attempt_count or 0),
        round_start=int(record.round_start or 0),
        next_attempt_at=record.next_attempt_at,
        attempts=[_attempt(a) for a in record.attempts or []],
        test=bool(record.test),
    )


# --- subscriptions -------------------------------------------------------------------------------------
def insert_subscription(sub: Subscription) -> bool:
    model = _table(SubscriptionRecord)
    record = model(
        sub.tenant_id,
        sub_key(sub.id),
        url=sub.url,
        event_types=sub.event_types,
        state=str(sub.state),
        description=sub.description,
        rate_limit_per_second=sub.rate_limit_per_second,
        alert_contact_id=sub.alert_contact_id,
        secrets=_secret_attrs(sub.secrets),
        version=1,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )
    return _put(record, model.sk.does_not_exist())


def get_subscription(tenant_id: str, subscription_id: str, *, consistent: bool = False) -> Subscription | None:
    try:
        record = _table(SubscriptionRecord).get(tenant_id, sub_key(subscription_id), consistent_read=consistent)
    except DoesNotExist:
        return None
    return _subscription(record)


def list_subscriptions(tenant_id: str) -> list[Subscription]:
    """All of a tenant's subscriptions (bounded: a tenant may hold at most MAX_SUBSCRIPTIONS)."""
    model = _table(SubscriptionRecord)
    return [_subscription(r) for r in model.query(tenant_id, model.sk.startswith("sub#"))]


def update_subscription(sub: Subscription, expected_version: int, **changes: Any) -> bool:
    """Change settings (url, event_types, description, rate limit, alert contact, secrets) if nobody else did."""
    model = _table(SubscriptionRecord)
    actions = []
    for name, value in changes.items():
        attribute = getattr(model, name)
        if name == "secrets":
            value = _secret_attrs(value)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    actions += [model.version.set(expected_version + 1), model.updated_at.set(datetime.now(UTC))]
    return _update(model(sub.tenant_id, sub_key(sub.id)), actions, model.version == expected_version)


def delete_subscription(tenant_id: str, subscription_id: str) -> bool:
    model = _table(SubscriptionRecord)
    return conditional(lambda: model(tenant_id, sub_key(subscription_id)).delete(condition=model.sk.exists()))


def _health_reset(model: Any) -> list[Any]:
    return [
        model.consecutive_failures.remove(),
        model.failures_since_success.remove(),
        model.failing_since.remove(),
        model.warnings_sent.remove(),
        model.breaker_open_until.remove(),
        model.breaker_opens.remove(),
        model.probe_until.remove(),
    ]


def disable(tenant_id: str, subscription_id: str, reason: str, now: datetime) -> bool:
    """active -> disabled, once (the stream turns it into `webhook.endpoint.disabled`)."""
    model = _table(SubscriptionRecord)
    return _update(
        model(tenant_id, sub_key(subscription_id)),
        [
            model.state.set(str(SubscriptionState.DISABLED)),
            model.disabled_reason.set(reason[:300]),
            model.disabled_at.set(now),
            model.updated_at.set(now),
            model.version.add(1),
        ],
        model.state == str(SubscriptionState.ACTIVE),
    )


def enable(tenant_id: str, subscription_id: str, now: datetime) -> bool:
    """disabled -> active with a clean bill of health (the failing clock starts again)."""
    model = _table(SubscriptionRecord)
    return _update(
        model(tenant_id, sub_key(subscription_id)),
        [
            model.state.set(str(SubscriptionState.ACTIVE)),
            model.disabled_reason.remove(),
            model.disabled_at.remove(),
            model.updated_at.set(now),
            model.version.add(1),
            *_health_reset(model),
        ],
        model.state == str(SubscriptionState.DISABLED),
    )


def record_success(tenant_id: str, subscription_id: str, now: datetime) -> None:
    model = _table(SubscriptionRecord)
    _update(
        model(tenant_id, sub_key(subscription_id)),
        [model.last_success_at.set(now), *_health_reset(model)],
        model.sk.exists(),
    )


def record_failure(tenant_id: str, subscription_id: str, now: datetime) -> Health | None:
    """Count one failed attempt (atomic ADDs: concurrent workers never lose one); returns the health after it."""
    model = _table(SubscriptionRecord)
    record = model(tenant_id, sub_key(subscription_id))
    ok = _update(
        record,
        [
            model.consecutive_failures.add(1),
            model.failures_since_success.add(1),
            model.last_failure_at.set(now),
            model.failing_since.set(model.failing_since | now),
            model.probe_until.remove(),
        ],
        model.sk.exists(),
    )
    return _subscription(record).health if ok else None


def open_breaker(tenant_id: str, subscription_id: str, until: datetime, seen_opens: int) -> bool:
    """Open (or re-open after a failed probe) once per failure streak step: conditional on the opens seen."""
    model = _table(SubscriptionRecord)
    opens = model.breaker_opens.does_not_exist() if seen_opens == 0 else model.breaker_opens == seen_opens
    return _update(
        model(tenant_id, sub_key(subscription_id)),
        [model.breaker_open_until.set(until), model.breaker_opens.set(seen_opens + 1), model.probe_until.remove()],
        opens,
    )


def claim_probe(tenant_id: str, subscription_id: str, now: datetime) -> bool:
    """One delivery at a time may probe an endpoint whose breaker cool-down has passed."""
    model = _table(SubscriptionRecord)
    return _update(
        model(tenant_id, sub_key(subscription_id)),
        [model.probe_until.set(now + timedelta(seconds=PROBE_LEASE_SECONDS))],
        (model.breaker_open_until <= now) & (model.probe_until.does_not_exist() | (model.probe_until <= now)),
    )


def mark_warned(tenant_id: str, subscription_id: str, number: int) -> bool:
    """Warning `number` goes out once: conditional on the previous count."""
    model = _table(SubscriptionRecord)
    before = model.warnings_sent.does_not_exist() if number == 1 else model.warnings_sent == number - 1
    return _update(
        model(tenant_id, sub_key(subscription_id)),
        [model.warnings_sent.set(number)],
        before & model.failing_since.exists(),
    )


# --- deliveries ----------------------------------------------------------------------------------------
def insert_delivery(delivery: Delivery, now: datetime) -> bool:
    """Create a delivery unless one exists for this (subscription, event): exactly one per pair."""
    model = _table(DeliveryRecord)
    sk = delivery_key(delivery.subscription_id, delivery.id)
    pending = delivery.status == DeliveryStatus.PENDING
    record = model(
        delivery.tenant_id,
        sk,
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        event=delivery.event,
        status=str(delivery.status),
        attempt_count=0,
        round_start=0,
        next_attempt_at=delivery.next_attempt_at,
        attempts=[],
        test=delivery.test,
        created_at=now,
        updated_at=now,
        expires_at=_ttl(now),
        due_shard=_due_shard(delivery.tenant_id, sk) if pending else None,
        due_at=int((delivery.next_attempt_at or now).timestamp()) if pending else None,
    )
    return _put(record, model.sk.does_not_exist())


def _get_delivery_record(tenant_id: str, subscription_id: str, delivery_id: str) -> DeliveryRecord | None:
    try:
        record = _table(DeliveryRecord).get(tenant_id, delivery_key(subscription_id, delivery_id), consistent_read=True)
    except DoesNotExist:
        return None
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC).timestamp():
        return None
    return record


def get_delivery(tenant_id: str, subscription_id: str, delivery_id: str) -> Delivery | None:
    record = _get_delivery_record(tenant_id, subscription_id, delivery_id)
    return _delivery(record) if record else None


def _pending(model: Any, delivery: Delivery) -> Any:
    return (model.status == str(DeliveryStatus.PENDING)) & (model.attempt_count == delivery.attempt_count)


def claim_attempt(delivery: Delivery, now: datetime, lease_seconds: int) -> bool:
    """Take the delivery's next attempt: one worker at a time (duplicate jobs and overlapping retries lose)."""
    model = _table(DeliveryRecord)
    free = model.in_flight_until.does_not_exist() | (model.in_flight_until < int(now.timestamp()))
    return _update(
        model(delivery.tenant_id, delivery_key(delivery.subscription_id, delivery.id)),
        [model.in_flight_until.set(int(now.timestamp()) + lease_seconds)],
        _pending(model, delivery) & free,
    )


def record_attempt(
    delivery: Delivery, attempt: Attempt, status: DeliveryStatus, next_attempt_at: datetime | None, now: datetime
) -> bool:
    """The claimed attempt's outcome: the attempt appended (the log keeps the last MAX_ATTEMPTS_KEPT), the
    status, and the next attempt's place in the due index (pending) or its removal (finished)."""
    model = _table(DeliveryRecord)
    sk = delivery_key(delivery.subscription_id, delivery.id)
    attempts = [_attempt_attr(a) for a in [*delivery.attempts, attempt][-MAX_ATTEMPTS_KEPT:]]
    actions = [
        model.attempts.set(attempts),
        model.attempt_count.set(delivery.attempt_count + 1),
        model.status.set(str(status)),
        model.updated_at.set(now),
        model.expires_at.set(_ttl(now)),
        model.in_flight_until.remove(),
    ]
    if status == DeliveryStatus.PENDING and next_attempt_at is not None:
        actions += [
            model.next_attempt_at.set(next_attempt_at),
            model.due_shard.set(_due_shard(delivery.tenant_id, sk)),
            model.due_at.set(int(next_attempt_at.timestamp())),
        ]
    else:
        actions += [model.next_attempt_at.remove(), model.due_shard.remove(), model.due_at.remove()]
    return _update(model(delivery.tenant_id, sk), actions, _pending(model, delivery))


def postpone(delivery: Delivery, until: datetime, now: datetime) -> bool:
    """Move a pending delivery's next attempt without spending one (open breaker, rate limit, a lost job).
    Conditional on the due time read (due_at is next_attempt_at in whole seconds), so of two jobs racing for
    the same attempt only one carries on."""
    model = _table(DeliveryRecord)
    sk = delivery_key(delivery.subscription_id, delivery.id)
    seen_at = delivery.next_attempt_at
    seen = model.due_at.does_not_exist() if seen_at is None else model.due_at == int(seen_at.timestamp())
    return _update(
        model(delivery.tenant_id, sk),
        [
            model.next_attempt_at.set(until),
            model.due_shard.set(_due_shard(delivery.tenant_id, sk)),
            model.due_at.set(int(until.timestamp())),
            model.updated_at.set(now),
        ],
        _pending(model, delivery) & seen,
    )


def skip(delivery: Delivery, reason: str, now: datetime) -> bool:
    """pending -> skipped (the subscription is disabled or gone): kept for recover, out of the due index."""
    model = _table(DeliveryRecord)
    return _update(
        model(delivery.tenant_id, delivery_key(delivery.subscription_id, delivery.id)),
        [
            model.status.set(str(DeliveryStatus.SKIPPED)),
            model.updated_at.set(now),
            model.expires_at.set(_ttl(now)),
            model.next_attempt_at.remove(),
            model.due_shard.remove(),
            model.due_at.remove(),
        ],
        _pending(model, delivery),
    )


def reopen(delivery: Delivery, now: datetime) -> bool:
    """delivered | failed | skipped -> pending, due now, with a fresh schedule (resend, recover)."""
    model = _table(DeliveryRecord)
    sk = delivery_key(delivery.subscription_id, delivery.id)
    return _update(
        model(delivery.tenant_id, sk),
        [
            model.status.set(str(DeliveryStatus.PENDING)),
            model.round_start.set(delivery.attempt_count),
            model.next_attempt_at.set(now),
            model.due_shard.set(_due_shard(delivery.tenant_id, sk)),
            model.due_at.set(int(now.timestamp())),
            model.updated_at.set(now),
            model.expires_at.set(_ttl(now)),
        ],
        (model.status == str(delivery.status)) & (model.attempt_count == delivery.attempt_count),
    )


def list_deliveries(
    tenant_id: str,
    subscription_id: str,
    *,
    status: str | None = None,
    event_type: str | None = None,
    statuses: tuple[str, ...] = (),
    since: datetime | None = None,
    oldest_first: bool = False,
    limit: int = 25,
    after: str | None = None,
    max_examined: int = 200,
) -> tuple[list[Delivery], str | None]:
    """One page of a subscription's live deliveries (newest first unless `oldest_first`), at most
    `max_examined` items read whatever the filters match; the second value continues the walk (a delivery id)."""
    model = _table(DeliveryRecord)
    prefix = f"dlv#{subscription_id}#"
    now = int(datetime.now(UTC).timestamp())
    condition = model.expires_at.does_not_exist() | (model.expires_at > now)
    if status:
        condition &= model.status == status
    if statuses:
        condition &= model.status.is_in(*statuses)
    if event_type:
        condition &= model.event_type == event_type
    low = prefix + "dlv_" + ulid_floor(int(since.timestamp() * 1000)) if since else prefix
    filtered = bool(status or statuses or event_type)
    results = model.query(
        tenant_id,
        model.sk.between(low, prefix + "~"),
        filter_condition=condition,
        scan_index_forward=oldest_first,
        page_size=max_examined if filtered else limit,
        last_evaluated_key={"tenant_id": {"S": tenant_id}, "sk": {"S": prefix + after}} if after else None,
    )
    page = next(results.page_iter, None) or {}
    items = [_delivery(model.from_raw_data(i)) for i in page.get("Items", [])]
    last = results.page_iter.last_evaluated_key
    if len(items) > limit:
        items = items[:limit]
        return items, items[-1].id
    return items, (last["sk"]["S"].rsplit("#", 1)[-1] if last else None)


def overdue(before: datetime) -> Iterator[tuple[str, str, str]]:
    """(tenant_id, subscription_id, delivery_id) of pending deliveries due before `before`, across shards."""
    index = _table(DeliveryRecord).due_index
    for shard in range(DUE_SHARDS):
        for item in index.query(str(shard), _DueIndex.due_at < int(before.timestamp())):
            _, subscription_id, delivery = item.sk.split("#", 2)
            yield item.tenant_id, subscription_id, delivery


# --- rate limit ----------------------------------------------------------------------------------------
def take_rate_slot(tenant_id: str, subscription_id: str, limit: int, now: datetime) -> bool:
    """One request in this second's window, if fewer than `limit` were taken (one atomic conditional ADD)."""
    model = _table(RateRecord)
    second = int(now.timestamp())
    return _update(
        model(tenant_id, f"rate#{subscription_id}#{second}"),
        [model.count.add(1), model.expires_at.set(second + 120)],
        model.count.does_not_exist() | (model.count < limit),
    )

"""The events function: DynamoDB stream records -> each capability's mapper -> deliveries for the tenant's
matching subscriptions. Idempotent end to end (deterministic event ids, one delivery per (subscription,
event)), so the stream's retries and replays never deliver an event twice.

A record that cannot be processed stops the batch there: it is reported (batchItemFailures) and Lambda retries
from it, in order; after MaximumRetryAttempts the batch's position goes to the failure queue (template.yaml).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from conveyor.platform.clock import utcnow
from conveyor.platform.events import Change, DomainEvent
from conveyor.platform.observability import count, logger, report_exception
from conveyor.platform.settings import get_settings
from conveyor.webhooks import repository, service
from conveyor.webhooks.domain import Subscription

_PYNAMO_TIME = "%Y-%m-%dT%H:%M:%S.%f%z"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def _without_binary(value: Any) -> Any:
    """Binary attributes (ciphertexts) dropped: they never travel in events, and Lambda hands them over as base64
    text, which the deserializer would refuse."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("B", "BS"):
            return {"NULL": True}
        return {k: _without_binary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_binary(v) for v in value]
    return value


def _image(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(_without_binary(v))) for k, v in raw.items()}


def _when(image: dict[str, Any] | None, approximate: Any) -> datetime:
    """The change's time: the item's own `updated_at` (milliseconds, stable across replays) when it has one,
    else the stream's approximate creation time (whole seconds)."""
    for name in ("updated_at", "created_at"):
        text = (image or {}).get(name)
        if isinstance(text, str):
            try:
                return datetime.strptime(text, _PYNAMO_TIME).astimezone(UTC)
            except ValueError:
                try:
                    return datetime.fromisoformat(text).astimezone(UTC)
                except ValueError:
                    continue
    if approximate is not None:
        return datetime.fromtimestamp(float(approximate), UTC)
    return utcnow()


def change_of(record: dict[str, Any], tables: dict[str, str]) -> Change | None:
    """A stream record as a Change, or None for a table that carries no events."""
    arn = str(record.get("eventSourceARN", ""))
    table_name = arn.split("/")[1] if "/" in arn else ""
    logical = tables.get(table_name)
    if logical is None:
        return None
    data = record.get("dynamodb", {})
    old, new = _image(data.get("OldImage")), _image(data.get("NewImage"))
    at = _when(new, data.get("ApproximateCreationDateTime"))  # a removal: the stream's time (no new image)
    return Change(table=logical, stream_event_id=str(record.get("eventID", "")), at=at, old=old, new=new)


def events_of(change: Change) -> list[DomainEvent]:
    from conveyor import capabilities

    return [event for mapper in capabilities.event_mappers() for event in mapper(change)]


def handle_stream(event: dict[str, Any]) -> dict[str, Any]:
    tables = {name: logical for logical, name in get_settings().event_tables.items()}
    subscriptions: dict[str, list[Subscription]] = {}
    now = utcnow()
    created = 0
    for record in event.get("Records", []):
        try:
            change = change_of(record, tables)
            for domain_event in events_of(change) if change else []:
                tenant = domain_event.tenant_id
                if tenant not in subscriptions:
                    subscriptions[tenant] = repository.list_subscriptions(tenant)
                created += service.fan_out(domain_event, subscriptions[tenant], now)
        except Exception as exc:  # noqa: BLE001 - reported, and the stream retries from this record
            sequence = record.get("dynamodb", {}).get("SequenceNumber")
            logger.exception("stream record not turned into deliveries; retried from here", extra={"seq": sequence})
            report_exception(exc, tags={"stream": str(record.get("eventSourceARN", ""))})
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    if created:
        count("WebhookDeliveriesCreated", "webhook", created)
    return {"batchItemFailures": []}

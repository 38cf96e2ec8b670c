"""Webhooks' own domain events, from the webhooks table's stream (filtered to subscription items):
`webhook.endpoint.failing` when a failing warning goes out, `webhook.endpoint.disabled` when a subscription is
disabled (automatically, or by a 410 Gone; not when the tenant switches it off)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from conveyor.platform.events import Change, DomainEvent, EventType, event

TABLE = "WebhooksTable"
BY_TENANT_PREFIX = "by tenant"


class EndpointEventData(BaseModel):
    subscription_id: str
    url: str
    reason: str | None = Field(default=None, description="webhook.endpoint.disabled: why")
    failing_since: datetime | None = None
    warning: int | None = Field(default=None, description="webhook.endpoint.failing: 1 after a day, 2 after 4 days")


_SAMPLE = {
    "subscription_id": "whk_01JDX3Q7ZV5J1M9S2K8T4W6Y0A",
    "url": "https://hooks.example.com/conveyor",
    "failing_since": "2026-11-26T10:00:00Z",
}
CATALOGUE = (
    EventType(
        "webhook.endpoint.failing",
        "An endpoint has had no successful delivery for a while (warnings after 1 and 4 days; disabled after 5).",
        EndpointEventData,
        {**_SAMPLE, "warning": 1},
    ),
    EventType(
        "webhook.endpoint.disabled",
        "A subscription was disabled because its endpoint kept failing or answered 410 Gone.",
        EndpointEventData,
        {**_SAMPLE, "reason": "no successful delivery for 5 days"},
    ),
)


def map_change(change: Change) -> list[DomainEvent]:
    new = change.new
    if change.table != TABLE or new is None or not change.key().startswith("sub#"):
        return []
    base = {"subscription_id": new["sk"].removeprefix("sub#"), "url": new.get("url"), "failing_since": None}
    old = change.old or {}
    events = []
    if int(new.get("warnings_sent") or 0) > int(old.get("warnings_sent") or 0):
        data = {**base, "failing_since": new.get("failing_since"), "warning": int(new["warnings_sent"])}
        payload = EndpointEventData.model_validate(data).model_dump(mode="json")
        events.append(event(change, "webhook.endpoint.failing", new["tenant_id"], payload))
    reason = str(new.get("disabled_reason") or "")
    if change.moved("state", "disabled") and not reason.startswith(BY_TENANT_PREFIX):
        data = {**base, "failing_since": old.get("failing_since"), "reason": reason}
        payload = EndpointEventData.model_validate(data).model_dump(mode="json")
        events.append(event(change, "webhook.endpoint.disabled", new["tenant_id"], payload))
    return events

"""Helpers for webhook tests: subscribe, cause events through the real API and streams, read what arrived."""

from __future__ import annotations

import json
from typing import Any

from standardwebhooks.webhooks import Webhook

WEBHOOK_SCOPES = "webhooks:read,webhooks:write,jobs:read,jobs:write,reminders:read,reminders:write"


def subscribe(api: Any, url: str, event_types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    response = api.post("/v1/webhooks", {"url": url, "event_types": event_types or ["contact.*"], **extra})
    assert response.status == 201, response.body
    return response.json()


def touch_contact(api: Any, contact_id: str = "c-1", name: str = "Ann") -> None:
    """A contact.created / contact.updated event, through the API, the table and its stream."""
    body = {"name": name, "timezone": "Europe/London", "channels": ["in_app"]}
    response = api.request("PUT", f"/v1/contacts/{contact_id}", body)
    assert response.status in (200, 201), response.body


def received(server: Any, path: str = "/hook") -> list[tuple[dict[str, str], bytes]]:
    return [({k.lower(): v for k, v in r.headers.items()}, r.get_data()) for r, _ in server.log if r.path == path]


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The envelope, after the ecosystem's own library checked the signature."""
    return Webhook(secret).verify(body, headers)


def bodies(server: Any, path: str = "/hook") -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in received(server, path)]


def deliveries(api: Any, subscription_id: str, **query: str) -> list[dict[str, Any]]:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    response = api.get(f"/v1/webhooks/{subscription_id}/deliveries?limit=100&{suffix}")
    assert response.status == 200, response.body
    return response.json()["items"]


def delivery(api: Any, subscription_id: str, delivery_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/webhooks/{subscription_id}/deliveries/{delivery_id}")
    assert response.status == 200, response.body
    return response.json()

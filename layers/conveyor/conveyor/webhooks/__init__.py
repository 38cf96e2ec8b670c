"""Webhooks: tenants' subscriptions to domain events, delivered signed (Standard Webhooks v1) with retries, a
circuit breaker per endpoint, auto-disable with warnings, and recovery. It listens to every capability's events
(conveyor.platform.events); no capability calls into it, so its public API is small.
"""

from __future__ import annotations

from typing import Any


# --- public read API (reports): thin and lazy ----------------------------------------------------------------------
def subscriptions(tenant_id: str) -> Any:
    """The tenant's subscriptions."""
    from conveyor.webhooks import service

    return service.list_all(tenant_id)


def deliveries_page(tenant_id: str, subscription_id: str, **query: Any) -> Any:
    """A page of one subscription's deliveries, oldest event first: (deliveries, next cursor)."""
    from conveyor.webhooks import service

    return service.list_deliveries(tenant_id, subscription_id, **query)

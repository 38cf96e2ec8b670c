"""CRM sync test helpers imported by the tests (fixtures live in conftest.py): the scopes a sync needs, running a
sync to its end, the contacts it wrote."""

from __future__ import annotations

from typing import Any

SYNC_SCOPES = "sync:read,sync:write,processes:read,processes:write,reminders:read"


def run_sync(api: Any, stack: Any, connection_id: str, mode: str = "initial") -> dict[str, Any]:
    """Start a sync, run every job to the end, and return its process (as GET /v1/processes/{id} shows it)."""
    started = api.post(f"/v1/connections/{connection_id}/sync", {"mode": mode})
    assert started.status == 202, started.body
    stack.drain(max_rounds=500)
    process = api.get(f"/v1/processes/{started.json()['process_id']}").json()
    api.get(f"/v1/connections/{connection_id}")  # settles the connection (as the sweep would)
    return process


def synced_contacts(tenant: str = "tenant-a") -> dict[str, Any]:
    from conveyor import notify

    found: dict[str, Any] = {}
    cursor = None
    while True:
        page, cursor = notify.contacts_page(tenant, after=cursor, limit=1000)
        found.update({c.id: c for c in page})
        if cursor is None:
            return found

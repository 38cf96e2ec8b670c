"""Process events for later consumers (webhooks): committed changes of process records -> domain events.

Named in conveyor/capabilities.py (`events=`); the webhooks capability reads ProcessesTable's stream and calls
`from_change` for each record. Only process records (pk `tenant#...`, sk `prc_...`) produce events:
  process.started    pending -> running (its first job began)
  process.completed  -> completed or completed_with_errors
  process.failed     -> failed
Batches, ledger items, shards and heartbeats produce none.
"""

from __future__ import annotations

from typing import Any

from conveyor.platform.events import Change, DomainEvent, event

_COMPLETED = ("completed", "completed_with_errors")


def _is_process(image: dict[str, Any] | None) -> bool:
    if not image:
        return False
    sk, pk = str(image.get("sk", "")), str(image.get("pk", ""))
    return pk.startswith("tenant#") and sk.startswith("prc_") and "#" not in sk


def _data(image: dict[str, Any]) -> dict[str, Any]:
    numbers = ("processed", "succeeded", "failed", "skipped", "batches_total", "batches_done")
    data: dict[str, Any] = {
        "id": image["sk"],
        "type": image.get("type"),
        "name": image.get("name"),
        "state": image.get("state"),
        "parent_id": image.get("parent_id"),
    }
    data.update({name: int(image[name]) for name in numbers if image.get(name) is not None})
    if image.get("error"):
        data["error"] = image["error"]
    return data


def from_change(change: Change) -> list[DomainEvent]:
    new, old = change.new, change.old or {}
    if not _is_process(new):
        return []
    assert new is not None  # noqa: S101 - _is_process checked it
    before, after = old.get("state"), new.get("state")
    if before == after:
        return []
    tenant = str(new.get("tenant_id", ""))
    if after == "running" and before in (None, "pending"):
        return [event(change, "process.started", tenant, _data(new))]
    if after in _COMPLETED:
        return [event(change, "process.completed", tenant, _data(new))]
    if after == "failed":
        return [event(change, "process.failed", tenant, _data(new))]
    return []

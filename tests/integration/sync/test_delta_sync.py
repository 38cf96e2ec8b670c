"""Delta sync: from the connection's watermark, exactly the changes (records sharing the watermark's second
included, deletions included); the watermark moves only when a sync completes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sync_support import run_sync, synced_contacts

BASE = 80


def _watermark(api, connection_id: str) -> datetime:
    return datetime.fromisoformat(api.get(f"/v1/connections/{connection_id}").json()["watermark"])


def _change_37(fake, watermark: datetime) -> None:
    """29 edits now, 3 edits stamped in the watermark's own second, 2 deletions, 3 new people."""
    now = datetime.now(watermark.tzinfo) + timedelta(seconds=1)
    for n in range(29):
        fake.change(str(1000 + n), now, first=f"Edited{n}")
    second = watermark.replace(microsecond=0)
    for n in range(29, 32):
        fake.change(str(1000 + n), second, first=f"SameSecond{n}")
    for n in (32, 33):
        fake.delete(str(1000 + n), now)
    for n in range(3):
        fake.add(str(9000 + n), now, first=f"Brand{n}")


@pytest.mark.parametrize("vendor", ["pipedrive", "zoho", "hubspot"])
def test_a_delta_after_37_changes_applies_exactly_those(vendor, stack, crms, connect, sync_api):
    # Given a connection synced once (its watermark is set)
    fake = crms[vendor]
    fake.seed(BASE, spacing=10)  # the first ~50 older than the watermark, the last 30 inside its lookback
    connection = connect(vendor)
    assert run_sync(sync_api, stack, connection["id"])["state"] == "completed"
    watermark = _watermark(sync_api, connection["id"])

    # When 37 changes happen in the CRM and a delta sync runs
    _change_37(fake, watermark)
    process = run_sync(sync_api, stack, connection["id"], mode="delta")

    # Then exactly those 37 are applied (records re-read in the lookback change nothing)
    assert process["state"] == "completed", process
    assert process["counts"]["succeeded"] == 37
    assert process["counts"]["failed"] == 0
    contacts = synced_contacts()
    cid = connection["id"]
    assert contacts[f"{cid}:1000"].name.startswith("Edited0")
    assert all(contacts[f"{cid}:{1000 + n}"].name.startswith(f"SameSecond{n}") for n in range(29, 32))
    assert contacts[f"{cid}:1032"].deleted_at is not None and contacts[f"{cid}:1033"].deleted_at is not None
    assert contacts[f"{cid}:1034"].deleted_at is None
    assert {f"{cid}:9000", f"{cid}:9001", f"{cid}:9002"} <= set(contacts)
    assert len(contacts) == BASE + 3
    assert _watermark(sync_api, connection["id"]) > watermark


def test_a_cancelled_delta_leaves_the_watermark_and_the_next_one_applies_everything(stack, crms, connect, sync_api):
    fake = crms["pipedrive"]
    fake.seed(50)
    connection = connect("pipedrive")
    run_sync(sync_api, stack, connection["id"])
    watermark = _watermark(sync_api, connection["id"])
    fake.change("1000", datetime.now(watermark.tzinfo) + timedelta(seconds=1), first="Later")

    # When a delta starts but is cancelled before it runs
    started = sync_api.post(f"/v1/connections/{connection['id']}/sync", {"mode": "delta"}).json()
    assert sync_api.post(f"/v1/connections/{connection['id']}/sync", {"mode": "delta"}).status == 409  # one at a time
    assert sync_api.post(f"/v1/processes/{started['process_id']}/cancel").status == 200
    stack.drain()

    # Then the watermark did not move, and the connection is free for the next delta, which applies the change
    assert _watermark(sync_api, connection["id"]) == watermark
    runs = sync_api.get(f"/v1/connections/{connection['id']}/syncs").json()["items"]
    assert runs[0]["state"] == "cancelled" and runs[0]["watermark_after"] is None
    process = run_sync(sync_api, stack, connection["id"], mode="delta")
    assert process["counts"]["succeeded"] == 1
    assert synced_contacts()[f"{connection['id']}:1000"].name.startswith("Later")


def test_the_scheduler_runs_a_due_delta_and_settles_it(stack, crms, connect, sync_api):
    from datetime import UTC

    fake = crms["pipedrive"]
    fake.seed(20)
    connection = connect("pipedrive", schedule_minutes=60)
    run_sync(sync_api, stack, connection["id"])
    fake.change("1001", datetime.now(UTC) + timedelta(seconds=1), first="Scheduled")

    # When the one-minute scheduler runs after the connection's delta is due
    from conveyor import scheduler

    later = datetime.now(UTC) + timedelta(minutes=61)
    assert scheduler.run(later)["run_schedules"] == 1
    stack.drain()
    assert scheduler.run(datetime.now(UTC) + timedelta(minutes=2))["run_schedules"] == 0  # settles, starts none

    # Then a delta ran and was settled: the change is applied and the connection is free
    view = sync_api.get(f"/v1/connections/{connection['id']}").json()
    assert view["running_process_id"] is None
    runs = sync_api.get(f"/v1/connections/{connection['id']}/syncs").json()["items"]
    assert [r["mode"] for r in runs] == ["delta", "initial"] and runs[0]["state"] == "completed"
    assert synced_contacts()[f"{connection['id']}:1001"].name.startswith("Scheduled")


def test_a_hubspot_delta_larger_than_the_search_cap_completes_with_every_change(
    stack, crms, connect, sync_api, monkeypatch
):
    """HubSpot's search returns at most 10,000 results per query; here the cap is 100 (fake and connector alike)
    and 250 changes stand for the issue's 25,000: the delta walks windows of lastmodifieddate around the cap."""
    from conveyor.connectors import hubspot

    cap, changes = int(__import__("os").environ.get("HUBSPOT_CAP", "100")), 0
    changes = int(__import__("os").environ.get("HUBSPOT_CHANGES", "250"))
    monkeypatch.setattr(hubspot, "SEARCH_CAP", cap)
    fake = crms["hubspot"]
    fake.search_cap = cap
    fake.seed(changes)
    connection = connect("hubspot")
    run_sync(sync_api, stack, connection["id"])
    watermark = _watermark(sync_api, connection["id"])

    later = datetime.now(watermark.tzinfo) + timedelta(seconds=1)
    for n in range(changes):
        fake.change(str(1000 + n), later + timedelta(milliseconds=n), first=f"Changed{n}")
    process = run_sync(sync_api, stack, connection["id"], mode="delta")

    assert process["state"] == "completed", process
    assert process["counts"]["succeeded"] == changes
    contacts = synced_contacts()
    assert all(contacts[f"{connection['id']}:{1000 + n}"].name.startswith(f"Changed{n}") for n in range(changes))
    assert fake.calls["POST /crm/v3/objects/contacts/search"] > changes // cap  # more than one query window

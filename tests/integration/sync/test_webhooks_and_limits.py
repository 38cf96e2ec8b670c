"""Webhook-driven sync (each vendor's own verification; coalesced per record; fetched by id), and rate limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sync_support import run_sync, synced_contacts

from conveyor_local.fake_crm import webhook

HOST = "api.conveyor.test"


@pytest.fixture(autouse=True)
def _no_coalescing_delay(monkeypatch):
    """Changes within the same hour join one job; the job runs at once (no 2 s SQS delay to wait for)."""
    from conveyor.sync import service

    monkeypatch.setattr(service, "COALESCE_SECONDS", 3600)
    monkeypatch.setattr(service, "COALESCE_DELAY_SECONDS", 0)


def _post(api, connection: dict, headers: dict[str, str], body: bytes):
    return api.request(
        "POST",
        connection["webhook_path"],
        raw=body,
        headers={"host": HOST, "x-forwarded-proto": "https", **headers},
        key=None,
    )


def _url(connection: dict) -> str:
    return f"https://{HOST}{connection['webhook_path']}"


def _synced(vendor, stack, crms, connect, sync_api, **kw):
    crms[vendor].seed(5)
    connection = connect(vendor, **kw)
    run_sync(sync_api, stack, connection["id"])
    return connection


@pytest.mark.parametrize("vendor", ["hubspot", "pipedrive", "zoho"])
def test_a_verified_webhook_upserts_the_fetched_record_once_even_when_the_event_is_duplicated(
    vendor, stack, crms, connect, sync_api
):
    connection = _synced(vendor, stack, crms, connect, sync_api, oauth=True if vendor == "hubspot" else None)
    fake = crms[vendor]
    fake.change("1002", datetime.now(UTC) + timedelta(seconds=1), first="Hooked")
    headers, body = webhook(vendor, _url(connection), connection["webhook_secret"], [("1002", "upsert")])
    reads_before = sum(v for k, v in fake.calls.items() if k not in ("refresh", "429"))

    # When the CRM sends the event twice (at-least-once delivery)
    first, second = _post(sync_api, connection, headers, body), _post(sync_api, connection, headers, body)
    stack.drain()

    # Then both are accepted, one job fetched the record by id once, and the contact has the fetched state
    assert first.status == 202 and second.status == 202, (first.body, second.body)
    reads = sum(v for k, v in fake.calls.items() if k not in ("refresh", "429")) - reads_before
    assert reads == 1
    assert synced_contacts()[f"{connection['id']}:1002"].name.startswith("Hooked")


@pytest.mark.parametrize("vendor", ["hubspot", "pipedrive", "zoho"])
def test_a_webhook_that_does_not_verify_gets_401_and_changes_nothing(vendor, stack, crms, connect, sync_api):
    connection = _synced(vendor, stack, crms, connect, sync_api, oauth=True if vendor == "hubspot" else None)
    crms[vendor].change("1001", datetime.now(UTC) + timedelta(seconds=1), first="Forged")
    headers, body = webhook(vendor, _url(connection), "not-the-secret-at-all", [("1001", "upsert")])

    answer = _post(sync_api, connection, headers, body)
    stack.drain()

    assert answer.status == 401, answer.body
    assert not synced_contacts()[f"{connection['id']}:1001"].name.startswith("Forged")


def test_a_stale_hubspot_signature_is_refused(stack, crms, connect, sync_api):
    connection = _synced("hubspot", stack, crms, connect, sync_api, oauth=True)
    old = int((datetime.now(UTC) - timedelta(minutes=6)).timestamp() * 1000)
    headers, body = webhook("hubspot", _url(connection), connection["webhook_secret"], [("1001", "upsert")], now_ms=old)
    assert _post(sync_api, connection, headers, body).status == 401


def test_out_of_order_events_leave_the_newer_state_and_a_deletion_marks_the_contact_deleted(
    stack, crms, connect, sync_api
):
    connection = _synced("hubspot", stack, crms, connect, sync_api, oauth=True)
    fake, secret, url = crms["hubspot"], connection["webhook_secret"], _url(connection)
    now = datetime.now(UTC)
    fake.change("1003", now + timedelta(seconds=1), first="Older")
    older = webhook("hubspot", url, secret, [("1003", "upsert")], event_ids=[1])
    fake.change("1003", now + timedelta(seconds=2), first="Newer")
    newer = webhook("hubspot", url, secret, [("1003", "upsert")], event_ids=[2])
    fake.delete("1004", now + timedelta(seconds=2))
    deletion = webhook("hubspot", url, secret, [("1004", "delete")], event_ids=[3])

    # When the newer event arrives (and is applied) before the older one
    _post(sync_api, connection, *newer)
    stack.drain()
    from conveyor.sync import service

    service.COALESCE_SECONDS = 1  # the older event lands in a later window: a job of its own
    _post(sync_api, connection, *older)
    _post(sync_api, connection, *deletion)
    stack.drain()

    # Then the contact keeps the newer state, and the deleted one is marked deleted
    contacts = synced_contacts()
    assert contacts[f"{connection['id']}:1003"].name.startswith("Newer")
    assert contacts[f"{connection['id']}:1004"].deleted_at is not None


def test_a_429_with_retry_after_30_defers_the_page_at_least_30s_without_spending_an_attempt(
    stack, crms, connect, sync_api, aws_calls
):
    from conveyor import jobs

    fake = crms["pipedrive"]
    fake.seed(10)
    fake.throttle(30)
    connection = connect("pipedrive")

    started = sync_api.post(f"/v1/connections/{connection['id']}/sync", {"mode": "initial"}).json()
    stack.drain()

    driver = jobs.find("tenant-a", f"{started['process_id']}:driver")
    assert driver is not None
    assert driver.state == "retrying" and driver.attempts == 0
    [deferral] = [c for c in aws_calls("sqs", "ChangeMessageVisibility") if c["VisibilityTimeout"] > 0]
    assert deferral["VisibilityTimeout"] >= 30
    process = sync_api.get(f"/v1/processes/{started['process_id']}").json()
    assert process["context"]["rate_limited"] == 1 and process["context"]["last_rate_limit"]["seconds"] == 30

    # And once the wait is over, the sync completes
    sqs = stack.client("sqs")
    sqs.change_message_visibility(
        QueueUrl=deferral["QueueUrl"], ReceiptHandle=deferral["ReceiptHandle"], VisibilityTimeout=0
    )
    stack.drain()
    done = sync_api.get(f"/v1/processes/{started['process_id']}").json()
    assert done["state"] == "completed" and done["counts"]["succeeded"] == 10


def test_tenants_never_see_each_others_connections_syncs_or_contacts(stack, crms, connect, sync_api, api_as):
    from sync_support import SYNC_SCOPES

    crms["pipedrive"].seed(3)
    connection = connect("pipedrive")
    run_sync(sync_api, stack, connection["id"])
    other = api_as("tenant-b", SYNC_SCOPES)

    assert other.get("/v1/connections").json()["items"] == []
    for path in ("", "/syncs"):
        assert other.get(f"/v1/connections/{connection['id']}{path}").status == 404
    assert other.post(f"/v1/connections/{connection['id']}/sync", {"mode": "delta"}).status == 404
    assert other.request("DELETE", f"/v1/connections/{connection['id']}").status == 404
    assert other.get(f"/v1/contacts/{connection['id']}:1000").status == 404
    assert synced_contacts("tenant-b") == {}
    assert len(synced_contacts("tenant-a")) == 3


def test_credentials_are_never_returned_nor_stored_in_plain_text(stack, crms, connect, sync_api):
    connection = connect("pipedrive")
    body = json.dumps(sync_api.get(f"/v1/connections/{connection['id']}").json())
    assert crms["pipedrive"].api_token not in body
    table = stack.template.physical["SyncTable"]
    items = stack.client("dynamodb").scan(TableName=table)["Items"]
    assert crms["pipedrive"].api_token not in json.dumps(items, default=str)


def test_connection_routes_need_the_sync_scopes(stack, crms, api_as, connect):
    reader = api_as("tenant-a", "sync:read")
    assert reader.post("/v1/connections", {"connector": "pipedrive", "credentials": {"api_token": "x"}}).status == 403
    assert api_as("tenant-a", "jobs:read").get("/v1/connections").status == 403
    assert reader.get("/v1/connections").status == 200

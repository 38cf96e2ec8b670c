"""OAuth access tokens: refreshed single-flight under a lease, single-use refresh tokens used once, a rotation
seen by a loser recovers, and a refused refresh token marks the connection reauth_required."""

from __future__ import annotations

import threading
import time

import pytest

from conveyor.platform.errors import RetryLater
from conveyor.sync import crm, repository
from conveyor.sync.crm import ReauthRequired


def _connection(connect, vendor: str = "pipedrive"):
    created = connect(vendor, oauth=True)
    return repository.get("tenant-a", created["id"]), created


def test_50_concurrent_workers_needing_a_token_make_exactly_one_refresh_call(stack, crms, connect, atomic_dynamodb):
    # Given an OAuth connection whose CRM rotates single-use refresh tokens, and no access token yet
    connection, _ = _connection(connect)
    fake = crms["pipedrive"]
    start = threading.Barrier(50)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            tokens.append(crm.access_token(connection, crm.connector_for(connection)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    # When 50 workers need a token at the same moment
    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then the CRM saw exactly one refresh and everyone got that token, which works; a worker that waited longer
    # than it may (a loaded machine) deferred its job instead (RetryLater), and on its retry gets the same token
    assert all(isinstance(e, RetryLater) for e in errors), errors
    assert fake.calls["refresh"] == 1
    assert len(tokens) + len(errors) == 50 and len(set(tokens)) == 1
    assert tokens[0] in fake.access
    assert repository.get_secret(connection).version == 2
    if errors:
        assert crm.access_token(connection, crm.connector_for(connection)) == tokens[0]
        assert fake.calls["refresh"] == 1


def test_a_loser_whose_refresh_token_was_rotated_meanwhile_recovers_with_the_stored_token(stack, crms, connect):
    connection, _ = _connection(connect)
    fake = crms["pipedrive"]
    stale = repository.get_secret(connection)
    # Worker A took the lease long ago (it expired while A was slow)...
    assert repository.take_lease(connection, stale.version, "lease-a", time.time() - 100, 30)
    # ...worker B took it over and rotated the refresh token
    rotated_by_b = crm.access_token(connection, crm.connector_for(connection))

    # When A finally calls the token endpoint with the refresh token it read
    token_of_a = crm._refresh(connection, crm.connector_for(connection), stale, "lease-a")

    # Then the CRM refused A (single use), and A re-read the stored token instead of giving up
    assert fake.calls["refresh"] == 2
    assert token_of_a == rotated_by_b
    assert repository.get("tenant-a", connection.id).state == "active"


def test_a_refused_refresh_token_marks_the_connection_reauth_required(stack, crms, connect, sync_api):
    connection, created = _connection(connect)
    crms["pipedrive"].refresh_token = "revoked-by-the-user"

    with pytest.raises(ReauthRequired):
        crm.access_token(connection, crm.connector_for(connection))

    view = sync_api.get(f"/v1/connections/{created['id']}").json()
    assert view["state"] == "reauth_required" and "refused" in view["reauth_reason"]
    assert sync_api.post(f"/v1/connections/{created['id']}/sync", {"mode": "delta"}).status == 409


def test_an_expired_access_token_is_refreshed_and_the_request_repeated(stack, crms, connect, sync_api):
    from sync_support import run_sync

    crms["zoho"].seed(3)
    created = connect("zoho")
    assert run_sync(sync_api, stack, created["id"])["state"] == "completed"
    crms["zoho"].expire_access_tokens()  # the CRM now answers 401 to the stored token

    crms["zoho"].change("1000", __import__("datetime").datetime.now(__import__("datetime").UTC), first="After401")
    process = run_sync(sync_api, stack, created["id"], mode="delta")

    assert process["state"] == "completed"
    assert crms["zoho"].calls["refresh"] == 2  # the first token, then the one after the 401

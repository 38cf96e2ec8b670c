"""CRM sync tests: a moto world where outbound HTTP may reach loopback (the fake CRMs, as on `make run`), the fake
CRMs themselves (conveyor_local.fake_crm), and helpers to connect one and run a sync to its end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_support import SYNC_SCOPES

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stack() -> Iterator[Any]:
    from moto import mock_aws

    from conveyor.platform import cache
    from conveyor.platform.settings import get_settings
    from conveyor.sync import crm, vault
    from conveyor_local.stack import Stack

    with mock_aws():
        get_settings.cache_clear()
        cache.reset()
        crm._client.cache_clear()
        vault._cache.clear()
        world = Stack(ROOT / "template.yaml", parameters={"OutboundAllowPrivate": "true"}).provision()
        _warm(world)
        yield world
        get_settings.cache_clear()
        cache.reset()
        crm._client.cache_clear()


def _warm(world: Any) -> None:
    """Import the handlers and build the clients first (as a warm sandbox has them): a cold first call on a loaded
    2-core machine can otherwise pass a function's Timeout, which the local stack enforces."""
    from conveyor.platform.aws import client
    from conveyor.sync import crm

    world.warm_up()
    client("kms")
    crm.outbound()
    import phonenumbers  # noqa: F401 - its metadata loads on first use

    import conveyor.sync.api  # noqa: F401
    import conveyor.sync.jobs  # noqa: F401


@pytest.fixture
def crms() -> Iterator[Any]:
    from conveyor_local.fake_crm import FakeCrms

    fakes = FakeCrms().start()
    yield fakes
    fakes.stop()


@pytest.fixture
def sync_api(api_as: Any) -> Any:
    return api_as("tenant-a", SYNC_SCOPES)


def credentials_for(crms: Any, vendor: str, *, oauth: bool | None = None) -> dict[str, str]:
    fake = crms[vendor]
    if oauth is None:
        oauth = vendor == "zoho"
    if oauth:
        return {"client_id": fake.client_id, "client_secret": fake.client_secret, "refresh_token": fake.refresh_token}
    return {"api_token": fake.api_token}


@pytest.fixture
def connect(sync_api: Any, crms: Any):
    def make(vendor: str, api: Any = None, **extra: Any) -> dict[str, Any]:
        oauth = extra.pop("oauth", None)
        body = {
            "connector": vendor,
            "credentials": credentials_for(crms, vendor, oauth=oauth),
            "base_url": crms.url(vendor),
            "token_url": crms.token_url(vendor),
            "schedule_minutes": 60,
            **extra,
        }
        if vendor == "zoho":
            body.setdefault("field_map", {"timezone": "Time_Zone"})
        if vendor == "pipedrive":
            body.setdefault("field_map", {"timezone": "tz"})
        created = (api or sync_api).post("/v1/connections", body)
        assert created.status == 201, created.body
        return created.json()

    return make

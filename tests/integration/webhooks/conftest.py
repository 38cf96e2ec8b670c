"""Webhook tests run in a world where private destinations are allowed, as the local stack allows them: the
receivers are local servers (pytest-httpserver on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import WEBHOOK_SCOPES

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stack() -> Iterator[Any]:
    from moto import mock_aws

    from conveyor.platform.settings import get_settings
    from conveyor_local.stack import Stack

    with mock_aws():
        get_settings.cache_clear()
        world = Stack(ROOT / "template.yaml", parameters={"OutboundAllowPrivate": "true"}).provision()
        _warm(world)
        yield world
        get_settings.cache_clear()


def _warm(world: Any) -> None:
    """Import the handlers and build the KMS client before the test (as a warm sandbox has them): a cold first
    call on a loaded 2-core machine can otherwise pass a function's Timeout, which the local stack enforces."""
    from conveyor.platform.aws import client

    world.warm_up()
    client("kms")


@pytest.fixture
def api_as(api_as: Any):
    """The shared factory, with webhook (and contact, job) scopes by default."""

    def make(tenant: str, scopes: str = WEBHOOK_SCOPES) -> Any:
        return api_as(tenant, scopes)

    return make


@pytest.fixture
def api(api_as: Any) -> Any:
    return api_as("tenant-a")


@pytest.fixture(autouse=True)
def _fresh_outbound_client() -> Iterator[None]:
    """Each test builds its own outbound client (its policy and resolver as the test set them)."""
    from conveyor.webhooks import service

    service._client.cache_clear()
    yield
    service._client.cache_clear()

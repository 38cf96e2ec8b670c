"""Shared fixtures: fake AWS credentials, and a moto world built from template.yaml."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import capabilities

capabilities.install()  # the job types, as every function that runs jobs wires them

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never talk to real AWS from a test, whatever the developer's shell has configured."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "1")


@pytest.fixture
def stack() -> Iterator[Any]:
    """A fresh moto world with every table and queue template.yaml declares, and its function environment."""
    from moto import mock_aws

    from conveyor.platform import cache
    from conveyor.platform.settings import get_settings
    from conveyor_local.stack import Stack

    with mock_aws():
        get_settings.cache_clear()
        cache.reset()
        yield Stack(ROOT / "template.yaml").provision()
        get_settings.cache_clear()
        cache.reset()


class Api:
    """Real HTTP API (payload 2.0) requests through the emulated gateway: authorizer first, then the API function."""

    def __init__(self, stack: Any, key: str | None) -> None:
        self.stack, self.key = stack, key

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        key: str | None = "default",
    ) -> Any:
        sent = {"content-type": "application/json", **(headers or {})}
        token = self.key if key == "default" else key
        if token:
            sent["authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        return self.stack.gateway.handle(method, path, sent, data)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)


@pytest.fixture
def new_key(stack: Any):
    """Mint an API key: new_key("tenant-a", "jobs:read,jobs:write")."""
    from conveyor.platform.auth import keys

    def mint(tenant: str = "tenant-a", scopes: str = "jobs:read,jobs:write", **kw: Any) -> str:
        key, _ = keys.create(tenant, set(scopes.split(",")), **kw)
        return key

    return mint


@pytest.fixture
def api(stack: Any, new_key: Any) -> Api:
    return Api(stack, new_key())


@pytest.fixture
def api_as(stack: Any, new_key: Any):
    def make(tenant: str, scopes: str = "jobs:read,jobs:write") -> Api:
        return Api(stack, new_key(tenant, scopes))

    return make


@pytest.fixture
def sent_emails(stack: Any):
    """What the emulated SES accepted: a list of moto Message objects (id, source, destinations, subject, body)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return lambda: list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


@pytest.fixture
def aws_calls(stack: Any):
    """Record the API calls made through conveyor's shared boto3 clients: aws_calls("sqs", "SendMessageBatch")."""
    from conveyor.platform.aws import client

    seen: list[tuple[str, str, dict[str, Any]]] = []
    hooks = []

    def watch(service: str) -> None:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            seen.append((service, model.name, params))

        client(service).meta.events.register(
            f"provide-client-params.{client(service).meta.service_model.service_name}", record
        )
        hooks.append((service, record))

    for service in ("sqs", "sesv2"):
        watch(service)

    def calls(service: str, operation: str) -> list[dict[str, Any]]:
        return [params for s, op, params in seen if s == service and op == operation]

    yield calls
    for service, record in hooks:
        client(service).meta.events.unregister(
            f"provide-client-params.{client(service).meta.service_model.service_name}", record
        )


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> threading.Lock:
    """Each DynamoDB request applied atomically, as DynamoDB does (moto does not lock between threads). A
    read-modify-write between two requests still interleaves with other threads, so lost updates still show."""
    from botocore.client import BaseClient

    lock = threading.Lock()
    original = BaseClient._make_api_call

    def atomic(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            with lock:
                return original(self, operation, params)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", atomic)
    return lock

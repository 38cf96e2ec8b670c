"""The benchmarks' world: template.yaml provisioned under moto, like tests/conftest.py builds it."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TENANT = "tenant-bench"

# Import paths as pyproject's pytest config sets them: the layer, the local harness, every function's code.
for _path in [ROOT / "layers" / "conveyor", ROOT / "local", ROOT]:
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def fake_aws_env() -> None:
    """Never talk to real AWS from a benchmark, whatever the shell has configured."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS)
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"  # no X-Ray daemon here; Lambda's own segment costs nothing


@contextlib.contextmanager
def moto_stack(root: Path = ROOT, parameters: dict[str, str] | None = None) -> Iterator[Any]:
    """A fresh moto world with every table and queue of the template, the functions' env applied."""
    fake_aws_env()
    from moto import mock_aws

    from conveyor.platform.settings import get_settings
    from conveyor_local.stack import Stack

    saved = dict(os.environ)
    with mock_aws():
        get_settings.cache_clear()
        try:
            yield Stack(root / "template.yaml", parameters=parameters).provision()
        finally:
            get_settings.cache_clear()
            os.environ.clear()
            os.environ.update(saved)


def template_functions(root: Path = ROOT) -> list[Any]:
    """Every AWS::Serverless::Function with its resolved environment (provisioned once under moto to resolve it)."""
    with moto_stack(root) as stack:
        return list(stack.functions.values())


def api_key(tenant: str = TENANT, scopes: str = "jobs:read,jobs:write") -> str:
    from conveyor.platform.auth import keys

    key, _ = keys.create(tenant, set(scopes.split(",")))
    return key


class CountingSink(io.TextIOBase):
    """A stdout stand-in that counts what functions print (JSON logs, EMF metrics) and keeps none of it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)

    def writable(self) -> bool:
        return True


@contextlib.contextmanager
def quiet_functions() -> Iterator[CountingSink]:
    """Functions log at the template's level (the cost is real), but to a counter, not the terminal: stdout
    (EMF metrics are printed) and every logging handler that writes to it, whichever logger it belongs to."""
    import logging

    sink = CountingSink()
    loggers = [logging.getLogger()] + [
        v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
    ]
    handlers = {
        h
        for lg in loggers
        for h in lg.handlers
        if isinstance(h, logging.StreamHandler)
        and (
            getattr(h, "stream", None) in (sys.stdout, sys.__stdout__)
            or isinstance(getattr(h, "stream", None), CountingSink)
        )
    }  # made during an earlier world
    previous = {h: h.setStream(sink) for h in handlers}
    try:
        with contextlib.redirect_stdout(sink):
            yield sink
    finally:
        for handler, stream in previous.items():
            handler.setStream(stream)


def say(message: str) -> None:
    """Progress, on stderr (functions' stdout is swallowed while they run)."""
    print(message, file=sys.stderr, flush=True)

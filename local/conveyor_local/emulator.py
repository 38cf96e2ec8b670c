"""The embedded emulator: moto's threaded server, with what a local stack needs of it.

- moto's dispatcher works out the service of every request by listing its own package directory (about 200
  `isdir` calls, under a global lock); the answer depends only on the Host header, so it is remembered. That was
  about a third of the emulator's time while the stack sat idle.
- Stream pollers have no long poll (Lambda reads a shard four times a second). The emulator sees every table write,
  so it tells them (`TableWrites`): a poller reads at once after a write and once a second when nothing happens.
- DynamoDB applies each request atomically; moto does not lock between its server's threads, and a
  TransactWriteItems (which deep-copies the tables it touches) beside another thread's write failed with
  "dictionary changed size during iteration", a 500 (seen under `make fuzz`). DynamoDB and DynamoDB Streams
  requests take one lock; they never block inside moto, unlike SQS's long polls, which do not take it.
- What moto itself gets wrong for a stack is fixed in conveyor_local.moto_fixes.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from conveyor_local import moto_fixes

_DYNAMODB = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")  # X-Amz-Target prefixes
# The DynamoDB operations that can add a stream record
_WRITES = tuple(
    f"DynamoDB_20120810.{op}"
    for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement")
)


class TableWrites:
    """A counter of table writes that pollers can wait on: `wait(seen, timeout)` returns as soon as the count is not
    `seen` any more (at once if a write came in since), or after `timeout`."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.count = 0

    def add(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self.count != seen, timeout)
            return self.count


class _Dispatcher(DomainDispatcherApplication):
    def __init__(self, writes: TableWrites) -> None:
        super().__init__(create_backend_app)
        self.writes = writes
        self.tables = threading.Lock()

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one dispatcher per emulator, alive as long as it
    def get_backend_for_host(self, host: str | None) -> Any:
        return super().get_backend_for_host(host)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(_DYNAMODB):
            return super().__call__(environ, start_response)
        with self.tables:
            response = super().__call__(environ, start_response)  # moto has applied the request when this returns
        if target.startswith(_WRITES):
            self.writes.add()
        return response


class Emulator(ThreadedMotoServer):
    """As moto's, but a port that cannot be bound is reported (moto's start() would wait forever), a stop is noticed
    within 0.1 s, and table writes are counted in `writes`."""

    def __init__(self, host: str, port: int) -> None:
        moto_fixes.install()  # moto runs in this process
        super().__init__(ip_address=host, port=port, verbose=False)
        self.writes = TableWrites()
        self.errors: list[BaseException] = []

    def _server_entry(self) -> None:
        try:
            self._server = make_server(
                self._ip_address, self._port, _Dispatcher(self.writes), True, request_handler=MotoRequestHandler
            )
        except Exception as exc:  # noqa: BLE001 - handed to start(), which raises it
            self.errors.append(exc)
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.1)

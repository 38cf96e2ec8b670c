"""The embedded emulator: moto's threaded server in a process of its own, with what a local stack needs of it.

- Its own process: the stack's functions and pollers keep their interpreter busy, and sharing its lock every
  emulated AWS call waited for them and they for it (`make run` used one core of two; under `make fuzz` a request
  took over 10 s). The stack talks to it over HTTP as before; only the write counter below is shared memory.

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
import logging
import multiprocessing
import os
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from conveyor_local import moto_fixes

START_SECONDS = 60  # spawning a Python and importing moto takes 1-2 s; far longer on a loaded machine
_DYNAMODB = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")  # X-Amz-Target prefixes
# The DynamoDB operations that can add a stream record
_WRITES = tuple(
    f"DynamoDB_20120810.{op}"
    for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement")
)


class TableWrites:
    """A counter of table writes that pollers can wait on: `wait(seen, timeout)` returns as soon as the count is not
    `seen` any more (at once if a write came in since), or after `timeout`. Shared between the emulator's process,
    which counts, and the stack's, whose pollers wait."""

    def __init__(self, context: Any = None) -> None:
        context = context or multiprocessing.get_context("spawn")
        self._changed = context.Condition()
        self._count = context.RawValue("Q", 0)  # guarded by the condition's lock

    @property
    def count(self) -> int:
        return int(self._count.value)

    def add(self) -> None:
        with self._changed:
            self._count.value += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._count.value != seen, timeout)
            return int(self._count.value)


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


class Emulator:
    """moto's threaded server in a process of its own: a port that cannot be bound is reported (in `errors`), a
    stop is noticed within 0.5 s, table writes are counted in `writes`, and it ends with the process that started
    it (moto's state with it)."""

    def __init__(self, host: str, port: int) -> None:
        self._context = multiprocessing.get_context("spawn")  # not fork: this process already runs threads
        self.writes = TableWrites(self._context)
        self.errors: list[BaseException] = []
        self._host, self._port = host, port
        self._address: tuple[str, int] | None = None
        self._stop = self._context.Event()
        self._process: Any = None

    def start(self) -> None:
        answers, child_end = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_serve,
            args=(self._host, self._port, self.writes, self._stop, child_end, os.getpid()),
            name="conveyor-emulator",
            daemon=True,
        )
        self._process.start()
        child_end.close()
        if not answers.poll(START_SECONDS):
            self.errors.append(RuntimeError(f"the emulator did not start within {START_SECONDS} s"))
            return
        try:
            answer = answers.recv()
        except EOFError:  # it died before it could answer (its traceback is on stderr)
            self._process.join(5)
            self.errors.append(RuntimeError(f"the emulator exited at start (exit code {self._process.exitcode})"))
            return
        if isinstance(answer, str):
            self.errors.append(OSError(answer))
        else:
            self._address = (str(answer[0]), int(answer[1]))

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._address is not None, "Make sure to call start() first"  # noqa: S101 - as moto's own
        return self._address

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)


def _serve(host: str, port: int, writes: TableWrites, stop: Any, answers: Any, parent: int) -> None:
    """The emulator's process: serve until told to stop, or until the process that started it is gone."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log
    moto_fixes.install()
    try:
        server = make_server(host, port, _Dispatcher(writes), True, request_handler=MotoRequestHandler)
    except SystemExit:  # werkzeug's answer to a port in use (it has said so on stderr)
        answers.send(f"cannot listen on {host}:{port}: the address is in use")
        return
    except Exception as exc:  # noqa: BLE001 - handed to start(), which reports it
        answers.send(f"{type(exc).__name__}: {exc}")
        return
    answers.send(server.server_address[:2])

    def watch() -> None:
        while not stop.wait(0.5) and os.getppid() == parent:
            pass
        server.shutdown()

    threading.Thread(target=watch, name="emulator-stop", daemon=True).start()
    server.serve_forever(poll_interval=0.1)

"""Running a template function in this process, the way Lambda would call it.

Every function shares this one process (and so its module state); the local stack therefore runs each function
one invocation at a time (see Stack.invoke), and a handler module is imported once, like a warm sandbox.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from conveyor_local.template import ACCOUNT, FunctionSpec

# The function running in this thread (None outside invocations): log lines are labelled with it.
current_function: ContextVar[str | None] = ContextVar("current_function", default=None)

_handlers: dict[tuple[str, str], Callable[[dict[str, Any], Any], Any]] = {}
_import_lock = threading.Lock()


class HandlerConflict(RuntimeError):
    """Two functions' handler modules share a name: one process can import only one of them."""


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, spec: FunctionSpec, region: str = "us-east-1") -> None:
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{spec.logical_id}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
    """Import the handler named by the template: its code dir and layers on the path, its environment set.

    Done once per handler (later calls return the cached function), so the environment and sys.path are only
    changed at load time, never while other threads run functions.
    """
    key = (str(spec.code_dir), spec.handler)
    found = _handlers.get(key)
    if found is not None:
        return found
    with _import_lock:
        if key in _handlers:
            return _handlers[key]
        os.environ.update(spec.environment)
        for directory in [*spec.layer_dirs, spec.code_dir]:
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))
        module_name, function_name = spec.handler.rsplit(".", 1)
        module = importlib.import_module(module_name)
        origin = Path(getattr(module, "__file__", "") or "").resolve()
        if spec.code_dir.resolve() not in origin.parents:
            raise HandlerConflict(
                f"{spec.logical_id}: handler module {module_name!r} was already imported from {origin}; locally all "
                "functions share one process, so each function's handler module needs a unique name"
            )
        _handlers[key] = getattr(module, function_name)
        return _handlers[key]


def invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    handler = load_handler(spec)
    token = current_function.set(spec.logical_id)
    try:
        return handler(event, LambdaContext(spec))
    finally:
        current_function.reset(token)

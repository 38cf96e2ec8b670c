"""Running a template function in this process, the way Lambda would call it."""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from conveyor_local.template import ACCOUNT, FunctionSpec


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
    """Import the handler named by the template: its code dir and layers on the path, its environment set."""
    os.environ.update(spec.environment)
    for directory in [spec.code_dir, *spec.layer_dirs]:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    module_name, function_name = spec.handler.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    return load_handler(spec)(event, LambdaContext(spec))

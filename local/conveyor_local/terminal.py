"""Readable, correct logs when every function shares one process and one terminal.

Two things happen here, neither of which changes what a function logs:
- Correctness: a Powertools Logger keeps appended keys (job_id, the Lambda context...) on its formatter, shared
  by every thread. In Lambda one process serves one invocation at a time; here functions run side by side, so
  `make_keys_per_thread` gives each thread its own copy of those keys (they still persist across invocations in
  one thread, as in a warm sandbox, and `clear_state` still clears them).
- Readability (`--log-format pretty`, the default): structured records print as one line,
  `12:00:01.234 WorkerFunction  INFO  job completed  job_id=... job_type=email.send`, anything else a function
  prints gets the same time + function prefix, and CloudWatch EMF metric lines are condensed
  (`metric JobsCompleted=1 Count job_type=email.send`) or hidden. `--log-format json` keeps the raw lines.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

from conveyor_local.lambdas import current_function

# Keys every record carries that add nothing on a developer's terminal.
_QUIET_KEYS = {
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "sampling_rate",
    "exception",
    "exception_name",
    "stack_trace",
    "exception_notes",
}
_COLORS = {"DEBUG": "\033[2m", "INFO": "\033[36m", "WARNING": "\033[33m", "ERROR": "\033[31m", "CRITICAL": "\033[31m"}
_RESET, _DIM = "\033[0m", "\033[2m"


def _stamp(created: float | None = None) -> str:
    now = time.time() if created is None else created
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


class _PerThreadKeys:
    """A data descriptor standing in for a formatter's `log_format` dict: one copy per thread."""

    def __get__(self, formatter: Any, owner: type | None = None) -> dict[str, Any]:
        if formatter is None:
            return self  # type: ignore[return-value]
        local = formatter.__dict__["_local_keys"]
        if not hasattr(local, "value"):
            local.value = dict(formatter.__dict__["log_format"])  # the keys set at import time
        return local.value

    def __set__(self, formatter: Any, value: dict[str, Any]) -> None:
        formatter.__dict__["_local_keys"].value = value


def _pretty_serialize(self: Any, log: dict[str, Any]) -> str:
    log = self.scrub_log(log) if hasattr(self, "scrub_log") else log  # conveyor's formatter masks personal data
    level = str(log.get("level", "INFO"))
    color = _COLORS.get(level, "") if getattr(self, "_color", False) else ""
    extras = "  ".join(f"{k}={_short(v)}" for k, v in log.items() if k not in _QUIET_KEYS and v is not None)
    line = f"{color}{level:<5}{_RESET if color else ''} {log.get('message', '')}"
    if extras:
        line += f"  {_DIM if color else ''}{extras}{_RESET if color else ''}"
    if log.get("exception"):
        line += "\n" + str(log["exception"])
    return line


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def patch_powertools_loggers(pretty: bool, color: bool = False, names: list[str] | None = None) -> int:
    """Give every Powertools formatter (or those of the loggers `names`) per-thread keys and, if pretty, one-line
    output. Returns how many changed; patching twice changes nothing."""
    changed = 0
    manager = logging.Logger.manager
    chosen = list(manager.loggerDict.values()) if names is None else [logging.getLogger(n) for n in names]
    for candidate in chosen:
        for handler in getattr(candidate, "handlers", []):
            formatter = handler.formatter
            if formatter is None or "log_format" not in vars(formatter) or "_local_keys" in vars(formatter):
                continue
            attributes: dict[str, Any] = {"log_format": _PerThreadKeys()}
            if pretty:
                attributes["serialize"] = _pretty_serialize
            formatter.__dict__["_local_keys"] = threading.local()
            formatter.__dict__["_color"] = color
            formatter.__class__ = type(f"Local{type(formatter).__name__}", (type(formatter),), attributes)
            changed += 1
    return changed


class TerminalStream(io.TextIOBase):
    """stdout for the local stack: complete lines only, labelled with the function that printed them."""

    def __init__(self, target: TextIO, *, show_metrics: bool = False, color: bool = False) -> None:
        self.target, self.show_metrics, self.color = target, show_metrics, color
        self._partial = threading.local()
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        buffered = getattr(self._partial, "text", "") + text
        *lines, self._partial.text = buffered.split("\n")
        if lines:
            function = current_function.get()
            rendered = [r for r in (self._render(line, function) for line in lines) if r is not None]
            if rendered:
                with self._lock:
                    self.target.write("".join(r + "\n" for r in rendered))
                    self.target.flush()
        return len(text)

    def write_raw(self, text: str) -> None:
        """Already-formatted output (the runner's own log lines): written as is, in turn with everything else."""
        with self._lock:
            self.target.write(text)
            self.target.flush()

    def flush(self) -> None:
        with self._lock:
            self.target.flush()

    def _render(self, line: str, function: str | None) -> str | None:
        if function is None:
            return line  # the runner's own output is already formatted
        if line.startswith('{"_aws"'):
            if not self.show_metrics:
                return None
            line = _metric_line(line)
        label = f"{_stamp()} {function:<20}"
        return f"{_DIM}{label}{_RESET} {line}" if self.color else f"{label} {line}"

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()


def _metric_line(line: str) -> str:
    """CloudWatch EMF -> `metric Name=value Unit dim=value`."""
    try:
        emf = json.loads(line)
        directive = emf["_aws"]["CloudWatchMetrics"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return line
    dims = [d for group in directive.get("Dimensions", []) for d in group]
    parts = [
        f"{m['Name']}={_number(emf.get(m['Name']))} {m.get('Unit', '')}".strip() for m in directive.get("Metrics", [])
    ]
    return "metric " + "  ".join(parts + [f"{d}={emf.get(d)}" for d in dims])


def _number(value: Any) -> str:
    values = value if isinstance(value, list) else [value]
    shown = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in values]
    return shown[0] if len(shown) == 1 else "[" + ",".join(shown) + "]"


class _Raw(io.TextIOBase):
    def __init__(self, stream: TerminalStream) -> None:
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.stream.write_raw(text)
        return len(text)


class RunnerFormatter(logging.Formatter):
    """The runner's own lines: `12:00:01.234 local                INFO  message` (labelled with the function
    when said on its behalf, e.g. the outbox noting an email it sent)."""

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        color = _COLORS.get(record.levelname, "") if self.color else ""
        label = f"{_stamp(record.created)} {current_function.get() or 'local':<20}"
        line = f"{label} {color}{record.levelname:<5}{_RESET if color else ''} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def install(pretty: bool, show_metrics: bool) -> bool:
    """Route stdout through TerminalStream (pretty mode) and set up the runner's log lines. Returns color on/off."""
    color = pretty and sys.stdout.isatty()
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    stream: Any = sys.stdout
    if pretty:
        sys.stdout = terminal = TerminalStream(sys.stdout, show_metrics=show_metrics, color=color)
        stream = _Raw(terminal)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        RunnerFormatter(color) if pretty else logging.Formatter("%(asctime)s local %(levelname)s %(message)s")
    )
    runner = logging.getLogger("conveyor_local")
    runner.handlers[:] = [handler]
    runner.setLevel(logging.INFO)
    runner.propagate = False
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return color

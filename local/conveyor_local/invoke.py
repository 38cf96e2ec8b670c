"""`conveyor-local invoke FUNCTION -e EVENT` (`make invoke FN=... EVENT=...`): `sam local invoke` without Docker.

The function is the template's: its environment, its layer on the path, its Handler, run in this process by the
local stack's own machinery (runner.LocalStack.prepare, stack.Stack.invoke). Its AWS clients go to:
  --endpoint-url URL   that emulator;
  otherwise            the running `make run` (its .local/stack.json, if that process is alive and its emulator
                       answers);
  otherwise            an embedded emulator of its own, with the template's resources and the sample records.
The response is printed on stdout as one JSON line (function logs go to stderr). Exit status: 0, or 1 when the
handler raised (the error printed in Lambda's shape), 3 when a batch response reports failed records
(batchItemFailures), 2 for a usage mistake. (`sam local invoke` exits 0 in both cases.)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from conveyor_local.runner import STATE_FILE, LocalStack, Options

log = logging.getLogger("conveyor_local")
HANDLER_RAISED, USAGE, BATCH_FAILURES = 1, 2, 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conveyor-local invoke",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("function", nargs="?", help="logical id (ApiFunction) or folder under functions/ (api)")
    p.add_argument("-e", "--event", help="the event: a JSON file, or - for stdin (default: {})")
    p.add_argument(
        "--seed",
        action="store_true",
        help="(re)create the records the sample events act on first (done anyway in an embedded emulator); "
        "without FUNCTION: only that",
    )
    p.add_argument("--no-seed", action="store_true", help="not even in an embedded emulator (e.g. another template)")
    p.add_argument("--endpoint-url", help="the AWS emulator to use (default: the running make run's, else embedded)")
    p.add_argument("--template", type=Path, default=Path("template.yaml"), help="the SAM template")
    p.add_argument("--state-dir", type=Path, help="where stack.json and outbox/ are (default: .local beside it)")
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE", help="a template parameter")
    p.add_argument("--log-format", choices=("pretty", "json"), default="pretty", help="how function logs look")
    return p


def running_stack(state_dir: Path) -> dict[str, Any] | None:
    """The running `make run` recorded in state_dir/stack.json: None if there is none, or its process is gone, or
    its emulator does not answer."""
    try:
        found = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid, endpoint = found.get("pid"), found.get("endpoint_url")
    if not isinstance(pid, int) or not isinstance(endpoint, str) or not _alive(pid) or not _answers(endpoint):
        log.warning("%s names no running stack; ignoring it", state_dir / STATE_FILE)
        return None
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _answers(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


def read_event(source: str | None) -> Any:
    if source is None:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    return json.loads(text)


def find_function(functions: dict[str, Any], name: str) -> Any:
    if name in functions:
        return functions[name]
    by_folder = {spec.code_dir.name: spec for spec in functions.values()}
    if name in by_folder:
        return by_folder[name]
    raise KeyError(f"no function {name!r} in the template (functions: {', '.join(sorted(functions))})")


def outcome(result: Any) -> int:
    """0, or BATCH_FAILURES when a partial-batch response names failed records (SQS, streams)."""
    if isinstance(result, dict) and result.get("batchItemFailures"):
        return BATCH_FAILURES
    return 0


def lambda_error(exc: BaseException) -> dict[str, Any]:
    """An exception as Lambda reports an unhandled one."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.function and not args.seed:
        parser().print_usage(sys.stderr)
        print("conveyor-local invoke: name a FUNCTION (or --seed)", file=sys.stderr)
        return USAGE
    if not args.template.is_file():
        print(f"conveyor-local invoke: no template at {args.template}", file=sys.stderr)
        return USAGE
    try:
        event = read_event(args.event) if args.function else None
    except (OSError, ValueError) as exc:
        print(f"conveyor-local invoke: cannot read the event {args.event}: {exc}", file=sys.stderr)
        return USAGE
    parameters = dict(item.partition("=")[::2] for item in args.parameter)

    # stdout carries the response only: everything else the functions and the stack print goes to stderr
    response_out: TextIO = sys.stdout
    sys.stdout = sys.stderr
    from conveyor_local.terminal import install

    color = install(pretty=args.log_format == "pretty", show_metrics=False)
    options = Options(
        template=args.template,
        emulator_port=0,
        state_dir=args.state_dir,
        region=args.region,
        parameters=parameters,
        pretty_logs=args.log_format == "pretty",
        color=color,
    )
    running = None if args.endpoint_url else running_stack(options.state)
    options.endpoint_url = args.endpoint_url or (running or {}).get("endpoint_url")
    args.api_url = (running or {}).get("url")  # the sample webhook posts to that stack's inbox
    runtime = LocalStack(options)
    try:
        seed_first = args.seed or (options.endpoint_url is None and not args.no_seed)
        return _run(runtime, args, event, seed_first=seed_first, out=response_out)
    finally:
        runtime.stop(timeout=5)


def _run(runtime: LocalStack, args: argparse.Namespace, event: Any, *, seed_first: bool, out: TextIO) -> int:
    endpoint = runtime.prepare()
    stack = runtime.stack
    where = "an embedded emulator" if runtime.options.endpoint_url is None else endpoint
    log.info("against %s", where)
    if seed_first:
        from conveyor_local.seed import seed

        made = seed(stack, **({"api_url": args.api_url} if args.api_url else {}))
        log.info("sample records in place (tenant %s; jobs %s)", made["tenant"], ", ".join(made["jobs"]))
    if not args.function:
        return 0
    try:
        spec = find_function(stack.functions, args.function)
    except KeyError as exc:
        print(f"conveyor-local invoke: {exc.args[0]}", file=sys.stderr)
        return USAGE

    from conveyor_local.terminal import patch_powertools_loggers

    try:
        from conveyor_local.lambdas import load_handler

        load_handler(spec)  # an import error is the function's error, as on Lambda
        patch_powertools_loggers(pretty=runtime.options.pretty_logs, color=runtime.options.color)
        result = stack.invoke(spec, event)
    except Exception as exc:  # noqa: BLE001 - the handler's failure is this command's answer, reported like Lambda
        log.error("%s raised %s: %s", spec.logical_id, type(exc).__name__, exc, exc_info=exc)
        print(json.dumps(lambda_error(exc)), file=out, flush=True)
        return HANDLER_RAISED
    print(json.dumps(result, default=str), file=out, flush=True)
    status = outcome(result)
    if status == BATCH_FAILURES:
        failed = ", ".join(str(item.get("itemIdentifier")) for item in result["batchItemFailures"])
        log.warning("%s reported failed records: %s", spec.logical_id, failed)
    return status

"""`conveyor-local` (`make run`): the whole stack on this machine — no Docker, no AWS account.

An embedded AWS emulator (moto) on a loopback port, every table and queue of template.yaml, each function run
in-process with the environment the template gives it, an HTTP API on 127.0.0.1:3000, a poller per event source
and a timer per schedule. Ctrl-C (or SIGTERM) stops it after the in-flight batches finish.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from conveyor_local.runner import LocalStack, Options, Ready

log = logging.getLogger("conveyor_local")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conveyor-local",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--template", type=Path, default=Path("template.yaml"), help="the SAM template to run")
    p.add_argument("--host", default="127.0.0.1", help="address the HTTP API listens on (keep it loopback)")
    p.add_argument("--port", type=int, default=3000, help="HTTP API port (0: any free port)")
    p.add_argument(
        "--emulator-port",
        type=int,
        default=3001,
        help="port of the embedded emulator (0: any free port; a busy port falls back to a free one)",
    )
    p.add_argument(
        "--emulator-host",
        default="127.0.0.1",
        help="address the embedded emulator listens on; 0.0.0.0 lets Docker containers (sam local invoke) reach it",
    )
    p.add_argument(
        "--endpoint-url", help="use this external AWS emulator (e.g. http://127.0.0.1:4566) instead of the embedded one"
    )
    p.add_argument(
        "--fast-schedules",
        type=float,
        metavar="N",
        help="fire every schedule every N seconds instead of at its rate (for demos)",
    )
    p.add_argument(
        "--state-dir", type=Path, help="outbox/ and stack.json go here (default: .local beside the template)"
    )
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    p.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        metavar="N",
        help="count an invocation as timed out past its Timeout x N (a loaded machine; the e2e tests use 3)",
    )
    p.add_argument(
        "--fake-crm",
        type=int,
        nargs="?",
        const=2000,
        metavar="PEOPLE",
        help="also serve fake Zoho CRM, Pipedrive and HubSpot APIs (PEOPLE each, default 2000) to sync from",
    )
    p.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter (repeatable)",
    )
    p.add_argument(
        "--log-format",
        choices=("pretty", "json"),
        default="pretty",
        help="pretty: one readable line per record; json: the functions' raw structured output",
    )
    p.add_argument("--metrics", action="store_true", help="show CloudWatch EMF metrics (condensed in pretty mode)")
    p.add_argument(
        "--access-log",
        choices=("all", "writes", "none"),
        default="writes",
        help="which HTTP requests get a log line (writes: all but successful GET/HEAD/OPTIONS)",
    )
    return p


def options_from(args: argparse.Namespace) -> Options:
    parameters = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"conveyor-local: --parameter wants NAME=VALUE, got {item!r}")
        parameters[name] = value
    return Options(
        template=args.template,
        host=args.host,
        port=args.port,
        emulator_port=args.emulator_port,
        emulator_host=args.emulator_host,
        endpoint_url=args.endpoint_url,
        fast_schedules=args.fast_schedules,
        state_dir=args.state_dir,
        region=args.region,
        parameters=parameters,
        pretty_logs=args.log_format == "pretty",
        show_metrics=args.metrics,
        access_log=args.access_log,
        fake_crm=args.fake_crm,
        timeout_scale=args.timeout_scale,
    )


def banner(ready: Ready, options: Options) -> str:
    from conveyor_local.samples import REMINDER_IN_30S, WELCOME_EMAIL

    key = ready.api_key or "<no key: see the warning above>"
    auth = f"-H {shlex.quote('Authorization: Bearer ' + key)}"
    post = f"curl -s -X POST {ready.url}/v1/jobs {auth} -H 'Content-Type: application/json' -d"
    emulator = f"{ready.endpoint_url}" + ("" if ready.embedded_emulator else "  (external, --endpoint-url)")
    outbox = os.path.relpath(ready.outbox)
    schedules = "\n".join(f"  {'Schedules' if i == 0 else '':<10} {s}" for i, s in enumerate(ready.schedules))
    lines = [
        "",
        f"  Conveyor is running locally: {options.template} with {ready.functions} functions, "
        f"{ready.sources} event sources (started in {ready.started_in:.1f}s)",
        "",
        f"  {'API':<10} {ready.url}    (docs: {ready.url}/v1/docs)",
        f"  {'Emulator':<10} {emulator}    (aws --endpoint-url {ready.endpoint_url} --region {options.region} "
        "sqs list-queues; any credentials)",
        f"  {'Outbox':<10} {outbox}/    (every email and SMS sent: <job-id>.eml, <job-id>.sms.txt)",
        f"  {'Webhooks':<10} {ready.url}/_local/webhook-inbox    (a built-in receiver: GET it to see deliveries)",
        f"  {'API key':<10} {key}    (tenant {ready.tenant}; scopes {', '.join(options.demo_scopes)})",
        f"  {'Dashboard':<10} {ready.dashboard}    (sign in by pasting the API key)",
    ]
    if ready.signin_link:
        lines.append(f"  {'':<10} {ready.signin_link}    (one click signs the demo key in; valid one minute, once)")
    if schedules:
        lines.append(schedules)
    if ready.fake_crms:
        pd = ready.fake_crms["pipedrive"]
        body = {
            "connector": "pipedrive",
            "credentials": {"api_token": pd["api_token"]},
            "base_url": pd["base_url"],
            "field_map": {"timezone": "tz"},
        }
        lines += [
            "",
            f"  {'Fake CRMs':<10} " + "  ".join(f"{v}: {c['base_url']}" for v, c in ready.fake_crms.items()),
            "    # connect the fake Pipedrive, then sync it (watch the process; GET /v1/contacts/<connection>:1000)",
            f"    curl -s -X POST {ready.url}/v1/connections {auth} -d {shlex.quote(json.dumps(body))}",
            f'    curl -s -X POST {ready.url}/v1/connections/<id>/sync {auth} -d \'{{"mode":"initial"}}\'',
            f"    (credentials of all three, OAuth ones included: {os.path.relpath(ready.outbox)}/../stack.json)",
        ]
    lines += sam_lines(ready, options)
    lines += [
        "",
        "  Try it:",
        "    # 1. send a welcome email now (then look in the outbox)",
        f"    {post} {shlex.quote(json.dumps(WELCOME_EMAIL, separators=(',', ':')))}",
        "    # 2. send an appointment reminder in 30 seconds",
        f"    {post} {shlex.quote(json.dumps(REMINDER_IN_30S, separators=(',', ':')))}",
        "    # 3. list your jobs, newest first, and watch their state",
        f"    curl -s '{ready.url}/v1/jobs?limit=5' {auth}",
        "",
        "  A guided tour: `make demo` in another terminal.  Stop: Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def sam_lines(ready: Ready, options: Options) -> list[str]:
    """How to run one function against this stack: with Docker (`sam local invoke`) and without."""
    env = os.path.relpath(ready.env_json) if ready.env_json else ".local/env.json"
    sample = "ApiFunction -e events/api-get-job.json"
    lines = [
        f"  {'Invoke':<10} make invoke FN={sample.replace(' -e ', ' EVENT=')}    (no Docker: conveyor-local invoke)",
        f"  {'':<10} sam local invoke {sample} --env-vars {env}    (Docker; after `make build`)",
    ]
    if ready.containers_reach_emulator is False:
        lines.append(
            f"  {'':<10} (containers cannot reach an emulator on {options.emulator_host}: for sam local invoke, "
            'restart with ARGS="--emulator-host 0.0.0.0")'
        )
    else:
        lines.append(f"  {'':<10} ({env} aims every function at {ready.container_endpoint})")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["invoke"]:
        from conveyor_local.invoke import main as invoke_main

        return invoke_main(argv[1:])
    args = parser().parse_args(argv)
    options = options_from(args)
    if not options.template.is_file():
        print(
            f"conveyor-local: no template at {options.template} (run from the project root or pass --template)",
            file=sys.stderr,
        )
        return 2

    from conveyor_local.terminal import install

    options.color = install(pretty=options.pretty_logs, show_metrics=options.show_metrics)
    if options.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: the local stack has no real security; keep it off shared networks", options.host)
    if options.emulator_host not in ("127.0.0.1", "localhost", "::1") and not options.endpoint_url:
        log.warning(
            "the emulator listens on %s: whatever reaches this machine there can read and change the local stack",
            options.emulator_host,
        )

    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum: int, _frame: object) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            print("\nconveyor-local: stopping now, without waiting for in-flight batches", file=sys.stderr)
            os._exit(130)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    runtime = LocalStack(options)
    try:
        ready = runtime.start()
    except OSError as exc:
        log.error("could not start: %s (is another conveyor-local running? try --port)", exc)
        runtime.stop(timeout=5)
        return 1
    except Exception:  # noqa: BLE001 - the command's top level: say what broke, clean up, exit non-zero
        log.exception("could not start")
        runtime.stop(timeout=5)
        return 1
    print(banner(ready, options), flush=True)
    while not stop.wait(0.5):
        pass
    log.info("stopping: no new requests; letting in-flight batches finish (Ctrl-C again to force)")
    clean = runtime.stop()
    log.info("stopped" if clean else "stopped, with work still running")
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())

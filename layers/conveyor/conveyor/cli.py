"""`conveyor`: jobs, processes, queues, dead letters, webhooks and API keys from the command line.

Against `make run` it needs nothing: the local stack writes .local/stack.json (its URL, a demo key, the emulator
endpoint and table names). Against a deployed stack give --url/--key (or CONVEYOR_URL / CONVEYOR_API_KEY) for
the API commands, and --stack NAME (or --table) for `keys`, which talk to DynamoDB directly with your AWS
credentials. --json prints the API's JSON for scripts. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from conveyor.platform.errors import ConveyorError

SCOPES_HELP = (
    "comma-separated, from: jobs:read, jobs:write, reminders:read, reminders:write, processes:read, "
    "processes:write, sync:read, sync:write, reports:read, reports:write, webhooks:read, webhooks:write, admin (every "
    "scope of its tenant but platform), platform (shared infrastructure, every tenant)"
)


class CliError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


# --- output ----------------------------------------------------------------------------------------------
def _emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        human()


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> None:
    """An aligned table: rich's on a terminal (when rich is installed), plain columns otherwise (pipes, scripts)."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if sys.stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(*headers)
            for row in cells:
                table.add_row(*row)
            Console().print(table)
            return
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _job_line(job: dict[str, Any]) -> str:
    error = job.get("error") or {}
    tail = f"  {error.get('type')}: {error.get('message')}" if error else ""
    return (
        f"{job['id']}  {job['type']}  {job['state']}  attempt {job.get('attempts', 0)}/{job.get('max_attempts')}"
        f"  {job.get('progress', 0)}%{tail}"
    )


# --- the API commands -----------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> Any:
    from conveyor.client import Client, stack_settings

    saved = stack_settings(Path(args.stack_file))
    url = args.url or os.environ.get("CONVEYOR_URL") or saved.get("url")
    key = args.key or os.environ.get("CONVEYOR_API_KEY") or saved.get("api_key")
    if not url:
        raise CliError(
            f"no stack: start one with `make run` (it writes {args.stack_file}), or give --url/--key "
            "(CONVEYOR_URL / CONVEYOR_API_KEY)"
        )
    if not key:
        raise CliError("no API key: give --key or CONVEYOR_API_KEY (make one with `conveyor keys create`)")
    return Client(url, key)


def _payload(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise CliError(f"--payload {text}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--payload is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise CliError("--payload must be a JSON object")
    return value


def _jobs_enqueue(args: argparse.Namespace) -> None:
    with _client(args) as api:
        job = api.enqueue(
            args.type,
            _payload(args.payload),
            run_at=args.run_at,
            delay_seconds=args.delay,
            max_attempts=args.max_attempts,
            idempotency_key=args.idempotency_key,
        )
    _emit(args, job, lambda: print(f"{job['id']}  {job['type']}  {job['state']} on queue {job['queue']}"))


def _job_lines(source: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The jobs of a JSON Lines file (`-`: stdin), one object a line, blank lines skipped, and their line
    numbers; all read and checked before anything is sent."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"{source}: {exc.strerror}") from None
    jobs, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CliError(f"{source} line {number} is not JSON ({exc.msg})") from None
        if not isinstance(job, dict):
            raise CliError(f"{source} line {number} must be a JSON object (a job)")
        jobs.append(job)
        numbers.append(number)
    if not jobs:
        raise CliError(f"{source} holds no jobs")
    return jobs, numbers


def _jobs_enqueue_many(args: argparse.Namespace) -> int:
    jobs, numbers = _job_lines(args.file)
    with _client(args) as api:
        results = api.enqueue_many(jobs)

    def human() -> None:  # each job's line number in the file, what became of it, its job id or the error
        for r in results:
            job, error = r.get("job") or {}, r.get("error") or {}
            what = job.get("id") or f"{error.get('code')}: {error.get('message')}"
            print(f"{numbers[r['index']]}  {r['status']}  {what}")

    _emit(args, {"items": results}, human)
    counts = Counter(r["status"] for r in results)
    print(", ".join(f"{n} {status}" for status, n in counts.items()), file=sys.stderr)
    return 0 if set(counts) <= {"created", "duplicate"} else 1


def _jobs_get(args: argparse.Namespace) -> None:
    with _client(args) as api:
        job = api.get_job(args.id)
    _emit(args, job, lambda: print(_job_line(job)))


def _jobs_list(args: argparse.Namespace) -> None:
    with _client(args) as api:
        if args.all:
            items = list(api.iter_jobs(state=args.state, job_type=args.type, queue=args.queue))
            page: dict[str, Any] = {"items": items, "next_cursor": None}
        else:
            page = api.list_jobs(
                state=args.state, job_type=args.type, queue=args.queue, limit=args.limit, cursor=args.cursor
            )

    def human() -> None:
        rows = [(j["id"], j["type"], j["queue"], j["state"], j["attempts"], j["created_at"]) for j in page["items"]]
        _table(["id", "type", "queue", "state", "attempts", "created"], rows)
        if page.get("next_cursor"):
            print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)

    _emit(args, page, human)


def _jobs_watch(args: argparse.Namespace) -> int:
    def show(job: dict[str, Any]) -> None:
        if not args.json:
            print(_job_line(job), flush=True)

    with _client(args) as api:
        try:
            job = api.wait(args.id, timeout=args.timeout, on_change=show)
        except TimeoutError as exc:
            raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(job, indent=2, default=str))
    return 0 if job["state"] == "completed" else 1


def _jobs_action(action: str) -> Callable[[argparse.Namespace], None]:
    def run(args: argparse.Namespace) -> None:
        with _client(args) as api:
            job = getattr(api, action)(args.id)
        _emit(args, job, lambda: print(_job_line(job)))

    return run


def _queues(args: argparse.Namespace) -> None:
    with _client(args) as api:
        overview = api.queues()

    def human() -> None:
        rows = []
        for q in overview.get("queues", []):
            messages, dead, jobs = q.get("messages") or {}, q.get("dead_letters") or {}, q.get("jobs") or {}
            by_state = jobs.get("by_state") or {}
            rows.append(
                (
                    q.get("name"),
                    "paused" if q.get("paused") else "running",
                    messages.get("visible"),
                    messages.get("in_flight"),
                    messages.get("delayed"),
                    dead.get("depth", dead.get("visible")),
                    " ".join(f"{k}={v}" for k, v in by_state.items() if v) or "-",
                )
            )
        _table(["queue", "state", "waiting", "in flight", "delayed", "dead letters", "your jobs"], rows)

    _emit(args, overview, human)


def _dlq_peek(args: argparse.Namespace) -> None:
    with _client(args) as api:
        found = api.dead_letters(args.queue, limit=args.limit)

    def human() -> None:
        rows = [
            (
                m.get("job_id"),
                m.get("type"),
                m.get("receive_count"),
                m.get("sent_at"),
                (m.get("job") or {}).get("state"),
            )
            for m in found.get("messages", [])
        ]
        _table(["job", "type", "receives", "sent", "job state"], rows)

    _emit(args, found, human)


def _dlq_redrive(args: argparse.Namespace) -> None:
    with _client(args) as api:
        result = api.redrive(args.queue, max_messages=args.max, all_tenants=args.all_tenants)
    _emit(args, result, lambda: print(f"moved {result.get('moved', 0)} dead letter(s) back to {args.queue}"))


def _webhooks_list(args: argparse.Namespace) -> None:
    with _client(args) as api:
        items = api.webhooks()

    def human() -> None:
        rows = [
            (w["id"], w["url"], ",".join(w["event_types"]), "enabled" if w["enabled"] else "disabled",
             (w.get("health") or {}).get("consecutive_failures"))
            for w in items
        ]  # fmt: skip
        _table(["id", "url", "events", "state", "failures"], rows)

    _emit(args, {"items": items}, human)


def _webhooks_create(args: argparse.Namespace) -> None:
    with _client(args) as api:
        created = api.subscribe(args.endpoint, [e.strip() for e in args.events.split(",") if e.strip()])

    def human() -> None:
        print(f"{created['id']}  {created['url']}  {','.join(created['event_types'])}")
        print(f"signing secret (shown only this once): {created['secret']}", file=sys.stderr)

    _emit(args, created, human)


def _webhooks_deliveries(args: argparse.Namespace) -> None:
    with _client(args) as api:
        items = list(itertools.islice(api.iter_deliveries(args.id, status=args.status), args.limit))

    def human() -> None:
        rows = [(d["id"], d["event_type"], d["status"], d.get("attempt_count"), d.get("created_at")) for d in items]
        _table(["delivery", "event", "status", "attempts", "created"], rows)

    _emit(args, {"items": items}, human)


def _webhooks_test(args: argparse.Namespace) -> None:
    with _client(args) as api:
        delivery = api.test_webhook(args.id, args.event_type)
    _emit(args, delivery, lambda: print(f"{delivery['id']}  {delivery['event_type']}  {delivery['status']}"))


# --- keys: DynamoDB directly ------------------------------------------------------------------------------
def _keys_table(args: argparse.Namespace) -> str:
    """--table, else API_KEYS_TABLE, else --stack's ApiKeysTableName output, else the local stack (its emulator)."""
    if args.table:
        return str(args.table)
    if os.environ.get("API_KEYS_TABLE"):
        return os.environ["API_KEYS_TABLE"]
    if args.stack:
        from conveyor.platform.aws import client

        stacks = client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
        for output in stacks[0].get("Outputs", []) if stacks else []:
            if output["OutputKey"] == "ApiKeysTableName":
                return str(output["OutputValue"])
        raise CliError(f"stack {args.stack} has no ApiKeysTableName output")
    from conveyor.client import stack_settings

    saved = stack_settings(Path(args.stack_file))
    table = (saved.get("resources") or {}).get("ApiKeysTable")
    if not table or not saved.get("endpoint_url"):
        raise CliError(
            f"no keys table: start the local stack with `make run` (it writes {args.stack_file}), "
            "or give --stack NAME (a deployed stack) or --table NAME"
        )
    _use_local_emulator(str(saved["endpoint_url"]), str(saved.get("region") or "us-east-1"))
    return str(table)


def _use_local_emulator(endpoint: str, region: str) -> None:
    """AWS calls of this process go to `make run`'s emulator, with its fake credentials (nothing leaves the box)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ[name] = value
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)


def _keys_create(args: argparse.Namespace) -> None:
    from conveyor.platform.auth import keys

    if args.expires_in_days is not None and args.expires_in_days < 1:
        raise CliError(
            f"--expires-in-days must be at least 1 (got {args.expires_in_days}); omit it for a key that does not expire"
        )
    key, record = keys.create(
        args.tenant,
        {s.strip() for s in args.scopes.split(",") if s.strip()},
        name=args.name,
        expires_in_days=args.expires_in_days,
        table=_keys_table(args),
    )
    info = {"key": key, "key_id": record.key_id, "tenant_id": record.tenant_id, "scopes": sorted(record.scopes)}

    def human() -> None:
        print(key)
        print(
            f"key id {record.key_id} for tenant {record.tenant_id}, scopes {','.join(sorted(record.scopes))}"
            " (the key is shown only this once)",
            file=sys.stderr,
        )

    _emit(args, info, human)


def _keys_list(args: argparse.Namespace) -> None:
    from conveyor.platform.auth import keys

    records = keys.list_keys(args.tenant, table=_keys_table(args))
    items = [
        {
            "key_id": r.key_id,
            "tenant_id": r.tenant_id,
            "scopes": sorted(r.scopes),
            "name": r.name,
            "created_at": r.created_at.isoformat(),
            "expires_at": r.expires_at,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in records
    ]

    def human() -> None:
        rows = [
            (r.key_id, r.tenant_id, ",".join(sorted(r.scopes)), r.name, r.created_at.isoformat()[:19],
             "revoked" if r.revoked_at else "active")
            for r in records
        ]  # fmt: skip
        _table(["key id", "tenant", "scopes", "name", "created", "status"], rows)

    _emit(args, {"items": items}, human)


def _keys_revoke(args: argparse.Namespace) -> None:
    from conveyor.platform.auth import keys

    record = keys.revoke(args.key, table=_keys_table(args))
    info = {"key_id": record.key_id, "tenant_id": record.tenant_id, "revoked": True}
    _emit(args, info, lambda: print(f"revoked key {record.key_id} of tenant {record.tenant_id}"))


def _demo(args: argparse.Namespace) -> int:
    try:  # development only: the local stack's package is installed by `make install`, never shipped in the layer
        from conveyor_local.demo import run
    except ImportError:
        raise CliError("conveyor demo needs the development install (make install)") from None
    return int(run(args.url, args.key, timeout=args.timeout))


# --- the parser ------------------------------------------------------------------------------------------
def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    common.add_argument("--url", help="the API's URL (default: CONVEYOR_URL, else the local stack's)")
    common.add_argument("--key", help="an API key (default: CONVEYOR_API_KEY, else the local stack's demo key)")
    common.add_argument(
        "--stack-file", default=".local/stack.json", help="the local stack's state file, written by `make run`"
    )
    return common


def _keys_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--stack", help="a deployed CloudFormation stack: its ApiKeysTableName output")
    options.add_argument("--table", help="the API keys table name (default: API_KEYS_TABLE, else the local stack)")
    return options


def _jobs_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    jobs = commands.add_parser("jobs", help="enqueue, inspect, watch, cancel and retry jobs").add_subparsers(
        dest="action", required=True, metavar="{enqueue,enqueue-many,get,list,watch,cancel,retry,run-now}"
    )
    enqueue = jobs.add_parser(
        "enqueue", parents=[common], help="enqueue a job: conveyor jobs enqueue email.send --payload '{...}'"
    )
    enqueue.add_argument("type", help="a job type, e.g. email.send, notification.send")
    enqueue.add_argument("--payload", help="the payload: JSON text, or @file.json")
    enqueue.add_argument("--delay", type=int, metavar="SECONDS", help="run after this many seconds")
    enqueue.add_argument("--run-at", help="run at (or after) this ISO 8601 instant with its offset")
    enqueue.add_argument("--max-attempts", type=int)
    enqueue.add_argument("--idempotency-key", help="a repeat with the same key returns the first job")
    enqueue.set_defaults(run=_jobs_enqueue)
    many = jobs.add_parser(
        "enqueue-many",
        parents=[common],
        help="enqueue the jobs of a JSON Lines file, 100 to a request (exit 1 if any was not accepted)",
    )
    many.add_argument(
        "file",
        help='one job a line, as POST /v1/jobs takes it plus an optional "idempotency_key" ("-": stdin)',
    )
    many.set_defaults(run=_jobs_enqueue_many)
    get = jobs.add_parser("get", parents=[common], help="one job")
    get.add_argument("id")
    get.set_defaults(run=_jobs_get)
    listing = jobs.add_parser("list", parents=[common], help="jobs, newest first")
    listing.add_argument(
        "--state", choices=["scheduled", "queued", "active", "retrying", "completed", "failed", "cancelled"]
    )
    listing.add_argument("--type")
    listing.add_argument("--queue")
    listing.add_argument("--limit", type=int, default=25)
    listing.add_argument("--cursor", help="next page (printed after a page)")
    listing.add_argument("--all", action="store_true", help="every page")
    listing.set_defaults(run=_jobs_list)
    watch = jobs.add_parser("watch", parents=[common], help="follow a job until it finishes (exit 0 if completed)")
    watch.add_argument("id")
    watch.add_argument("--timeout", type=float, default=120, help="give up after this many seconds")
    watch.set_defaults(run=_jobs_watch)
    for action, method, text in (
        ("cancel", "cancel", "cancel a scheduled, queued or retrying job"),
        ("retry", "retry", "retry a failed or cancelled job"),
        ("run-now", "run_now", "run a scheduled job now"),
    ):
        sub = jobs.add_parser(action, parents=[common], help=text)
        sub.add_argument("id")
        sub.set_defaults(run=_jobs_action(method))


def _processes(args: argparse.Namespace) -> int:
    try:  # development only, like `demo`
        from conveyor_local.processes_cli import run
    except ImportError:
        raise CliError("conveyor processes needs the development install (make install)") from None
    return run(args)


def parser() -> argparse.ArgumentParser:
    common = _common()
    root = argparse.ArgumentParser(
        prog="conveyor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    commands = root.add_subparsers(
        dest="command", required=True, metavar="{jobs,queues,dlq,webhooks,keys,demo,processes}"
    )
    _jobs_parser(commands, common)

    queues = commands.add_parser(
        "queues", parents=[common], help="the queues: depths, dead letters, your job counts (admin)"
    )
    queues.set_defaults(run=_queues)

    dlq = commands.add_parser("dlq", help="dead letters: peek and redrive (admin)").add_subparsers(
        dest="action", required=True
    )
    peek = dlq.add_parser("peek", parents=[common], help="look at a queue's dead letters (nothing is consumed)")
    peek.add_argument("queue")
    peek.add_argument("--limit", type=int, default=10)
    peek.set_defaults(run=_dlq_peek)
    redrive = dlq.add_parser("redrive", parents=[common], help="move dead letters back to their queue")
    redrive.add_argument("queue")
    redrive.add_argument("--max", type=int, help="at most this many (default 100)")
    redrive.add_argument("--all-tenants", action="store_true", help="everyone's (needs the platform scope)")
    redrive.set_defaults(run=_dlq_redrive)

    webhooks = commands.add_parser("webhooks", help="webhook subscriptions and their deliveries").add_subparsers(
        dest="action", required=True
    )
    listing = webhooks.add_parser("list", parents=[common], help="your subscriptions")
    listing.set_defaults(run=_webhooks_list)
    create = webhooks.add_parser("create", parents=[common], help="subscribe an endpoint (the secret is shown once)")
    create.add_argument("endpoint", help="the receiver's URL (https; http and private addresses only locally)")
    create.add_argument(
        "--events", required=True, help="comma-separated event types or patterns, e.g. job.*,contact.created"
    )
    create.set_defaults(run=_webhooks_create)
    deliveries = webhooks.add_parser("deliveries", parents=[common], help="a subscription's delivery log, newest first")
    deliveries.add_argument("id")
    deliveries.add_argument("--status", choices=["pending", "delivered", "failed", "skipped"])
    deliveries.add_argument("--limit", type=int, default=25)
    deliveries.set_defaults(run=_webhooks_deliveries)
    test = webhooks.add_parser("test", parents=[common], help="send a signed sample event now")
    test.add_argument("id")
    test.add_argument("--event-type", default="job.completed")
    test.set_defaults(run=_webhooks_test)

    keys_options = _keys_options()
    keys = commands.add_parser("keys", help="API keys: create, list, revoke (DynamoDB directly)").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser(
        "create",
        parents=[common, keys_options],
        help="mint a key (printed once)",
        description=f"Scopes: {SCOPES_HELP}.",
    )
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", required=True, help=SCOPES_HELP)
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--expires-in-days", type=int)
    create.set_defaults(run=_keys_create)
    listing = keys.add_parser(
        "list", parents=[common, keys_options], help="keys, oldest first (never the keys themselves)"
    )
    listing.add_argument("--tenant", help="only this tenant's")
    listing.set_defaults(run=_keys_list)
    revoke = keys.add_parser("revoke", parents=[common, keys_options], help="revoke a key by its id or the key itself")
    revoke.add_argument("key")
    revoke.set_defaults(run=_keys_revoke)

    demo = commands.add_parser("demo", help="enqueue sample jobs on a running local stack (make run) and watch them")
    demo.add_argument("--url", help="the stack's URL (default: CONVEYOR_URL, else .local/stack.json, else :3000)")
    demo.add_argument("--key", help="an API key (default: CONVEYOR_API_KEY, else the one in .local/stack.json)")
    demo.add_argument("--timeout", type=float, default=90, help="give up after this many seconds")
    demo.set_defaults(run=_demo)

    processes = commands.add_parser("processes", help="follow processes on a running stack (make run)")
    actions = processes.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "the newest processes"),
        ("watch", "a progress bar until the process finishes"),
        ("campaign-demo", "create N contacts, start a reminders.campaign to them, watch it"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--url", help="default: CONVEYOR_URL, else .local/stack.json, else :3000")
        action.add_argument("--key", help="default: CONVEYOR_API_KEY, else the one in .local/stack.json")
        action.add_argument("--state-file", default=".local/stack.json", help="what `make run` wrote")
        if name == "watch":
            action.add_argument("id")
            action.add_argument("--every", type=float, default=2.0, help="seconds between polls")
        if name == "campaign-demo":
            action.add_argument("--contacts", type=int, default=10_000)
        action.set_defaults(run=_processes)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's edge: one readable line, never a traceback (--debug shows it)
        if getattr(args, "debug", False):
            raise
        print(f"conveyor: {_explain(exc)}", file=sys.stderr)
        return 2


def _explain(exc: Exception) -> str:
    """One line a person can act on, for the errors a CLI user meets."""
    from conveyor.client import ApiError

    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, ApiError):
        hint = {401: " (is the key right? `conveyor keys create` makes one)", 403: " (the key lacks a scope)"}
        return f"{exc.message} [{exc.code}, HTTP {exc.status}]{hint.get(exc.status, '')}"
    if isinstance(exc, ConveyorError):
        return exc.message
    name = type(exc).__name__
    if name in ("NoRegionError", "NoCredentialsError", "PartialCredentialsError"):
        return f"AWS is not configured ({exc}): set AWS_PROFILE / AWS_DEFAULT_REGION, or run against `make run`"
    if name in ("EndpointConnectionError", "ConnectionRefusedError", "ConnectError"):
        return f"could not connect ({exc}): is `make run` still up?"
    return f"{name}: {exc} (run with --debug for the traceback)"


if __name__ == "__main__":
    raise SystemExit(main())

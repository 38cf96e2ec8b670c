"""`conveyor processes list|watch|campaign-demo`: follow processes on a running stack (`make run`) over HTTP.

watch          polls GET /v1/processes/{id} every 2 s with If-None-Match (an unchanged process answers 304) and
               draws a progress bar with counts, rate and ETA until the process finishes.
campaign-demo  seeds N in-app contacts straight into the local emulator (in notify's own item format:
               10,000 PUTs one at a time would take minutes), then starts a `reminders.campaign` to all of
               them over HTTP and watches it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conveyor_local.demo import ApiError, Client, resolve

FINISHED = ("completed", "completed_with_errors", "failed", "cancelled")


def _get(client: Client, path: str, etag: str | None) -> tuple[int, Any, str | None]:
    headers = {"Authorization": f"Bearer {client.key}"}
    if etag:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(client.url + path, headers=headers)  # noqa: S310 - a URL the user gave
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), response.headers.get("ETag")
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return 304, None, etag
        raise ApiError(f"GET {path} -> {exc.code}: {exc.read().decode(errors='replace')[:300]}") from None


def line(process: dict[str, Any], width: int = 30) -> str:
    counts, progress = process["counts"], process["progress"]
    if progress["percent"] is None:
        bar = "?" * width
        share = f"{counts['processed']} done"
    else:
        filled = int(width * progress["percent"] / 100)
        bar = "#" * filled + "." * (width - filled)
        share = f"{progress['percent']:5.1f}%"
    rate = progress["smoothed_rate_per_second"] or progress["rate_per_second"]
    eta = progress["eta_seconds"]
    return (
        f"[{bar}] {share}  {process['state']:<21} ok {counts['succeeded']} failed {counts['failed']} "
        f"skipped {counts['skipped']}  batches {process['batches']['done']}/{process['batches']['total']}"
        f"  {f'{rate:.0f}/s' if rate else '-/s'}  ETA {f'{eta:.0f}s' if eta is not None else 'unknown'}"
    )


def watch(client: Client, process_id: str, *, every: float = 2.0, timeout: float = 3600, out: Any = None) -> int:
    out = out or sys.stdout
    etag, last, unchanged = None, None, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body, etag = _get(client, f"/v1/processes/{process_id}", etag)
        if status == 304:
            unchanged += 1
        else:
            last = body
            print(line(body) + (f"   ({unchanged} x 304)" if unchanged else ""), file=out, flush=True)
            unchanged = 0
            if body["state"] in FINISHED:
                return 0 if body["state"] != "failed" else 1
        time.sleep(every)
    print(f"still {last['state'] if last else 'unknown'} after {timeout:.0f}s", file=out)
    return 1


def list_processes(client: Client, out: Any = None) -> int:
    for process in client.call("GET", "/v1/processes?limit=20")["items"]:
        print(f"{process['id']}  {process['type']:<22} {process['state']:<21} {process['name']}", file=out)
    return 0


def seed_contacts(contacts: int, state_file: Path = Path(".local/stack.json")) -> str:
    """N in-app contacts for the stack's demo tenant, written to its emulator in batches of 25. Returns the tenant."""
    saved = json.loads(state_file.read_text())
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ENDPOINT_URL"] = saved["endpoint_url"]
    from conveyor.notify.repository import _ContactRecord, contact_key  # dev-only seeding, in notify's own format
    from conveyor.platform.clock import utcnow
    from conveyor.platform.dynamo import bind

    model = bind(_ContactRecord, saved["resources"]["RemindersTable"])
    tenant, now = saved["tenant"], utcnow()
    with model.batch_write() as batch:
        for n in range(contacts):
            batch.save(
                model(
                    tenant,
                    contact_key(f"demo-{n:06d}"),
                    name=f"Client {n}",
                    timezone="UTC",
                    channels=["in_app"],
                    opted_out=[],
                    created_at=now,
                    updated_at=now,
                )
            )
    return tenant


def campaign_demo(client: Client, contacts: int, out: Any = None, state_file: Path = Path(".local/stack.json")) -> int:
    out = out or sys.stdout
    started = time.monotonic()
    tenant = seed_contacts(contacts, state_file)
    print(f"{contacts} contacts for tenant {tenant} in {time.monotonic() - started:.0f}s", file=out, flush=True)
    process = client.call(
        "POST",
        "/v1/processes",
        {
            "type": "reminders.campaign",
            "name": f"demo campaign to {contacts} contacts",
            "params": {"filter": {"name_prefix": "Client "}, "subject": "Closed Friday", "text": "See you Monday"},
        },
    )
    print(f"started {process['id']}; follow it with: conveyor processes watch {process['id']}", file=out, flush=True)
    return watch(client, process["id"], out=out)


def run(args: Any) -> int:
    state = Path(args.state_file)
    url, key = resolve(args.url, args.key, state)
    if not key:
        raise SystemExit("conveyor processes: no API key (start the stack with `make run`, or pass --key)")
    client = Client(url, key)
    try:
        if args.action == "list":
            return list_processes(client)
        if args.action == "watch":
            return watch(client, args.id, every=args.every)
        return campaign_demo(client, args.contacts, state_file=state)
    except ApiError as exc:
        print(f"conveyor processes: {exc}", file=sys.stderr)
        return 2

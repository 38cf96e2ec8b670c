"""`conveyor demo`: a guided tour against a running local stack (`make run`), over its real HTTP API.

Enqueues a mix of sample jobs — some now, some delayed, one that fails permanently inside the worker (a template
missing a context value), one scheduled and then cancelled — and draws each job's progress until all settle.
Standard library only (urllib), so the `conveyor` command gains no dependency.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SETTLED = ("completed", "failed", "cancelled")
DEFAULT_URL = "http://127.0.0.1:3000"


@dataclass
class Sample:
    label: str
    request: dict[str, Any]
    expect: str = "completed"
    cancel: bool = False


@dataclass
class Tracked:
    sample: Sample
    job: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    settled_after: float | None = None


def samples() -> list[Sample]:
    def email(to: str, template: str, context: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"type": "email.send", **extra, "payload": {"to": [to], "template": template, "context": context}}

    reminder = {"name": "Grace", "subject_name": "Grace", "starts_at_local": "Tuesday 10:00", "location": "Room 4"}
    return [
        Sample("welcome email, now", email("ada@example.com", "welcome", {"name": "Ada"})),
        Sample(
            "inline email, now",
            {
                "type": "email.send",
                "payload": {
                    "to": ["linus@example.com"],
                    "subject": "Hello from conveyor demo",
                    "text": "Plain text.",
                    "html": "<p>And <b>HTML</b>.</p>",
                },
            },
        ),
        Sample(
            "report-ready email, now",
            email(
                "grace@example.com",
                "report-ready",
                {"name": "Grace", "report_name": "November visits", "download_url": "https://example.com/r/11"},
            ),
        ),
        Sample("reminder in 3 s", email("grace@example.com", "appointment-reminder", reminder, delay_seconds=3)),
        Sample(
            "reminder in 8 s",
            email(
                "alan@example.com",
                "appointment-reminder",
                {**reminder, "name": "Alan", "subject_name": "Alan"},
                delay_seconds=8,
            ),
        ),
        Sample(
            "reminder missing a value (fails)",
            email("bob@example.com", "appointment-reminder", {"name": "Bob", "subject_name": "Bob"}),
            expect="failed",
        ),
        Sample(
            "email in 2 days, then cancelled",
            email("eve@example.com", "welcome", {"name": "Eve"}, delay_seconds=2 * 86400),
            expect="cancelled",
            cancel=True,
        ),
    ]


# --- HTTP --------------------------------------------------------------------------------------------
class ApiError(RuntimeError):
    pass


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url.rstrip("/"), key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - a URL the user gave
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a URL the user gave
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ApiError(f"{method} {path} -> {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"no stack at {self.url} ({reason}): start it with `make run`") from None


def resolve(url: str | None, key: str | None, state_file: Path = Path(".local/stack.json")) -> tuple[str, str | None]:
    """--url/--key, else CONVEYOR_URL/CONVEYOR_API_KEY, else what `make run` wrote to .local/stack.json."""
    saved: dict[str, Any] = {}
    if state_file.is_file():
        try:
            saved = json.loads(state_file.read_text())
        except ValueError:
            saved = {}
    url = url or os.environ.get("CONVEYOR_URL") or saved.get("url") or DEFAULT_URL
    key = key or os.environ.get("CONVEYOR_API_KEY") or saved.get("api_key")
    return url, key


# --- drawing -----------------------------------------------------------------------------------------
class Screen:
    WIDTH = 24

    def __init__(self, out: Any) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        encoding = (getattr(out, "encoding", "") or "").lower()
        self.full, self.empty = ("█", "░") if "utf" in encoding else ("#", "-")
        self._drawn = 0
        self._last: dict[str, str] = {}

    def draw(self, jobs: list[Tracked]) -> None:
        lines = [self.line(t) for t in jobs]
        if self.tty:
            width = shutil.get_terminal_size().columns - 1  # a wrapped line would break the redraw
            lines = [_clip(line, width) for line in lines]
            if self._drawn:
                self.out.write(f"\033[{self._drawn}F")
            self.out.write("".join(f"\033[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        else:  # a log, not a screen: one line per change of state
            for tracked, line in zip(jobs, lines, strict=True):
                state = tracked.job.get("state", "")
                if self._last.get(tracked.job["id"]) != state:
                    self._last[tracked.job["id"]] = state
                    self.out.write(line + "\n")
        self.out.flush()

    def line(self, tracked: Tracked) -> str:
        job = tracked.job
        state = job.get("state", "?")
        fraction, note = progress(job)
        filled = int(round(fraction * self.WIDTH))
        bar = self.full * filled + self.empty * (self.WIDTH - filled)
        mark = {"completed": "✓", "failed": "✗", "cancelled": "–"}.get(state, " ")
        if mark != " " and self.full == "#":
            mark = {"completed": "+", "failed": "x", "cancelled": "-"}[state]
        after = f" {tracked.settled_after:4.1f}s" if tracked.settled_after is not None else "      "
        text = f" {mark} {tracked.sample.label:<34} [{bar}] {int(fraction * 100):3d}%  {state:<10}{after}  {note}"
        if self.tty and state in ("completed", "failed", "cancelled"):
            color = {"completed": "\033[32m", "failed": "\033[31m", "cancelled": "\033[2m"}[state]
            text = f"{color}{text}\033[0m"
        return text


def _clip(line: str, width: int) -> str:
    """Cut a line to `width` visible characters (colour codes do not count)."""
    visible = len(re.sub(r"\033\[[0-9;]*m", "", line))
    if visible <= width:
        return line
    plain = re.sub(r"\033\[[0-9;]*m", "", line)
    return plain[: max(0, width - 1)] + "…"


def progress(job: dict[str, Any], now: datetime | None = None) -> tuple[float, str]:
    """How far a job is (0..1) and a short note: waiting time for delayed jobs, the job's own progress after."""
    state = job.get("state")
    if state == "completed":
        return 1.0, ""
    if state == "failed":
        error = job.get("error") or {}
        return job.get("progress", 0) / 100, str(error.get("message", error.get("type", "")))[:100]
    if state == "cancelled":
        return 0.0, "cancelled on request"
    if state in ("active", "retrying"):
        return max(0.1, job.get("progress", 0) / 100), f"attempt {job.get('attempts', 0)}/{job.get('max_attempts')}"
    run_at = job.get("run_at")
    if run_at:
        created, due = _instant(job["created_at"]), _instant(run_at)
        current = (now or datetime.now(due.tzinfo)).timestamp()
        total = max(1.0, due.timestamp() - created.timestamp())
        left = due.timestamp() - current
        if left > 0:
            return min(0.5, 0.5 * (current - created.timestamp()) / total), f"runs in {_duration(left)}"
    return 0.05, "waiting for a worker"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f}min"


# --- the tour ----------------------------------------------------------------------------------------
def run(
    url: str | None = None, key: str | None = None, *, timeout: float = 90, poll: float = 0.4, out: Any = None
) -> int:
    out = out or sys.stdout
    url, key = resolve(url, key)
    if not key:
        print(
            "conveyor demo: no API key. Start the stack with `make run` (it writes .local/stack.json), "
            "or pass --key / set CONVEYOR_API_KEY.",
            file=sys.stderr,
        )
        return 2
    client = Client(url, key)
    try:
        jobs = _enqueue(client)
        print(f"conveyor demo: {len(jobs)} jobs enqueued on {url}\n", file=out)
        _watch(client, jobs, Screen(out), timeout=timeout, poll=poll)
    except ApiError as exc:
        print(f"conveyor demo: {exc}", file=sys.stderr)
        return 1
    return _summary(jobs, out)


def _enqueue(client: Client) -> list[Tracked]:
    """Every sample job, enqueued; the ones meant to be cancelled, cancelled at once."""
    jobs = [Tracked(s, client.call("POST", "/v1/jobs", s.request)) for s in samples()]
    for tracked in jobs:
        if tracked.sample.cancel:
            tracked.job = client.call("POST", f"/v1/jobs/{tracked.job['id']}/cancel")
    return jobs


def _watch(client: Client, jobs: list[Tracked], screen: Screen, *, timeout: float, poll: float) -> None:
    """Poll every unsettled job and redraw, until all have settled or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        for tracked in jobs:
            if tracked.job.get("state") not in SETTLED:
                tracked.job = client.call("GET", f"/v1/jobs/{tracked.job['id']}")
            if tracked.job.get("state") in SETTLED and tracked.settled_after is None:
                tracked.settled_after = time.monotonic() - tracked.started
        screen.draw(jobs)
        if all(t.job.get("state") in SETTLED for t in jobs) or time.monotonic() > deadline:
            return
        time.sleep(poll)


def _summary(jobs: list[Tracked], out: Any) -> int:
    """The tally of final states; 0 when every job ended as its sample expects, else 1 naming the others."""
    counts = Counter(str(t.job.get("state", "?")) for t in jobs)
    unexpected = [t for t in jobs if t.job.get("state") != t.sample.expect]
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"\n{summary}.", file=out)
    if unexpected:
        print(
            "Not as expected: "
            + "; ".join(f"{t.sample.label}: {t.job.get('state')} (expected {t.sample.expect})" for t in unexpected),
            file=out,
        )
        return 1
    print(
        "Every job ended as expected (the failure is on purpose). The emails are in the stack's outbox "
        "(.local/outbox/<job-id>.eml).",
        file=out,
    )
    return 0

"""Local stack throughput: a burst of email jobs through `make run`, enqueue -> completed.

The runner is started exactly as `make run` starts it (the `conveyor-local` console script), on free ports with
its state under .bench/local; the jobs are POSTed over real HTTP by a few client threads, as fast as it
accepts them; completion is read from the stack's embedded emulator (as `aws --endpoint-url` would) once a
second. Jobs per second = jobs / (last job completed - first request sent).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.world import ROOT, say

EMAIL = {
    "type": "email.send",
    "payload": {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}},
}
CLIENTS = 4
START_TIMEOUT = 60
SETTLE_TIMEOUT = 900


def available() -> bool:
    return (ROOT / "local" / "conveyor_local" / "__main__.py").exists()


def _command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "conveyor-local")  # what `make run` runs
    return [script] if os.path.exists(script) else [sys.executable, "-m", "conveyor_local"]


def run(*, jobs: int = 2000, log: Any = say) -> dict[str, Any]:
    if not available():
        return {"pending": "the local runner (`make run`, local/conveyor_local/__main__.py) is not on this branch yet"}
    state = ROOT / ".bench" / "local"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [
        *_command(),
        "--template",
        str(ROOT / "template.yaml"),
        "--port",
        "0",
        "--emulator-port",
        "0",
        "--state-dir",
        str(state),
    ]
    log(f"throughput: {' '.join(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in command)}")
    started = time.monotonic()
    with (state / "stack.log").open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        info = _wait_ready(process, state, started)
        startup = time.monotonic() - started
        log(f"  ready in {startup:.1f} s at {info['url']}; {jobs} jobs from {CLIENTS} client threads")
        cpu_before, wall_before = _cpu_seconds(process.pid), time.monotonic()
        figures = _burst(info, jobs, log)
        cpu = _cpu_seconds(process.pid) - cpu_before
        figures["startup_seconds"] = round(startup, 1)
        if cpu >= 0:  # cores the stack and its emulator kept busy (each process's interpreter: 1 core at most)
            figures["stack_cpu_cores_busy"] = round(cpu / (time.monotonic() - wall_before), 2)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the runner lets in-flight batches finish
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return figures


def _wait_ready(process: subprocess.Popen[bytes], state: Any, started: float) -> dict[str, Any]:
    state_file = state / "stack.json"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}: see {state / 'stack.log'}")
        if time.monotonic() - started > START_TIMEOUT:
            raise RuntimeError(f"the local stack did not start within {START_TIMEOUT} s")
        try:
            return json.loads(state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):  # not there yet, or being written
            time.sleep(0.1)


def _burst(info: dict[str, Any], jobs: int, log: Any) -> dict[str, Any]:
    import boto3

    body = json.dumps(EMAIL).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {info['api_key']}"}
    rejected: list[int] = []
    lock = threading.Lock()

    def post(_: int) -> None:
        request = urllib.request.Request(info["url"] + "/v1/jobs", data=body, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the local stack
            if response.status != 202:
                with lock:
                    rejected.append(response.status)

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=info["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = info["resources"]["JobsTable"]
    first = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, range(jobs)))
    enqueued = time.monotonic()
    log(f"  {jobs} accepted in {enqueued - first:.1f} s ({jobs / (enqueued - first):.0f}/s); waiting for completion")
    completed = 0
    while completed < jobs:
        if time.monotonic() - enqueued > SETTLE_TIMEOUT:
            raise RuntimeError(f"only {completed} of {jobs} jobs completed within {SETTLE_TIMEOUT} s")
        time.sleep(1)
        completed = _count(ddb, table, "completed")
    done = time.monotonic()
    latencies = _latencies(ddb, table)
    total = done - first
    log(f"  all completed {total:.1f} s after the first request: {jobs / total:.1f} jobs/s")
    return {
        "jobs": jobs,
        "client_threads": CLIENTS,
        "rejected": len(rejected),
        "enqueue_seconds": round(enqueued - first, 1),
        "enqueue_per_second": round(jobs / (enqueued - first), 1),
        "drain_seconds_after_last_enqueue": round(done - enqueued, 1),
        "total_seconds": round(total, 1),
        "jobs_per_second": round(jobs / total, 1),
        "latency_p50_seconds": round(statistics.median(latencies), 1),
        "latency_p95_seconds": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 1),
        "completion_poll_interval_seconds": 1,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its child processes (the emulator's; Linux /proc; -1 elsewhere)."""
    try:
        stats = {int(d.name): _stat(d) for d in Path("/proc").iterdir() if d.name.isdigit()}
    except OSError:
        return -1.0
    if stats.get(pid) is None:
        return -1.0
    ticks = 0
    for found in stats.values():
        if found is not None and pid in (found[0], found[1]):  # itself (ppid placeholder) or a child
            ticks += found[2]
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(process: Path) -> tuple[int, int, int] | None:
    """(pid, parent pid, user + system ticks) of one /proc entry; None if it is gone or unreadable."""
    try:
        fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
        return int(process.name), int(fields[1]), int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def _count(ddb: Any, table: str, state: str) -> int:
    total = 0
    for page in ddb.get_paginator("scan").paginate(
        TableName=table,
        Select="COUNT",
        FilterExpression="#s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": state}},
    ):
        total += page["Count"]
    return total


def _latencies(ddb: Any, table: str) -> list[float]:
    """Seconds from accepted (created_at) to completed (finished_at), per job."""
    found = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="created_at, finished_at"):
        for item in page["Items"]:
            if "finished_at" in item:
                created, finished = (datetime.fromisoformat(item[k]["S"]) for k in ("created_at", "finished_at"))
                found.append((finished - created).total_seconds())
    return found or [0.0]

"""The local stack (`python -m conveyor_local`, what `make run` starts) in a subprocess on free ports, driven over
real HTTP, with its embedded emulator reachable for looking inside (as `aws --endpoint-url` would)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0  # a deadline, not a wait: a loaded 2-core CI machine can take a minute to import and provision
SETTLED = ("completed", "failed", "cancelled")


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    state_dir: Path
    log_path: Path
    info: dict[str, Any]

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def key(self) -> str:
        return self.info["api_key"]

    @property
    def outbox(self) -> Path:
        return Path(self.info["outbox"])

    def resource(self, logical_id: str) -> str:
        return self.info["resources"][logical_id]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # --- HTTP --------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, key: str | None = "default") -> Response:
        headers = {"Content-Type": "application/json"}
        token = self.key if key == "default" else key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the stack under test
                return Response(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read())

    def enqueue(self, job: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", "/v1/jobs", job)
        assert response.status == 202, response.body
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1/jobs/{job_id}")
        assert response.status == 200, response.body
        return response.json()

    def wait_for_job(self, job_id: str, states: tuple[str, ...] = SETTLED, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["state"] in states else None

        return wait_until(reached, timeout, f"job {job_id} to reach {states}")

    # --- the emulator ------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.info["endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    # --- stop --------------------------------------------------------------------------------------
    def stop(self, timeout: float = 60, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the stack did not stop within {timeout}s:\n{self.log()[-3000:]}") from None
        return self.process.returncode


def start_stack(template: Path, state_dir: Path, *extra: str) -> RunningStack:
    """Start `python -m conveyor_local` on free ports; return once its banner is out and stack.json written."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        "-m",
        "conveyor_local",
        "--template",
        str(template),
        "--port",
        "0",
        "--emulator-port",
        "0",
        "--state-dir",
        str(state_dir),
        "--access-log",
        "all",
        "--timeout-scale",
        "3",  # the suite loads 2 cores with stacks, browsers and workers: waits, not slowness, pass the Timeout
        *extra,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=state_dir, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    state_file = state_dir / "stack.json"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the stack exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        # stack.json is written just before the banner is printed: wait for both, so tests can read either.
        return state_file.exists() and "Conveyor is running" in log_path.read_text(errors="replace")

    try:
        wait_until(ready, START_TIMEOUT, "the local stack's banner")
    except AssertionError:
        process.kill()
        raise
    return RunningStack(process, state_dir, log_path, json.loads(state_file.read_text()))


def template_copy(directory: Path, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """template.yaml as JSON (valid SAM too), code paths made absolute so it runs from `directory`, then `change`d."""
    from samcli.yamlhelper import yaml_parse as loads

    doc = json.loads(json.dumps(loads((ROOT / "template.yaml").read_text())))
    for resource in doc["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = str(ROOT / props[key])
    if change is not None:
        change(doc)
    path = directory / "template.json"
    path.write_text(json.dumps(doc, indent=2))
    return path

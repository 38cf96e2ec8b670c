"""Driving the dashboard in a real browser: Playwright for Python with the system Chromium (Debian's `chromium`,
which `make test` installs when it is missing; Playwright cannot download its own builds here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local_stack_process import ROOT, RunningStack

CHROMIUM = Path(os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / ".local" / "screenshots"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def launch(playwright: Any) -> Any:
    """The system Chromium (Debian's), else Playwright's own build if `playwright install chromium` fetched it."""
    if CHROMIUM.exists():
        return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    if Path(playwright.chromium.executable_path).exists():
        return playwright.chromium.launch(args=CHROMIUM_ARGS)
    raise AssertionError(
        f"no Chromium at {CHROMIUM} and none of Playwright's: `make test` installs one (Debian's chromium as root, "
        "else `playwright install chromium`)"
    )


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, stack: RunningStack, key: str) -> None:
    """Paste the key into the sign-in form, as a person would."""
    page.goto(stack.url + "/dashboard/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.url + "/dashboard")


def csrf_of(page: Any) -> str:
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def page_wait_until(page: Any, check: Any, timeout: float, what: str) -> None:
    """Like wait_until, but waiting inside Playwright, so the page's events (requests...) are delivered."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        page.wait_for_timeout(100)


def no_horizontal_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


# --- keys, as an operator makes them: the `conveyor keys` CLI against the stack's emulator ------------------
def _cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=stack.info["endpoint_url"],
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        API_KEYS_TABLE=stack.resource("ApiKeysTable"),
    )
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "keys", *args], env=env, capture_output=True, text=True, check=True
    )


def create_key(stack: RunningStack, tenant: str, scopes: str) -> str:
    return _cli(stack, "create", "--tenant", tenant, "--scopes", scopes).stdout.strip()


def revoke_key(stack: RunningStack, key: str) -> None:
    _cli(stack, "revoke", key)


def banner_signin_link(stack: RunningStack) -> str:
    found = re.search(r"(http://\S+/dashboard/signin/link\?token=\S+)", stack.log())
    assert found, stack.log()[-2000:]
    return found.group(1)


def enqueue(stack: RunningStack, job: dict[str, Any], *, key: str | None = None, **headers: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the stack under test
        stack.url + "/v1/jobs",
        data=json.dumps(job).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key or stack.key}", **headers},
    )
    # 30 s, API Gateway's own limit: a fresh stack's first POST imports the jobs routes, slow on a loaded machine.
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())

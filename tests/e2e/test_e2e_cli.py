"""`conveyor` against a running local stack, as a new user runs it: no environment variables, no flags beyond the
state file `make run` wrote (here the test stack's), readable output, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from local_stack_process import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]


def conveyor(stack: RunningStack, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONVEYOR_", "API_KEYS_TABLE"))}
    state = str(stack.state_dir / "stack.json")
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "conveyor.cli", *args, "--stack-file", state],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_keys_create_works_against_make_run_with_no_setup(local_stack: RunningStack) -> None:
    # When an operator mints a key on a fresh local stack
    created = conveyor(local_stack, "keys", "create", "--tenant", "ops", "--scopes", "admin,platform")
    key = ok(created).strip()
    # Then it is printed once, and it works against the API
    assert key.startswith("cvk_") and "shown only this once" in created.stderr
    listed = json.loads(ok(conveyor(local_stack, "keys", "list", "--tenant", "ops", "--json")))
    assert [item["tenant_id"] for item in listed["items"]] == ["ops"] and key not in json.dumps(listed)
    assert ok(conveyor(local_stack, "queues", "--key", key))


def test_enqueue_then_watch_shows_the_job_complete(local_stack: RunningStack) -> None:
    payload = json.dumps({"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}})
    enqueued = json.loads(ok(conveyor(local_stack, "jobs", "enqueue", "email.send", "--payload", payload, "--json")))
    assert enqueued["state"] in ("queued", "active", "completed")

    watched = ok(conveyor(local_stack, "jobs", "watch", enqueued["id"], "--timeout", "60"))

    assert enqueued["id"] in watched and watched.strip().splitlines()[-1].split()[2] == "completed"
    listed: Any = json.loads(ok(conveyor(local_stack, "jobs", "list", "--type", "email.send", "--json")))
    assert enqueued["id"] in [job["id"] for job in listed["items"]]


def test_queues_prints_the_table(local_stack: RunningStack) -> None:
    table = ok(conveyor(local_stack, "queues"))
    header, *rows = table.strip().splitlines()
    assert header.split()[:2] == ["QUEUE", "STATE"]
    assert {row.split()[0] for row in rows} >= {"email", "notifications", "webhooks"}


def test_dead_letters_can_be_peeked_and_redriven(local_stack: RunningStack) -> None:
    assert json.loads(ok(conveyor(local_stack, "dlq", "peek", "email", "--json")))["queue"] == "email"
    assert "moved" in ok(conveyor(local_stack, "dlq", "redrive", "email"))


def test_errors_are_one_line_and_a_nonzero_exit(local_stack: RunningStack) -> None:
    missing = conveyor(local_stack, "jobs", "get", "job_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    bad_payload = conveyor(local_stack, "jobs", "enqueue", "email.send", "--payload", "{not json")
    invalid = conveyor(local_stack, "jobs", "enqueue", "email.send", "--payload", '{"to": []}')
    wrong_key = conveyor(local_stack, "queues", "--key", "cvk_nope")
    for result, words in ((missing, "not_found"), (bad_payload, "not JSON"), (invalid, "validation_error"),
                          (wrong_key, "HTTP 401")):  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_webhooks_subscribe_list_test_and_read_the_delivery_log(local_stack: RunningStack) -> None:
    inbox = local_stack.url + "/_local/webhook-inbox"
    created = conveyor(local_stack, "webhooks", "create", inbox, "--events", "job.*")
    subscription = ok(created).split()[0]
    assert subscription.startswith("whk_") and "whsec_" in created.stderr  # the secret, once

    assert subscription in ok(conveyor(local_stack, "webhooks", "list"))
    sent = json.loads(ok(conveyor(local_stack, "webhooks", "test", subscription, "--json")))
    log = json.loads(ok(conveyor(local_stack, "webhooks", "deliveries", subscription, "--json")))
    assert sent["id"] in [delivery["id"] for delivery in log["items"]]

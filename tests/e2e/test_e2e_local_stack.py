"""The local stack from the outside: real HTTP in, emails in the outbox, jobs through queues, stream and schedule."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from local_stack_process import RunningStack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]  # one stack for this file's tests


def welcome(to: str, **extra: object) -> dict[str, object]:
    return {"type": "email.send", **extra, "payload": {"to": [to], "template": "welcome", "context": {"name": "Ada"}}}


def test_banner_curl_enqueues_an_email_that_completes_with_its_eml(local_stack: RunningStack) -> None:
    # Given the banner a developer sees after `make run`
    banner = local_stack.log()
    assert local_stack.url in banner and local_stack.key in banner
    commands = re.findall(r"^\s+(curl .+)$", banner, re.MULTILINE)
    assert len(commands) == 3, banner

    # When they paste its first curl command
    output = subprocess.run(
        ["bash", "-c", commands[0]],  # the banner is the input under test
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    job_id = re.search(r'"id":"(job_[0-9A-Z]+)"', output.stdout).group(1)

    # Then the job completes (its speed is make bench's to measure) and its email is in the outbox, as addressed
    job = local_stack.wait_for_job(job_id, timeout=30)
    assert job["state"] == "completed", job
    eml = wait_until(lambda: (local_stack.outbox / f"{job_id}.eml").exists(), 10, "the .eml") and (
        local_stack.outbox / f"{job_id}.eml"
    )
    email = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert email["To"] == "ada@example.com"
    assert email["X-SES-Tag-job_id"] == job_id
    assert "Welcome to Riverside Clinic" in email["Subject"]
    assert email.get_body(("plain",)).get_content().startswith("Hello Ada")
    assert email.get_body(("html",)) is not None


def test_a_job_that_fails_permanently_is_failed_at_once_with_its_reason(local_stack: RunningStack) -> None:
    # Given a reminder whose template needs a value the job does not give
    job = local_stack.enqueue(
        {
            "type": "email.send",
            "payload": {"to": ["bob@example.com"], "template": "appointment-reminder", "context": {"name": "Bob"}},
        }
    )

    # When the worker runs it
    settled = local_stack.wait_for_job(job["id"])

    # Then it failed on its first attempt, says why, and sent nothing
    assert settled["state"] == "failed"
    assert settled["attempts"] == 1
    assert "needs a context value" in settled["error"]["message"]
    assert not list(local_stack.outbox.glob(f"{job['id']}*.eml"))


def test_a_job_delayed_past_15_minutes_is_released_by_the_schedule_exactly_once(local_stack: RunningStack) -> None:
    # Given a job delayed by 20 minutes: beyond SQS's 15-minute delay, so it waits in the table as `scheduled`
    job = local_stack.enqueue(welcome("later@example.com", delay_seconds=1200))
    assert job["state"] == "scheduled"
    time.sleep(2.5)  # the schedule fires every second: it must leave a job that is not due alone
    assert local_stack.job(job["id"])["state"] == "scheduled"

    # When its time comes (moved to the past in the emulator's table, as 20 minutes of waiting would)
    past = datetime.now(UTC).replace(microsecond=0)
    local_stack.client("dynamodb").update_item(
        TableName=local_stack.resource("JobsTable"),
        Key={"tenant_id": {"S": "demo"}, "sk": {"S": job["id"]}},
        UpdateExpression="SET due_at = :due, run_at = :run",
        ConditionExpression="#state = :scheduled",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            ":due": {"N": str(int(past.timestamp()) - 1)},
            ":run": {"S": past.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
            ":scheduled": {"S": "scheduled"},
        },
    )

    # Then the next firing releases it, it runs, and later firings leave it alone
    done = local_stack.wait_for_job(job["id"], timeout=30)
    assert done["state"] == "completed"
    time.sleep(2.5)  # more firings
    final = local_stack.job(job["id"])
    releases = [e for e in final["timeline"] if e["note"] == "released by scheduler"]
    assert len(releases) == 1, final["timeline"]
    assert final["attempts"] == 1 and final["state"] == "completed"
    assert len(list(local_stack.outbox.glob(f"{job['id']}*.eml"))) == 1


def test_every_queue_is_mapped_in_the_emulators_own_process_so_pause_and_resume_work(
    local_stack: RunningStack,
) -> None:
    # The emulator runs in a process of its own: the stack still registers the worker's mappings there (moto's
    # own delivery is off in that process), so every queue reports its mapping's state; unregistered, it is null
    overview = local_stack.request("GET", "/v1/queues")

    assert overview.status == 200
    states = {q["name"]: (q["mapping_state"], q["paused"]) for q in overview.json()["queues"]}
    assert len(states) == 6 and set(states.values()) == {("Enabled", False)}, states
    assert "pause/resume is off" not in local_stack.log()


def test_requests_go_through_the_authorizer_first(local_stack: RunningStack) -> None:
    # Given no key, a wrong key, and a public route
    missing = local_stack.request("GET", "/v1/jobs", key=None)
    wrong = local_stack.request("GET", "/v1/jobs", key="cvk_" + "a" * 52)
    health = local_stack.request("GET", "/health", key=None)

    # Then the gateway refuses a request without the identity header itself; the authorizer's verdict on an
    # unknown key reaches the API, which answers in its own error format; public routes need no key
    assert missing.status == 401 and missing.json() == {"message": "Unauthorized"}
    assert wrong.status == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert health.status == 200 and health.json() == {"status": "ok"}
    assert local_stack.request("GET", "/nowhere").status == 404


def test_conveyor_demo_enqueues_a_mix_and_reports_every_job_settled_as_expected(local_stack: RunningStack) -> None:
    # When a developer runs `conveyor demo` against the running stack
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor.cli",
            "demo",
            "--url",
            local_stack.url,  # noqa: S603
            "--key",
            local_stack.key,
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then every sample job settled the way it was meant to: delivered, failed on purpose, or cancelled
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "1 cancelled, 5 completed, 1 failed." in demo.stdout
    assert "Every job ended as expected" in demo.stdout
    assert re.search(r"reminder missing a value \(fails\) .*failed .*needs a context value", demo.stdout)

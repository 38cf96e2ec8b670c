"""Every events/*.json through `conveyor-local invoke` (the no-Docker `sam local invoke`), against an emulator
holding the sample records: each sample does what the README says it shows (the job read, the 422 body, the job
completed and its email written, the reminder queued...), and the command's exit status tells a failure.

One emulator (moto_server, a process of its own) for the file, reset before each test; each invoke is a real
`python -m conveyor_local invoke` process. tests/integration/test_sample_events.py runs the same files in-process.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local_stack_process import ROOT, wait_until

from conveyor_local.seed import FAILED_JOB_ID, SAMPLE_APPOINTMENT, SAMPLE_JOB_ID, SAMPLE_SCOPES, SAMPLE_WEBHOOK, TENANT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sample-events")]  # one emulator for this file's tests
EVENTS = sorted((ROOT / "events").glob("*.json"))


@dataclass
class Invoked:
    rc: int
    response: Any  # the JSON line on stdout
    stderr: str


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def invoke(*args: str, state_dir: Path, stdin: str | None = None, cwd: Path = ROOT) -> Invoked:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "conveyor_local", "invoke", *args, "--state-dir", str(state_dir)],
        cwd=cwd,
        env=_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be the response alone:\n{done.stdout}\n{done.stderr[-3000:]}"
    return Invoked(done.returncode, json.loads(lines[0]), done.stderr)


@dataclass
class Emulator:
    url: str
    state_dir: Path

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST"), timeout=10)  # noqa: S310

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def invoke(self, function: str, event: Path | dict[str, Any], *extra: str) -> Invoked:
        if isinstance(event, Path):
            return invoke("--endpoint-url", self.url, *extra, function, "-e", str(event), state_dir=self.state_dir)
        return invoke(
            "--endpoint-url", self.url, *extra, function, "-e", "-", state_dir=self.state_dir, stdin=json.dumps(event)
        )

    def get(self, path: str) -> dict[str, Any]:
        """GET a path of the API as the sample tenant, through the API function (the sample's own shape)."""
        event = json.loads((ROOT / "events" / "api-get-job.json").read_text())
        event.update(rawPath=path, routeKey=f"GET {path}", pathParameters={})
        event["requestContext"].update(routeKey=f"GET {path}")
        event["requestContext"]["http"]["path"] = path
        event["requestContext"]["authorizer"]["lambda"]["scopes"] = ",".join(sorted(SAMPLE_SCOPES))
        done = self.invoke("ApiFunction", event)
        assert done.rc == 0 and done.response["statusCode"] == 200, done
        return json.loads(done.response["body"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)  # noqa: S310
        except OSError:
            return False
        return True

    try:
        wait_until(answers, 30, "moto_server")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def emulator(emulator_process: str, tmp_path: Path) -> Emulator:
    found = Emulator(emulator_process, tmp_path)
    found.reset()
    return found


def _body(done: Invoked) -> Any:
    return json.loads(done.response["body"])


# --- what each sample shows (the README's table says the same) ----------------------------------------------------
def _enqueue_email(done: Invoked, emulator: Emulator) -> None:
    assert done.response["statusCode"] == 202
    job = _body(done)
    assert (job["type"], job["state"], job["payload"]["to"]) == ("email.send", "queued", ["ann@example.com"])


def _enqueue_invalid(done: Invoked, emulator: Emulator) -> None:
    assert done.response["statusCode"] == 422
    error = _body(done)["error"]
    assert error["code"] == "validation_error"
    assert any(d["loc"][:3] == ["body", "payload", "to"] for d in error["details"]), error


def _get_job(done: Invoked, emulator: Emulator) -> None:
    assert done.response["statusCode"] == 200
    job = _body(done)
    assert (job["id"], job["state"], job["attempts"]) == (SAMPLE_JOB_ID, "retrying", 1)
    assert job["error"]["type"] == "TransientError"


def _health(done: Invoked, emulator: Emulator) -> None:
    assert (done.response["statusCode"], _body(done)) == (200, {"status": "ok"})


def _list_failed_jobs(done: Invoked, emulator: Emulator) -> None:
    assert done.response["statusCode"] == 200
    items = _body(done)["items"]
    assert [(j["id"], j["state"]) for j in items] == [(FAILED_JOB_ID, "failed")]


def _authorized(done: Invoked, emulator: Emulator) -> None:
    assert done.response["isAuthorized"] is True
    context = done.response["context"]
    assert (context["authenticated"], context["tenant_id"], context["key_id"]) == (True, TENANT, "sampleevents")


def _unknown_key(done: Invoked, emulator: Emulator) -> None:
    # authorized at the gateway, but not authenticated: the API function answers 401 in its own error format
    assert done.response == {"isAuthorized": True, "context": {"authenticated": False}}


def _dispatched(done: Invoked, emulator: Emulator) -> None:
    assert done.response == {"batchItemFailures": []}
    sqs = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName="conveyor-EmailQueue")["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert json.loads(message["Body"]) == {"tenant_id": TENANT, "job_id": SAMPLE_JOB_ID, "type": "email.send"}


def _reminder_queued(done: Invoked, emulator: Emulator) -> None:
    assert done.response["sweep_reminders"] == 1, done.response
    reminders = emulator.get(f"/v1/appointments/{SAMPLE_APPOINTMENT}/reminders")
    items = reminders["items"] if isinstance(reminders, dict) else reminders
    assert [r["state"] for r in items if r["state"] != "cancelled"] == ["queued"], items


def _job_completed(done: Invoked, emulator: Emulator) -> None:
    assert done.response == {"batchItemFailures": []}  # the unreadable second record is dropped, not retried
    assert "unreadable message dropped" in done.stderr
    job = emulator.get(f"/v1/jobs/{SAMPLE_JOB_ID}")
    assert (job["state"], job["attempts"]) == ("completed", 2)
    email = (emulator.state_dir / "outbox" / f"{SAMPLE_JOB_ID}.eml").read_text()
    assert "To: ann@example.com" in email


def _announced(done: Invoked, emulator: Emulator) -> None:
    # the completed job became one job.completed delivery to the seeded subscription (the local webhook inbox)
    assert done.response == {"batchItemFailures": []}
    [subscription] = [s for s in emulator.get("/v1/webhooks")["items"] if s["description"] == SAMPLE_WEBHOOK]
    assert subscription["url"].endswith("/_local/webhook-inbox")
    [delivery] = emulator.get(f"/v1/webhooks/{subscription['id']}/deliveries")["items"]
    assert (delivery["event_type"], delivery["status"]) == ("job.completed", "pending")


OUTCOMES: dict[str, Callable[[Invoked, Emulator], None]] = {
    "api-enqueue-email": _enqueue_email,
    "api-enqueue-invalid": _enqueue_invalid,
    "api-get-job": _get_job,
    "api-health": _health,
    "api-list-jobs": _list_failed_jobs,
    "authorizer-request": _authorized,
    "authorizer-unknown-key": _unknown_key,
    "dispatcher-queued-insert": _dispatched,
    "events-job-completed": _announced,
    "scheduler-minute": _reminder_queued,
    "worker-email-batch": _job_completed,
}


@pytest.mark.parametrize("event_file", EVENTS, ids=lambda p: p.stem)
def test_each_sample_does_what_it_is_documented_to_do(emulator: Emulator, event_file: Path) -> None:
    # Given the sample records (seeded) and the sample's function, named by its file's prefix
    assert event_file.stem in OUTCOMES, f"{event_file.name}: say what it shows, here and in README"
    function = event_file.stem.split("-", 1)[0]

    # When it is invoked without Docker
    done = emulator.invoke(function, event_file, "--seed")

    # Then it exits 0 and did its work
    assert done.rc == 0, done
    OUTCOMES[event_file.stem](done, emulator)


def test_every_sample_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Test a function with `sam local invoke`", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z]+-[a-z0-9-]+)\.json`", section))
    assert listed >= {p.stem for p in EVENTS}, sorted({p.stem for p in EVENTS} - listed)


def test_an_embedded_emulator_is_seeded_when_no_stack_runs(tmp_path: Path) -> None:
    # Given no running stack in the state dir: When a sample is invoked
    done = invoke("api", "-e", str(ROOT / "events" / "api-get-job.json"), state_dir=tmp_path)

    # Then its own emulator held the sample job
    assert done.rc == 0 and done.response["statusCode"] == 200, done
    assert _body(done)["id"] == SAMPLE_JOB_ID
    assert "against an embedded emulator" in done.stderr


# --- exit status: a handler that raises, a batch that reports failures -------------------------------------------
HANDLERS = """
def raises(event, context):
    raise ValueError("boom: " + event["why"])

def partial(event, context):
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]}
"""


@pytest.fixture
def tiny_template(tmp_path: Path) -> Path:
    code = tmp_path / "functions" / "tiny"
    code.mkdir(parents=True)
    (code / "tiny_handlers.py").write_text(textwrap.dedent(HANDLERS))
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            name: {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/tiny",
                    "Handler": f"tiny_handlers.{handler}",
                    "Runtime": "python3.13",
                },
            }
            for name, handler in (("RaisingFunction", "raises"), ("PartialFunction", "partial"))
        },
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    return path


def test_a_handler_that_raises_exits_1_with_the_error_in_lambdas_shape(tiny_template: Path) -> None:
    done = invoke(
        "--template", str(tiny_template), "--no-seed", "RaisingFunction", "-e", "-",
        state_dir=tiny_template.parent / ".local", stdin='{"why": "sample"}',
    )  # fmt: skip

    assert done.rc == 1
    assert (done.response["errorType"], done.response["errorMessage"]) == ("ValueError", "boom: sample")
    assert done.response["stackTrace"]


def test_a_batch_response_with_failed_records_exits_3(tiny_template: Path) -> None:
    records = [{"messageId": "m1", "body": "good"}, {"messageId": "m2", "body": "bad"}]

    done = invoke(
        "--template", str(tiny_template), "--no-seed", "PartialFunction", "-e", "-",
        state_dir=tiny_template.parent / ".local", stdin=json.dumps({"Records": records}),
    )  # fmt: skip

    assert done.rc == 3
    assert done.response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}

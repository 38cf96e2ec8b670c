"""A fresh function imports what it serves on first use (a capability's routes on the first request for them), and
still does everything a warm one does (hooks that capabilities register with lower ones are loaded before use)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor.capabilities import CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "events" / "api-get-job.json").read_text())  # GET /v1/jobs/{job_id}, authorized

# A fresh function (the API unless named) in a fresh interpreter: a moto world from template.yaml, the handler
# imported (its cold start), then the scenario, which records what it saw in `out` (printed as JSON).
PRELUDE = """
import json, sys
from pathlib import Path
from moto import mock_aws

root, out = Path(sys.argv[1]), {}
with mock_aws():
    from conveyor_local.lambdas import load_handler
    from conveyor_local.stack import Stack

    stack = Stack(root / "template.yaml").provision()
    load_handler(stack.functions[sys.argv[2]])
    out["cold_start"] = sorted(m for m in sys.modules if m.startswith("conveyor."))
"""
GET_A_JOB = """
response = stack.invoke("ApiFunction", json.loads((root / "events" / "api-get-job.json").read_text()))
out["response"] = response
out["after"] = sorted(m for m in sys.modules if m.startswith("conveyor."))
"""
# A contact moves to another time zone, in an API instance that has served no reminders request (the schedule was
# made through another instance: here written straight to reminders' storage).
CONTACT_MOVES = """
from datetime import UTC, datetime, timedelta
from conveyor.platform.auth import keys
from conveyor.reminders import repository
from conveyor.reminders.domain import Medication

key, _ = keys.create("tenant-a", {"reminders:read", "reminders:write"})

def call(method, path, body=None):
    headers = {"authorization": "Bearer " + key, "content-type": "application/json"}
    response = stack.gateway.handle(method, path, headers, json.dumps(body).encode() if body else b"")
    return response.json()

contact = {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London", "channels": ["email"]}
call("PUT", "/v1/contacts/c1", contact)
now, tomorrow = datetime.now(UTC), (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
seeded = Medication(
    tenant_id="tenant-a", id="m1", contact_id="c1", medication="Carprofen", dose="1 chew", start_date=tomorrow,
    end_date=tomorrow, times_of_day=("08:00",), timezone="Europe/London", revision=1, fingerprint="seeded",
    horizon_end=now, created_at=now, updated_at=now,
)
assert repository.put_medication(seeded, replaces=None)
out["reminders_routes"] = "conveyor.reminders.api" in sys.modules
call("PUT", "/v1/contacts/c1", {**contact, "timezone": "America/New_York"})
out["schedule"] = call("GET", "/v1/medication-schedules/m1")
"""

# The same move from a CRM, in a fresh worker running a sync job (notify.sync_contacts, as conveyor.sync.jobs does).
CRM_CONTACT_MOVES = """
from datetime import UTC, datetime, timedelta
from conveyor import notify
from conveyor.reminders import repository
from conveyor.reminders.domain import Medication

def crm(timezone, at):
    return notify.SourcedContact(id="c1", source="hubspot", updated_at=at, name="Ada", timezone=timezone)

now, tomorrow = datetime.now(UTC), (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
notify.sync_contacts("tenant-a", [crm("Europe/London", now - timedelta(minutes=2))])
seeded = Medication(
    tenant_id="tenant-a", id="m1", contact_id="c1", medication="Carprofen", dose="1 chew", start_date=tomorrow,
    end_date=tomorrow, times_of_day=("08:00",), timezone="Europe/London", revision=1, fingerprint="seeded",
    horizon_end=now, created_at=now, updated_at=now,
)
assert repository.put_medication(seeded, replaces=None)
notify.sync_contacts("tenant-a", [crm("America/New_York", now - timedelta(minutes=1))])
out["timezone"] = repository.get_medication("tenant-a", "m1").timezone
"""


def _fresh(scenario: str, function: str = "ApiFunction") -> dict[str, Any]:
    code = PRELUDE + textwrap.indent(scenario, "    ") + "print(json.dumps(out, default=str))\n"
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), function], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def fresh() -> dict[str, Any]:
    return _fresh(GET_A_JOB)


def _router_module(capability: Any) -> str:
    return str(capability.router).partition(":")[0]


def test_the_cold_start_imports_no_capabilitys_routes(fresh: dict[str, Any]) -> None:
    routes = {_router_module(c) for c in CAPABILITIES if c.router}
    assert routes.isdisjoint(fresh["cold_start"]), sorted(routes & set(fresh["cold_start"]))
    assert not [m for m in fresh["cold_start"] if m.startswith("conveyor.dashboard")]


def test_a_jobs_request_imports_the_routes_under_jobs_and_no_others(fresh: dict[str, Any]) -> None:
    # Given a fresh API function, When it serves GET /v1/jobs/{job_id} (the job does not exist)
    assert fresh["response"]["statusCode"] == 404
    assert json.loads(fresh["response"]["body"])["error"]["message"].startswith("job ")  # the jobs route answered
    # Then the routers serving /v1/jobs (jobs, and admin's bulk operations) are imported...
    serving = {_router_module(c) for c in CAPABILITIES if "jobs" in c.segments}
    assert serving == {"conveyor.jobs.api", "conveyor.admin.routes"}
    assert serving <= set(fresh["after"])
    # ...and no other capability's routes (reports, CRM sync, webhooks, processes, reminders, notify)
    others = {_router_module(c) for c in CAPABILITIES if c.router and "jobs" not in c.segments}
    assert {"conveyor.reports.api", "conveyor.sync.api", "conveyor.notify.api"} <= others
    assert others.isdisjoint(fresh["after"]), sorted(others & set(fresh["after"]))


@pytest.mark.parametrize("path", ["/v1/no-such-thing", "/v1/no-such-thing/x", "/v1/", "/v1"])
def test_a_path_no_capability_serves_is_the_404_error(stack: Any, path: str) -> None:
    # Given an authorized request for a /v1 path under no capability's segments
    event = copy.deepcopy(SAMPLE)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /{proxy+}"
    event.pop("pathParameters")
    # When the API function gets it
    response = stack.invoke("ApiFunction", event)
    # Then it is the API's one 404 error
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"error": {"code": "not_found", "message": "no such route"}}


def test_a_contacts_new_time_zone_re_plans_their_schedules_in_an_instance_that_never_served_reminders() -> None:
    """Reminders follows contact changes (notify.on_contact_changed) through a hook registered by its job module;
    notify loads the job modules before telling listeners, so the hook is there in any fresh instance."""
    seen = _fresh(CONTACT_MOVES)
    assert seen["reminders_routes"] is False  # the instance has served no reminders route
    assert seen["schedule"]["timezone"] == "America/New_York", seen["schedule"]


def test_a_crm_contacts_new_time_zone_re_plans_their_schedules_in_a_fresh_worker() -> None:
    assert _fresh(CRM_CONTACT_MOVES, "WorkerFunction")["timezone"] == "America/New_York"


def test_a_fresh_worker_builds_only_the_sqs_parser_model(stack: Any) -> None:
    """Cold start: Powertools' batch utility is imported before pydantic (worker_handler), so it does not build the
    DynamoDB, Kinesis and Kafka parser models it would otherwise import for its type hints."""
    parser = "aws_lambda_powertools.utilities.parser.models."
    code = (
        "import sys, worker_handler; "
        f"built = sorted(m for m in sys.modules if m.startswith({parser!r})); "
        f"assert built == [{parser + 'sqs'!r}], built"
    )
    env = {  # the worker's environment as the template gives it
        **stack.functions["WorkerFunction"].environment,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": "layers/conveyor:functions/worker",
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)

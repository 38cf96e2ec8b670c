"""The API function imports a capability's routes on the first request for them, never at cold start."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.capabilities import CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "events" / "api-get-job.json").read_text())  # GET /v1/jobs/{job_id}, authorized

# In a fresh interpreter: a moto world from template.yaml, then the sample GET /v1/jobs/{job_id} through the API
# function (as the local gateway invokes it); which conveyor modules were imported, and when.
FRESH_PROCESS = """
import json, sys
from pathlib import Path
from moto import mock_aws

root = Path(sys.argv[1])
with mock_aws():
    from conveyor_local.lambdas import load_handler
    from conveyor_local.stack import Stack

    stack = Stack(root / "template.yaml").provision()
    load_handler(stack.functions["ApiFunction"])  # the cold start: the handler module imported
    at_cold_start = sorted(m for m in sys.modules if m.startswith("conveyor."))
    response = stack.invoke("ApiFunction", json.loads((root / "events" / "api-get-job.json").read_text()))
    after = sorted(m for m in sys.modules if m.startswith("conveyor."))
    print(json.dumps({"response": response, "cold_start": at_cold_start, "after": after}))
"""


@pytest.fixture(scope="module")
def fresh() -> dict[str, Any]:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(ROOT)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


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

"""`.local/env.json` (written by `make run`) aims every function of a `sam local invoke` at the emulator: the
environment SAM's own code builds from template.yaml and that file leaves no AWS client of the code on a real AWS
endpoint, and is a valid environment for each function (its settings load)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from local_stack_process import ROOT, RunningStack

from conveyor_local import env_json

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]  # the local_stack of test_e2e_local_stack

CLIENT_FACTORIES = ("client", "probe_client")


def services_the_code_uses() -> set[str]:
    """Every service named in a `client("...")` / `probe_client("...")` call in the layer and the handlers, and
    DynamoDB (PynamoDB's own client)."""
    found = {"dynamodb"}
    for path in [*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in CLIENT_FACTORIES and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def sam_environment(env_values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each function's container environment as `sam local invoke --env-vars` builds it (SAM CLI's own code)."""
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(ROOT / "template.yaml"))
    provider = SamFunctionProvider(stacks)
    runner = LocalLambdaRunner(
        local_runtime=None,  # type: ignore[arg-type] - only the environment is built, nothing is run
        function_provider=provider,
        cwd=str(ROOT),
        real_path=str(ROOT),
        env_vars_values=env_values,
    )
    return {function.name: runner._make_env_vars(function).resolve() for function in provider.get_all()}


PROBE = """
import json, os, sys
import boto3
from pynamodb.connection import Connection
from conveyor.platform import aws
from conveyor.platform.settings import load_settings

environments, services, base = json.loads(sys.stdin.read())
found = {}
for function, environment in environments.items():
    os.environ.clear()
    os.environ.update({**environment, **base})  # exactly the container's variables
    aws.client.cache_clear()
    aws.probe_client.cache_clear()
    load_settings()  # the function's environment is complete and valid
    endpoints = found[function] = {"pynamodb": Connection().client.meta.endpoint_url}
    for service in services:
        endpoints[service] = aws.client(service).meta.endpoint_url
    for service in ("dynamodb", "sqs"):
        endpoints[service + " (probe)"] = aws.probe_client(service).meta.endpoint_url
    endpoints["boto3 sqs"] = boto3.client("sqs").meta.endpoint_url
print(json.dumps(found))
"""


def test_every_aws_client_of_every_function_goes_to_the_emulator(local_stack: RunningStack, tmp_path: Path) -> None:
    # Given the env.json the running stack wrote, and what SAM makes of it for each function's container
    values = json.loads((local_stack.state_dir / env_json.FILE).read_text())
    endpoint = values["Parameters"]["AWS_ENDPOINT_URL"]
    assert endpoint == local_stack.info["container_endpoint"]
    assert endpoint.endswith(":" + local_stack.info["endpoint_url"].rsplit(":", 1)[1])
    services = sorted(services_the_code_uses())
    assert {"sqs", "sesv2", "sns", "lambda", "ssm", "secretsmanager"} <= set(services)
    environments = sam_environment(values)
    assert set(environments) == {k for k in values if k != "Parameters"}  # a section for every function

    # When each environment creates every client the code uses (PATH/HOME/PYTHONPATH as a container has them)
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "layers" / "conveyor")}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE],
        env=base,
        input=json.dumps([environments, services, base]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    # Then none is left on a real AWS endpoint
    found = json.loads(done.stdout)
    assert set(found) == set(environments)
    for function, endpoints in found.items():
        assert {name: url for name, url in endpoints.items() if url != endpoint} == {}, function
        assert environments[function]["AWS_ENDPOINT_URL"] == endpoint
        assert "amazonaws.com" not in environments[function].get("QUEUES", ""), function  # not every function has it


def test_the_template_declares_an_empty_endpoint_for_every_function() -> None:
    from conveyor_local.template import Template

    functions = Template(ROOT / "template.yaml").functions()

    assert functions and {name: spec.environment.get("AWS_ENDPOINT_URL") for name, spec in functions.items()} == {
        name: "" for name in functions
    }


def test_containers_reach_a_wildcard_emulator_on_the_bridge_and_a_specific_one_as_it_is() -> None:
    bridge = env_json.bridge_address()

    assert env_json.container_endpoint("0.0.0.0", 3001) == f"http://{bridge}:3001"  # noqa: S104
    assert env_json.container_endpoint("10.1.2.3", 3001) == "http://10.1.2.3:3001"
    assert env_json.reachable_from_containers("0.0.0.0")  # noqa: S104
    assert not env_json.reachable_from_containers("127.0.0.1")

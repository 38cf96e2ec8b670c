"""API overhead: our API handler against a bare handler doing the same single DynamoDB call with raw boto3.

Numerator: POST /v1/jobs and GET /v1/jobs/{id} through the emulated HTTP API (route match, the authorizer -
answered from its cache after the first request, as API Gateway does - the 2.0 event, the API function,
the 2.0 response), timed around the whole gateway call. Denominator: a bare handler given the same 2.0 event
that parses it, does the same PutItem (the very item the API stored, under a fresh key) or GetItem with a boto3
client, and returns a 2.0 response. Requests alternate (ours, bare, ours, bare...) so noise hits both alike;
the figures are p50 and p95 of each and their ratios. Items created are deleted between requests (untimed), since
moto's writes get slower as a partition grows and that would flatter the ratio.
"""

from __future__ import annotations

import copy
import gc
import json
import statistics
import time
from typing import Any

from bench.world import api_key, moto_stack, quiet_functions, say

BUDGET = 1.5
EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann", "practice_name": "Oak Vets"}}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(*, requests: int = 400, warmup: int = 30, log: Any = say) -> dict[str, Any]:
    import boto3

    import conveyor_local.stack as stack_module

    log(f"api overhead: {requests} requests per route, alternating with a bare boto3 handler")
    with moto_stack() as stack, quiet_functions():
        table = next(iter(stack.functions.values())).environment["JOBS_TABLE"]
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        seen: dict[str, dict[str, Any]] = {}
        real_invoke = stack_module.invoke

        def capture(spec: Any, event: dict[str, Any]) -> Any:
            if spec.logical_id != "AuthorizerFunction" and event["routeKey"] not in seen:
                seen[event["routeKey"]] = copy.deepcopy(event)  # the bare handler's event: one copy, taken once
            return real_invoke(spec, event)

        stack_module.invoke = capture
        headers = {"content-type": "application/json", "authorization": f"Bearer {api_key()}"}
        body = json.dumps({"type": "email.send", "payload": EMAIL}).encode()

        def post() -> Any:
            return stack.gateway.handle("POST", "/v1/jobs", headers, body)

        first = post()
        assert first.status == 202, first.body
        job_id = first.json()["id"]
        stored = ddb.scan(TableName=table, Limit=1)["Items"][0]

        def get() -> Any:
            return stack.gateway.handle("GET", f"/v1/jobs/{job_id}", headers)

        assert get().status == 200
        counter = iter(range(10**9))

        def bare_put(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
            request = json.loads(event["body"])
            item = dict(stored, sk={"S": f"job_bare{next(counter):020d}"})
            ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(sk)")
            return {
                "statusCode": 202,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"id": item["sk"]["S"], "type": request["type"]}),
            }

        def bare_get(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
            key = {"tenant_id": stored["tenant_id"], "sk": {"S": event["pathParameters"]["job_id"]}}
            item = ddb.get_item(TableName=table, Key=key).get("Item")
            return {
                "statusCode": 200 if item else 404,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(item),
            }

        routes = {
            "POST /v1/jobs": (post, bare_put, seen["POST /v1/jobs"]),
            "GET /v1/jobs/{job_id}": (get, bare_get, seen["GET /v1/jobs/{job_id}"]),
        }
        results = {}
        # moto keeps its tables in this process (a Lambda's heap holds none of that): freeze what exists so the
        # collector does not rescan the emulator's state inside a timing.
        gc.collect()
        gc.freeze()
        for route, (ours, bare, event) in routes.items():
            timings: dict[str, list[float]] = {"ours": [], "bare": [], "ours_cpu": [], "bare_cpu": []}
            for i in range(warmup + requests):
                started, cpu = time.perf_counter(), time.thread_time()
                response = ours()
                elapsed_ours, cpu_ours = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000
                fresh = copy.deepcopy(event)  # outside the timing: the gateway's event building is timed for ours
                started, cpu = time.perf_counter(), time.thread_time()
                bare_response = bare(fresh)
                elapsed_bare, cpu_bare = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000
                assert response.status in (200, 202) and bare_response["statusCode"] in (200, 202), route
                if route.startswith("POST"):
                    # moto's writes slow down as a partition grows (DynamoDB's do not): keep the table as it was.
                    for created in (response.json()["id"], json.loads(bare_response["body"])["id"]):
                        ddb.delete_item(TableName=table, Key={"tenant_id": stored["tenant_id"], "sk": {"S": created}})
                if i >= warmup:
                    for name, value in (
                        ("ours", elapsed_ours),
                        ("bare", elapsed_bare),
                        ("ours_cpu", cpu_ours),
                        ("bare_cpu", cpu_bare),
                    ):
                        timings[name].append(value)
            p50 = {k: statistics.median(v) for k, v in timings.items()}
            p95 = {k: _percentile(v, 0.95) for k, v in timings.items()}
            results[route] = {f"{k}_{q}_ms": round(v[k], 2) for q, v in (("p50", p50), ("p95", p95)) for k in v}
            for suffix in ("", "_cpu"):
                for q, v in (("p50", p50), ("p95", p95)):
                    results[route][f"ratio_{q}{suffix}"] = round(v["ours" + suffix] / v["bare" + suffix], 2)
            shown = results[route]
            log(
                f"  {route}: ours p50 {p50['ours']:.2f} ms p95 {p95['ours']:.2f} ms; bare p50 {p50['bare']:.2f} "
                f"p95 {p95['bare']:.2f}; ratio p50 {shown['ratio_p50']}x p95 {shown['ratio_p95']}x "
                f"(CPU time: p50 {shown['ratio_p50_cpu']}x p95 {shown['ratio_p95_cpu']}x)"
            )
        stack_module.invoke = real_invoke
        gc.unfreeze()
    return {"requests": requests, "budget": BUDGET, "routes": results}

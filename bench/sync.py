"""CRM sync: what an initial sync costs per 1,000 contacts, in CRM requests, DynamoDB, SQS and list price.

A fresh moto world and the fake Pipedrive (conveyor_local.fake_crm, pages of 500) with `records` people; counted
from POST /v1/connections/{id}/sync to the process completed: the fetch (pages), the batches of 100 (each one
BatchGetItem of the contacts and one conditional PutItem per contact), the process's fan-in, the events function
reading the contacts' stream. Then the same sync again (everything unchanged: reads only).
"""

from __future__ import annotations

import time
from typing import Any


def _scenario(name: str, stack: Any, client: Any, crm: Any, connection_id: str, records: int) -> dict[str, Any]:
    from bench import ledger, pricing
    from bench.awscalls import _drain, _jobs_table, _states, _summary

    calls_before = sum(crm.calls.values())
    started = time.perf_counter()
    with ledger.recording() as book:
        response = client.request("POST", f"/v1/connections/{connection_id}/sync", {"mode": "initial"})
        assert response.status == 202, response.body
        while _drain(stack):
            pass
    elapsed = time.perf_counter() - started
    with ledger.paused():
        process = client.request("GET", f"/v1/processes/{response.json()['process_id']}").json()
        client.request("GET", f"/v1/connections/{connection_id}")  # settle
    assert process["state"] == "completed", process
    assert process["counts"]["processed"] == records, process["counts"]
    summary = _summary(name, records, book, elapsed, _states(stack, _jobs_table(stack)), api_requests=1)
    per_million = pricing.cost_per_million(summary)
    summary["counts"] = process["counts"]
    summary["crm_requests_per_1000"] = round((sum(crm.calls.values()) - calls_before) * 1000 / records, 2)
    summary["cost_per_1000_contacts"] = {
        k: (round(v / 1000, 6) if isinstance(v, int | float) else v) for k, v in per_million.items()
    }
    return summary


def run(records: int = 2000) -> dict[str, Any]:
    from bench.awscalls import _Client, _world
    from bench.world import api_key
    from conveyor.processes import service as processes
    from conveyor_local.fake_crm import FakeCrms

    processes.types()  # the job modules (sync's among them), as a warm API function has them imported
    fakes = FakeCrms(people=0).start()
    try:
        fake = fakes["pipedrive"]
        fake.seed(records)
        with _world({"OutboundAllowPrivate": "true"}) as (stack, _):
            client = _Client(stack, api_key(scopes="sync:read,sync:write,processes:read"))
            created = client.request(
                "POST",
                "/v1/connections",
                {
                    "connector": "pipedrive",
                    "credentials": {"api_token": fake.api_token},
                    "base_url": fakes.url("pipedrive"),
                    "field_map": {"timezone": "tz"},
                },
            )
            assert created.status == 201, created.body
            cid = created.json()["id"]
            first = _scenario("initial-sync", stack, client, fake, cid, records)
            again = _scenario("initial-sync-unchanged", stack, client, fake, cid, records)
        return {"initial-sync": first, "initial-sync-unchanged": again}
    finally:
        fakes.stop()

"""Processes: what a batch of 100 records costs in DynamoDB writes, and a million records in list price.

Two scenarios, each a fresh moto world, everything counted from POST /v1/processes to the process completed:
  process-overhead   a process whose batch jobs do no work but record 100 succeeded records each: the fan-out
                     and fan-in machinery alone (declaration, batch jobs through the engine, outcome commits,
                     completion), per batch of 100 records
  campaign           `reminders.campaign` end to end over in-app contacts (created beforehand, uncounted): the
                     same machinery plus each contact's delivery (its delivery log and its feed item)
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

BATCH = 100


class _NoopPayload(BaseModel):
    process_id: str | None = None
    i: int | None = None


def _register() -> None:
    from conveyor.jobs.registry import job_type
    from conveyor.processes import process_type

    def driver(payload: _NoopPayload, ctx: Any) -> None:
        batches = int(ctx.process.params["batches"])
        for start in range(0, batches, 50):  # declared in pages, as a driver reading a source would
            chunk = range(start, min(batches, start + 50))
            ctx.process.add_batches([{"i": i} for i in chunk], key=f"p{start}", sizes=[BATCH] * len(chunk))
        ctx.process.fetch_done(expected_total=batches * BATCH)

    def batch(payload: _NoopPayload, ctx: Any) -> None:
        ctx.process.record(succeeded=BATCH)

    class Params(BaseModel):
        batches: int

    job_type("bench.noop.driver", queue="sync", payload=_NoopPayload)(driver)
    job_type("bench.noop.batch", queue="sync", payload=_NoopPayload)(batch)
    process_type("bench.noop", params=Params, driver="bench.noop.driver", batch="bench.noop.batch")


def _scenario(name: str, records: int, start: dict[str, Any], contacts: int = 0) -> dict[str, Any]:
    from bench import ledger, pricing
    from bench.awscalls import _Client, _drain, _jobs_table, _states, _summary, _world
    from bench.world import api_key

    with _world() as (stack, _):
        client = _Client(stack, api_key(scopes="processes:read,processes:write,reminders:write"))
        for n in range(contacts):
            body = {"name": f"Client {n}", "timezone": "UTC", "channels": ["in_app"]}
            assert client.request("PUT", f"/v1/contacts/c{n:06d}", body).status in (200, 201)
        started = time.perf_counter()
        with ledger.recording() as book:
            response = client.request("POST", "/v1/processes", start)
            assert response.status == 202, response.body
            while _drain(stack):
                pass
        elapsed = time.perf_counter() - started
        with ledger.paused():
            process = client.request("GET", f"/v1/processes/{response.json()['id']}").json()
        states = _states(stack, _jobs_table(stack))
    assert process["state"] == "completed", process
    assert process["counts"]["processed"] == records, process["counts"]
    summary = _summary(name, records, book, elapsed, states, api_requests=1)
    summary["cost_per_million_records"] = pricing.cost_per_million(summary)
    ddb = summary["dynamodb"]
    summary["per_batch_of_100"] = {
        "write_requests": round(ddb["write_requests_per_job"] * BATCH, 2),
        "items_written": round(ddb["writes_per_job"] * BATCH, 2),
        "wru": round(ddb["wru_per_job"] * BATCH, 2),
        "read_requests": round(ddb["reads_per_job"] * BATCH, 2),
        "rru": round(ddb["rru_per_job"] * BATCH, 2),
    }
    summary["batches"] = process["batches"]["total"]
    return summary


def run(records: int = 5000) -> dict[str, Any]:
    _register()
    batches = max(1, records // BATCH)
    noop = _scenario("process-overhead", batches * BATCH, {"type": "bench.noop", "params": {"batches": batches}})
    contacts = min(records, 1000)  # moto's queries walk a whole partition: a bigger tenant only measures moto
    campaign = _scenario(
        "campaign",
        contacts,
        {"type": "reminders.campaign", "params": {"subject": "Closed Friday", "text": "See you Monday"}},
        contacts=contacts,
    )
    return {"process-overhead": noop, "campaign": campaign}

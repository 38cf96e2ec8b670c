"""Children under each policy, pause/resume/cancel, and the liveness sweep: no process is left waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fanout import RUNS

from conveyor import scheduler
from conveyor.platform.clock import utcnow
from conveyor.processes import repository, service


def start(api, params, **extra):
    response = api.post("/v1/processes", {"type": "test.fanout", "params": params, **extra})
    assert response.status == 202, response.body
    return response.json()["id"]


def step(stack, *functions: str) -> None:
    """One batch through each named function's event sources, in order (the dispatcher, then the worker...)."""
    for function in functions:
        for source in stack.sources:
            if source.function_id == function:
                stack.pump(source)


FAILING_CHILD = {"batches": 2, "broken": [1]}  # its second batch fails for good; no tolerance: the child fails


@pytest.mark.parametrize(
    ("policy", "parent_state"),
    [("fail_parent", "failed"), ("ignore", "completed_with_errors"), ("continue_parent", "completed_with_errors")],
)
def test_a_failing_child_leaves_its_parent_in_the_documented_state(processes_api, stack, policy, parent_state):
    parent = start(
        processes_api,
        {"batches": 2, "children": [{"params": FAILING_CHILD, "policy": policy}, {"params": {"batches": 1}}]},
    )

    stack.drain()

    view = processes_api.get(f"/v1/processes/{parent}").json()
    children = processes_api.get(f"/v1/processes/{parent}/children").json()["items"]
    [failing] = [c for c in children if c["process"]["params"]["broken"]]
    assert view["state"] == parent_state
    assert failing["policy"] == policy and failing["process"]["state"] == "failed"
    assert failing["process"]["parent_id"] == parent
    assert all(c["process"]["state"] in ("completed", "failed", "cancelled") for c in children)  # none left running
    assert view["children"]["failed"] >= 1 and view["children"]["done"] == 2
    if policy == "fail_parent":
        assert "its policy fails the parent" in view["error"]
    else:
        errors = processes_api.get(f"/v1/processes/{parent}/errors").json()["items"]
        assert any("ended failed" in e["message"] for e in errors)


def test_a_parent_waits_for_its_children_and_completes_when_they_do(processes_api, stack):
    parent = start(processes_api, {"batches": 1, "children": [{"params": {"batches": 3}}, {"params": {"batches": 2}}]})

    stack.drain()

    view = processes_api.get(f"/v1/processes/{parent}").json()
    assert view["state"] == "completed"
    assert view["children"] == {"total": 2, "done": 2, "failed": 0}
    assert view["counts"]["processed"] == 10  # its own batch; children count on their own records


def test_a_failed_batch_job_counts_its_records_as_failed_and_samples_the_error(processes_api, stack):
    process = start(processes_api, {"batches": 3, "broken": [0]}, tolerated_failure_count=10)

    stack.drain()

    view = processes_api.get(f"/v1/processes/{process}").json()
    errors = processes_api.get(f"/v1/processes/{process}/errors").json()["items"]
    assert view["state"] == "completed_with_errors"
    assert view["counts"] == {"processed": 30, "succeeded": 20, "failed": 10, "skipped": 0}
    assert errors[0]["message"].startswith("batch failed: PermanentError")


def test_pause_parks_batches_without_spending_attempts_and_resume_runs_them(processes_api, stack):
    process = start(processes_api, {"batches": 4})
    step(stack, "DispatcherFunction", "WorkerFunction")  # the driver runs and declares the batches
    paused = processes_api.post(f"/v1/processes/{process}/pause").json()
    assert paused["state"] == "paused"

    stack.drain()
    assert RUNS == {}  # nothing ran while paused
    assert processes_api.get(f"/v1/processes/{process}").json()["counts"]["processed"] == 0

    assert processes_api.post(f"/v1/processes/{process}/resume").json()["state"] == "running"
    stack.drain()

    view = processes_api.get(f"/v1/processes/{process}").json()
    assert view["state"] == "completed" and view["counts"]["processed"] == 40
    assert sorted(RUNS.values()) == [1, 1, 1, 1]


def test_cancel_ends_the_process_and_no_new_batch_starts(processes_api, stack):
    process = start(processes_api, {"batches": 3})
    step(stack, "DispatcherFunction", "WorkerFunction")

    cancelled = processes_api.post(f"/v1/processes/{process}/cancel")
    stack.drain()

    assert cancelled.json()["state"] == "cancelled"
    assert RUNS == {}
    again = processes_api.post(f"/v1/processes/{process}/resume")
    assert again.status == 409 and again.json()["error"]["details"] == {"state": "cancelled"}


def test_a_stalled_process_with_a_lost_batch_message_is_found_by_the_sweep_and_the_batch_re_run(
    processes_api, stack, monkeypatch
):
    # Given a process whose batch 1 job's message is lost (deleted from the queue before any worker saw it)
    process = start(processes_api, {"batches": 3})
    step(stack, "DispatcherFunction", "WorkerFunction", "DispatcherFunction")  # driver ran; batches sent
    sqs = stack.client("sqs")
    url = stack.template.physical["SyncQueue"]
    lost = None
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        if lost is None:
            lost = message
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    assert lost is not None
    stack.drain()
    stuck = processes_api.get(f"/v1/processes/{process}").json()
    assert stuck["state"] == "running" and stuck["batches"] == {"total": 3, "done": 2, "fetch_done": True}

    # When the scheduler sweeps within 10 minutes of the last heartbeat, nothing happens; after, it is stalled
    assert scheduler.run(utcnow())["sweep_stalled_processes"] == 0
    later = utcnow() + timedelta(minutes=11)
    reported: list[str] = []
    monkeypatch.setattr(
        "conveyor.processes.sweeps.report_job_failure", lambda error_type, *a, **k: reported.append(error_type)
    )
    assert scheduler.run(later)["sweep_stalled_processes"] == 1
    stack.drain()

    # Then its missing batch ran again and the process completed, with the stall on record
    done = processes_api.get(f"/v1/processes/{process}").json()
    assert done["state"] == "completed"
    assert done["counts"]["processed"] == 30
    assert done["stalled_at"] is not None
    assert reported == ["ProcessStalled"]
    assert scheduler.run(later + timedelta(minutes=11))["sweep_stalled_processes"] == 0  # finished: left the index


def test_a_child_start_retried_names_the_same_child(stack):
    parent, _ = service.start("tenant-a", service.StartSpec(type="test.fanout", params={"batches": 0}))
    first = service.start_child(parent, service.StartSpec(type="test.fanout", params={}), key="k")
    again = service.start_child(parent, service.StartSpec(type="test.fanout", params={}), key="k")

    assert first.id == again.id and first.id.startswith("prc_") and len(first.id) == 30
    assert service.require("tenant-a", parent.id, consistent=True).children.total == 1
    assert repository.child_links(parent)[0][0] == first.id

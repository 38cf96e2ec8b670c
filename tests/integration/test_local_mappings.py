"""The local stack registers the template's event source mappings with the emulator's Lambda API, so code that
manages mappings (pause/resume) works locally; its pollers obey each mapping's State."""

from __future__ import annotations

from conveyor_local.event_sources import SqsSource, StreamSource
from tests.integration.ops_support import EMAIL, depth, queue_url


def mappings(stack, function: str) -> list[dict]:
    name = stack.template.physical[function]
    return stack.client("lambda").list_event_source_mappings(FunctionName=name)["EventSourceMappings"]


def test_every_sqs_and_stream_event_of_the_template_is_a_mapping(stack):
    worker = mappings(stack, "WorkerFunction")
    queues = {
        stack.template.attributes[f"{f}Queue"]["Arn"]
        for f in ("Email", "Notifications", "Reminders", "Reports", "Webhooks", "Sync")
    }
    assert {m["EventSourceArn"] for m in worker} == queues
    assert {(m["State"], m["BatchSize"]) for m in worker} == {("Enabled", 10)}
    (dispatcher,) = mappings(stack, "DispatcherFunction")
    assert dispatcher["EventSourceArn"] == stack.template.attributes["JobsTable"]["StreamArn"]
    assert all(source.mapping_id for source in stack.sources)


def test_the_emulator_does_not_deliver_by_itself_the_pollers_do(stack):
    # Given a message on a mapped queue (moto would push it to the function itself if left hooked)
    url = queue_url(stack, "sync")
    stack.client("sqs").send_message(QueueUrl=url, MessageBody='{"not": "a job"}')
    # Then it waits for the local poller
    assert depth(stack, url) == 1
    source = next(s for s in stack.sources if isinstance(s, SqsSource) and s.queue_url == url)
    assert stack.pump(source) == 1
    assert depth(stack, url) == 0


def test_a_disabled_mapping_delivers_nothing_until_enabled_again(stack, api):
    lam = stack.client("lambda")
    stream = next(s for s in stack.sources if isinstance(s, StreamSource))
    lam.update_event_source_mapping(UUID=stream.mapping_id, Enabled=False)
    job_id = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL}).json()["id"]
    assert stack.drain() == 0
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
    lam.update_event_source_mapping(UUID=stream.mapping_id, Enabled=True)
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "completed"

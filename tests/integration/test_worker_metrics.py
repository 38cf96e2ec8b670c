"""The worker's metrics: one EMF document per job type for a whole SQS batch, every value kept (log bytes are
paid per job; CloudWatch still records each completion and each duration)."""

from __future__ import annotations

import json

from factories import email_job


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_batch_of_jobs_writes_one_metrics_document_per_job_type(api, stack, sent_emails, capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")  # the suite turns metrics off; this test reads them
    # Given three email jobs waiting in their queue
    for _ in range(3):
        api.post("/v1/jobs", email_job())
    capsys.readouterr()

    # When the worker takes them in one batch
    stack.drain()

    # Then the batch wrote one metrics document for email.send, with each job's values in it
    documents = [d for d in _emf(capsys.readouterr().out) if d.get("job_type") == "email.send"]
    assert len(documents) == 1, documents
    (document,) = documents
    names = {m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"JobsCompleted", "JobDuration", "QueueLatency"} <= names
    assert document["JobsCompleted"] == [1.0, 1.0, 1.0]
    assert len(document["JobDuration"]) == 3
    assert "job_type" in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    assert len(sent_emails()) == 3

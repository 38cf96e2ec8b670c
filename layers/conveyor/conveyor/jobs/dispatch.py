"""The dispatcher: the jobs table's stream -> SQS (a transactional outbox).

The API and the scheduler only write the job (state `queued`); this function sends it. A job that is
accepted is therefore never lost between the database and the queue, and sends are batched ten to a
request. The stream is at-least-once, so a job can be sent twice; the worker's claim makes that harmless.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from conveyor.jobs import repository
from conveyor.jobs.domain import MAX_DELAY_SECONDS, Job, JobState
from conveyor.platform.aws import client
from conveyor.platform.clock import utcnow
from conveyor.platform.observability import logger
from conveyor.platform.settings import get_settings

SEND_BATCH = 10


def newly_queued(record: dict[str, Any]) -> Job | None:
    """The job a stream record moved into `queued` (an insert, a release, a retry), else None."""
    images = record.get("dynamodb", {})
    new, old = images.get("NewImage"), images.get("OldImage") or {}
    if not new or new.get("state", {}).get("S") != JobState.QUEUED or old.get("state", {}).get("S") == JobState.QUEUED:
        return None
    return repository.from_stream_image(new)


def message_for(job: Job) -> dict[str, Any]:
    delay = 0
    if job.run_at is not None:
        # Rounded up: SQS counts whole seconds, and a job must never run before its run_at.
        delay = math.ceil(min(MAX_DELAY_SECONDS, max(0.0, (job.run_at - utcnow()).total_seconds())))
    return {
        "MessageBody": json.dumps({"tenant_id": job.tenant_id, "job_id": job.id, "type": job.type}),
        "DelaySeconds": delay,
    }


def dispatch(event: dict[str, Any]) -> dict[str, Any]:
    """Send every newly queued job; report the stream records whose send failed (Lambda retries from the first)."""
    settings = get_settings()
    by_queue: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for record in event.get("Records", []):
        job = newly_queued(record)
        if job is not None:
            by_queue[job.queue].append((record["dynamodb"]["SequenceNumber"], message_for(job)))

    failed: list[str] = []
    sent = 0
    for family, entries in by_queue.items():
        url = settings.queue_url(family)
        for start in range(0, len(entries), SEND_BATCH):
            chunk = entries[start : start + SEND_BATCH]
            batch = [{"Id": str(i), **message} for i, (_, message) in enumerate(chunk)]
            response = client("sqs").send_message_batch(QueueUrl=url, Entries=batch)
            bad = {int(f["Id"]) for f in response.get("Failed", [])}
            failed += [seq for i, (seq, _) in enumerate(chunk) if i in bad]
            sent += len(chunk) - len(bad)
            for failure in response.get("Failed", []):
                logger.error("send to queue failed", extra={"queue": family, "failure": failure})
    logger.debug("dispatched", extra={"sent": sent, "failed": len(failed)})
    # Powertools' batch processor works record by record; batching sends is the point here, so the stream's
    # partial-failure response is built directly. Lambda resumes from the lowest sequence number reported.
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in sorted(failed, key=int)]}

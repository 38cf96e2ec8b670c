"""The worker: one SQS record -> claim the job, run its handler, record the outcome.

What a handler's outcome does is decided by the outcome policy (conveyor.jobs.outcomes, pure) and carried out
here: completed, failed, retrying with backoff (the message's visibility timeout is the delay) or deferred.
Before the handler runs:
  unknown job type / bad payload -> failed at once with the reason; acknowledged (never retried)
  unreadable message             -> logged and dropped (nothing to fail); a job someone else holds -> dropped
Anything that escapes (DynamoDB down, a crash) leaves the message on the queue; the redrive policy moves it to
the DLQ after maxReceiveCount receives, which is set well above any job's attempts.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, Field, ValidationError

from conveyor.jobs import outcomes, registry, repository
from conveyor.jobs.domain import Job
from conveyor.platform.aws import client
from conveyor.platform.clock import utcnow
from conveyor.platform.observability import count, logger, report_exception, report_job_failure, scrub_text, timing
from conveyor.platform.settings import get_settings

LEASE_MARGIN_SECONDS = 30  # a claim outlives the invocation by this much before another delivery may take over
_JOB_KEYS = ("job_id", "job_type", "tenant_id", "attempt")

# Retries are paced per message (visibility timeouts), so a batch where every record is retrying is normal:
# it must not turn into an invocation error, which would alarm as a crash and shrink the poller fleet.
_processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class JobMessage(BaseModel):
    tenant_id: str = Field(min_length=1, max_length=256)
    job_id: str = Field(min_length=1, max_length=64)


class RetryScheduled(Exception):  # noqa: N818 - a signal to the batch processor, not an error
    """Marks the record failed in the batch response; its visibility timeout already holds the delay."""


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=process_record, processor=_processor, context=context)


def process_record(record: SQSRecord, lambda_context: Any = None) -> None:
    try:
        _process(record, lambda_context)
    except RetryScheduled:
        raise
    except Exception as exc:
        # The batch processor swallows what escapes a record: say it here, then let the message come back.
        logger.exception(
            "record could not be processed; the message returns to the queue", extra={"message_id": record.message_id}
        )
        report_exception(exc, tags={"message_id": record.message_id, "queue_arn": record.event_source_arn})
        raise


def _process(record: SQSRecord, lambda_context: Any) -> None:
    message = _parse(record)
    if message is None:
        return
    remaining_ms = lambda_context.get_remaining_time_in_millis() if lambda_context else 60_000
    job = repository.claim(message.tenant_id, message.job_id, lease_seconds=remaining_ms // 1000 + LEASE_MARGIN_SECONDS)
    if job is None:
        logger.info(
            "job not runnable (duplicate delivery, finished or cancelled); dropped",
            extra={"job_id": message.job_id, "message_id": record.message_id},
        )
        count("DuplicateDeliveries", "unknown")
        return
    logger.append_keys(job_id=job.id, job_type=job.type, tenant_id=job.tenant_id, attempt=job.attempts)
    try:
        _run(job, record)
    finally:
        logger.remove_keys(list(_JOB_KEYS))


def _parse(record: SQSRecord) -> JobMessage | None:
    try:
        return JobMessage.model_validate_json(record.body)
    except ValidationError as exc:
        logger.error(
            "unreadable message dropped: it names no job",
            extra={"message_id": record.message_id, "problem": exc.errors(include_input=False)[:3]},
        )
        count("PoisonMessages", "unknown")
        return None


def _attempts(job: Job) -> outcomes.Attempts:
    deferred_for = (utcnow() - job.first_deferred_at).total_seconds() if job.first_deferred_at else 0
    return outcomes.Attempts(job.attempts, job.max_attempts, job.defers, deferred_for)


def _run(job: Job, record: SQSRecord) -> None:
    spent = outcomes.exhausted(_attempts(job))
    if spent is not None:
        _fail(job, spent.error_type, spent.message)
        return
    kind = registry.get(job.type)
    if kind is None:
        _fail(job, "UnknownJobType", f"no handler is registered for job type {job.type!r}")
        return
    try:
        payload = kind.payload_model.model_validate(job.payload)
    except ValidationError as exc:
        _fail(job, "InvalidPayload", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return

    _record_latency(job)
    context = registry.JobContext(
        job_id=job.id,
        tenant_id=job.tenant_id,
        type=job.type,
        attempt=job.attempts,
        report_progress=lambda percent: repository.set_progress(job, max(0, min(100, int(percent)))),
        max_attempts=int(job.max_attempts),
    )
    started = time.monotonic()
    result: Any = None
    error: Exception | None = None
    try:
        result = kind.handler(payload, context)
    except Exception as exc:  # noqa: BLE001 - every failure of a handler has an outcome (conveyor.jobs.outcomes)
        error = exc
    try:
        _apply(job, outcomes.decide(error, _attempts(job), kind.retry), result, error, record)
    finally:
        timing("JobDuration", job.type, (time.monotonic() - started) * 1000)


def _apply(job: Job, decision: outcomes.Decision, result: Any, error: Exception | None, record: SQSRecord) -> None:
    """Carry out the outcome policy's decision: each a conditional write on this attempt still owning the job."""
    if decision.action == outcomes.Action.COMPLETE:
        if repository.complete(job, result):
            count("JobsCompleted", job.type)
            logger.info("job completed")
        else:
            logger.warning("job changed state while running (cancelled or lease lost); result not stored")
    elif decision.action == outcomes.Action.FAIL:
        _fail(job, decision.error_type, decision.message, error if decision.with_exception else None)
    elif decision.action == outcomes.Action.RETRY:
        report_job_failure(decision.error_type, decision.message, tags=_tags(job), final=False, exc=error)
        if repository.schedule_retry(job, decision.error_type, decision.message, decision.delay_seconds):
            _delay_message(record, decision.delay_seconds)
            count("JobsRetried", job.type)
            extra = {"delay_seconds": decision.delay_seconds, "error": scrub_text(decision.message)}
            logger.warning("job will be retried", extra=extra)
            raise RetryScheduled(f"retry in {decision.delay_seconds}s") from error
    elif repository.defer(job, decision.delay_seconds, decision.message):
        _delay_message(record, decision.delay_seconds)
        count("JobsDeferred", job.type)
        raise RetryScheduled(f"deferred {decision.delay_seconds}s")


def _tags(job: Job) -> dict[str, Any]:
    return {"job_id": job.id, "job_type": job.type, "tenant_id": job.tenant_id, "attempt": job.attempts}


def _fail(job: Job, error_type: str, message: str, exc: BaseException | None = None) -> None:
    """The job is failed for good: recorded, counted and reported (batch processing would swallow it)."""
    if repository.fail(job, error_type, message):
        count("JobsFailed", job.type)
        logger.warning("job failed", extra={"error_type": error_type, "reason": scrub_text(message)})
        report_job_failure(error_type, message, tags=_tags(job), final=True, exc=exc)


def _delay_message(record: SQSRecord, seconds: int) -> None:
    family = get_settings().family_for_queue_arn(record.event_source_arn)
    if family is None:
        logger.error(
            "record from an unknown queue; it returns after the queue's visibility timeout",
            extra={"queue_arn": record.event_source_arn},
        )
        return
    client("sqs").change_message_visibility(
        QueueUrl=get_settings().queue_url(family), ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
    )


def _record_latency(job: Job) -> None:
    """Queue latency = first start - when the job was due; later attempts would count the backoff they chose."""
    if job.attempts != 1:
        return
    ready_at: datetime = job.run_at or job.created_at
    timing("QueueLatency", job.type, max(0.0, (utcnow() - ready_at).total_seconds() * 1000))

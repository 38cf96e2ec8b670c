"""The worker: one SQS record -> claim the job, run its handler, record the outcome.

What a handler's outcome does is decided by the outcome policy (conveyor.jobs.outcomes, pure) and carried out
here: completed, failed, retrying with backoff (the message's visibility timeout is the delay) or deferred.
Before the handler runs:
  unknown job type / bad payload -> failed at once with the reason; acknowledged (never retried)
  unreadable message             -> logged and dropped (nothing to fail); a job someone else holds -> dropped
Anything that escapes (DynamoDB down, a crash) leaves the message on the queue; the redrive policy moves it to
the DLQ after maxReceiveCount receives, which is set well above any job's attempts.

The completion write is the record that a handler's effect happened (for `email.send`: SES accepted the email),
and it is the first thing after the handler. If it cannot be made (DynamoDB failing past the client's retries),
the outcome is not dropped with the message: a message of its own carries it (`completed`), and that delivery
records the completion without running the handler again. So a redelivered job never repeats an effect it
already had, at no cost on the normal path (an email job stays at 3 writes: insert, claim, complete).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, ValidationError
from pynamodb.exceptions import PynamoDBException

from conveyor.jobs import outcomes, registry, repository
from conveyor.jobs.domain import Job, JobState
from conveyor.platform import correlation
from conveyor.platform.aws import client
from conveyor.platform.clock import utcnow
from conveyor.platform.observability import (
    count,
    logger,
    metrics_batched,
    report_exception,
    report_job_failure,
    scrub_text,
    timing,
)
from conveyor.platform.settings import get_settings

LEASE_MARGIN_SECONDS = 30  # a claim outlives the invocation by this much before another delivery may take over
LEASE_SAFETY_SECONDS = 5  # ctx.remaining_seconds() leaves this much for the worker to record the outcome
CARRIED_DELAY_SECONDS = 30  # a completion that could not be recorded is tried again this much later
_JOB_KEYS = ("job_id", "job_type", "tenant_id", "attempt")

# Retries are paced per message (visibility timeouts), so a batch where every record is retrying is normal:
# it must not turn into an invocation error, which would alarm as a crash and shrink the poller fleet.
# Records are Powertools' parser model (the body is read below, so an unreadable one is dropped, not retried).
# Its import costs nothing here: Powertools' batch module already loads the parser models once pydantic is in.
_processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel, raise_on_entire_batch_failure=False)


class CarriedCompletion(BaseModel):
    """An attempt's outcome its worker could not record: the attempt that reached it (its number and when it
    was claimed: a job retried by request counts its attempts from 1 again), and its result."""

    attempt: int = Field(ge=1)
    claimed_at: datetime | None
    result: Any = None


class JobMessage(BaseModel):
    tenant_id: str = Field(min_length=1, max_length=256)
    job_id: str = Field(min_length=1, max_length=64)
    correlation_id: str | None = None  # not validated strictly: a malformed one is ignored, never fatal
    completed: CarriedCompletion | None = None


class RetryScheduled(Exception):  # noqa: N818 - a signal to the batch processor, not an error
    """Marks the record failed in the batch response; its visibility timeout already holds the delay."""


def handle_batch(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    with metrics_batched():  # one EMF document per job type for the whole batch
        return process_partial_response(
            event=event, record_handler=process_record, processor=_processor, context=context
        )


def process_record(record: SqsRecordModel, lambda_context: Any = None) -> None:
    try:
        _process(record, lambda_context)
    except RetryScheduled:
        raise
    except Exception as exc:
        # The batch processor swallows what escapes a record: say it here, then let the message come back.
        logger.exception(
            "record could not be processed; the message returns to the queue", extra={"message_id": record.messageId}
        )
        report_exception(exc, tags={"message_id": record.messageId, "queue_arn": record.eventSourceARN})
        raise


def _process(record: SqsRecordModel, lambda_context: Any) -> None:
    message = _parse(record)
    if message is None:
        return
    with correlation.bound(correlation.valid(message.correlation_id)):
        if message.completed is not None:
            _record_carried(message, message.completed)
            return
        _claim_and_run(message, record, lambda_context)


def _claim_and_run(message: JobMessage, record: SqsRecordModel, lambda_context: Any) -> None:
    remaining_ms = lambda_context.get_remaining_time_in_millis() if lambda_context else 60_000
    deadline = time.monotonic() + remaining_ms / 1000
    job = repository.claim(message.tenant_id, message.job_id, lease_seconds=remaining_ms // 1000 + LEASE_MARGIN_SECONDS)
    if job is None:
        logger.info(
            "job not runnable (duplicate delivery, finished or cancelled); dropped",
            extra={"job_id": message.job_id, "message_id": record.messageId},
        )
        count("DuplicateDeliveries", "unknown")
        return
    logger.append_keys(job_id=job.id, job_type=job.type, tenant_id=job.tenant_id, attempt=job.attempts)
    try:
        _run(job, record, deadline)
    finally:
        logger.remove_keys(list(_JOB_KEYS))


def _parse(record: SqsRecordModel) -> JobMessage | None:
    try:
        return JobMessage.model_validate_json(str(record.body))
    except ValidationError as exc:
        logger.error(
            "unreadable message dropped: it names no job",
            extra={"message_id": record.messageId, "problem": exc.errors(include_input=False)[:3]},
        )
        count("PoisonMessages", "unknown")
        return None


def _attempts(job: Job) -> outcomes.Attempts:
    deferred_for = (utcnow() - job.first_deferred_at).total_seconds() if job.first_deferred_at else 0
    return outcomes.Attempts(job.attempts, job.max_attempts, job.defers, deferred_for, job.continues)


def _run(job: Job, record: SqsRecordModel, deadline: float) -> None:
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
    port, ref = _process_of(job)
    if port is not None and ref is not None:
        refused = port.admit(ref)  # a process's job runs only while its process runs
        if refused is not None:
            if repository.complete(job, {"not_run": refused}):
                logger.info("process job not run", extra={"reason": refused})
            return

    def report_progress(percent: int) -> bool:
        return repository.set_progress(job, max(0, min(100, int(percent))))

    context = registry.JobContext(
        job_id=job.id,
        tenant_id=job.tenant_id,
        type=job.type,
        attempt=job.attempts,
        report_progress=report_progress,
        max_attempts=int(job.max_attempts),
        checkpoint=job.checkpoint,
        process=port.handle(ref) if port is not None and ref is not None else None,
        remaining=lambda: deadline - time.monotonic() - LEASE_SAFETY_SECONDS,
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


def _apply(job: Job, decision: outcomes.Decision, result: Any, error: Exception | None, record: SqsRecordModel) -> None:
    """Carry out the outcome policy's decision: each a conditional write on this attempt still owning the job."""
    if decision.action == outcomes.Action.COMPLETE:
        try:
            stored = repository.complete(job, result)
        except (PynamoDBException, BotoCoreError) as exc:
            _carry(job, result, record, exc)
            return
        if stored:
            count("JobsCompleted", job.type)
            logger.info("job completed")
        else:
            logger.warning("job changed state while running (cancelled or lease lost); result not stored")
    elif decision.action == outcomes.Action.CONTINUE:
        state = error.state if isinstance(error, registry.Continue) else None
        if repository.continue_later(job, state):
            count("JobsContinued", job.type)
            logger.info("job continues from a checkpoint", extra={"continues": job.continues + 1})
        else:
            logger.warning("job changed state while running (cancelled or lease lost); checkpoint not stored")
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
    """The job is failed for good: recorded, counted and reported (batch processing would swallow it); a
    process's job tells its process (a failed batch counts as failed, a failed driver fails the process)."""
    if repository.fail(job, error_type, message):
        count("JobsFailed", job.type)
        logger.warning("job failed", extra={"error_type": error_type, "reason": scrub_text(message)})
        report_job_failure(error_type, message, tags=_tags(job), final=True, exc=exc)
        port, ref = _process_of(job)
        if port is not None and ref is not None:
            port.failed(ref, error_type, message)


def _process_of(job: Job) -> tuple[registry.ProcessPort | None, registry.JobRef | None]:
    """The process port and this job's reference, when the job belongs to a process."""
    port = registry.process_port() if job.process_id else None
    if port is None or job.process_id is None:
        return None, None
    return port, registry.JobRef(job.tenant_id, job.id, job.type, job.queue, job.payload, job.process_id, job.batch_key)


def _carry(job: Job, result: Any, record: SqsRecordModel, error: Exception) -> None:
    """The handler succeeded but its completion could not be recorded: send the outcome in a message of its own
    (so this one can go: its redelivery would run the handler again). If even that fails, the error escapes and
    the message returns, as before."""
    family = get_settings().family_for_queue_arn(record.eventSourceARN)
    if family is None:
        raise error
    body = JobMessage(
        tenant_id=job.tenant_id,
        job_id=job.id,
        correlation_id=job.correlation_id,
        completed=CarriedCompletion(attempt=job.attempts, claimed_at=job.started_at, result=result),
    )
    try:
        client("sqs").send_message(
            QueueUrl=get_settings().queue_url(family),
            MessageBody=body.model_dump_json(),
            DelaySeconds=CARRIED_DELAY_SECONDS,
        )
    except (ClientError, BotoCoreError):
        raise error from None
    count("CompletionsCarried", job.type)
    logger.warning(
        "job completed but its completion could not be recorded; carried in a message",
        extra={"error": scrub_text(str(error)), "delay_seconds": CARRIED_DELAY_SECONDS},
    )


def _record_carried(message: JobMessage, completed: CarriedCompletion) -> None:
    """Record a completion a worker could not: only while the job is still that attempt's (active, same
    attempt number); the handler does not run again. A failure here escapes: SQS delivers this message again."""
    job = repository.get(message.tenant_id, message.job_id, consistent=True)
    same_attempt = job is not None and (job.attempts, job.started_at) == (completed.attempt, completed.claimed_at)
    if job is None or job.state != JobState.ACTIVE or not same_attempt:
        logger.warning(
            "carried completion no longer applies (the job moved on); dropped",
            extra={"job_id": message.job_id, "attempt": completed.attempt, "state": job.state if job else None},
        )
        return
    if repository.complete(job, completed.result):
        count("JobsCompleted", job.type)
        logger.info("job completed (carried completion)", extra={"job_id": job.id, "attempt": job.attempts})


def _delay_message(record: SqsRecordModel, seconds: int) -> None:
    family = get_settings().family_for_queue_arn(record.eventSourceARN)
    if family is None:
        logger.error(
            "record from an unknown queue; it returns after the queue's visibility timeout",
            extra={"queue_arn": record.eventSourceARN},
        )
        return
    client("sqs").change_message_visibility(
        QueueUrl=get_settings().queue_url(family), ReceiptHandle=record.receiptHandle, VisibilityTimeout=seconds
    )


def _record_latency(job: Job) -> None:
    """Queue latency = first start - when the job was due; later attempts would count the backoff they chose."""
    if job.attempts != 1:
        return
    ready_at: datetime = job.run_at or job.created_at
    timing("QueueLatency", job.type, max(0.0, (utcnow() - ready_at).total_seconds() * 1000))

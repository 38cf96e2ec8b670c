"""Worker function: SQS batches from every job queue -> one job per record, partial batch failures."""

# First, before anything imports pydantic: Powertools' batch utility, imported once pydantic is, also builds the
# DynamoDB-stream, Kinesis and Kafka parser models for its type hints (~0.3x of the cold-start baseline, measured
# by bench/coldstart.py). The worker validates records with SqsRecordModel alone (conveyor.jobs.worker).
import aws_lambda_powertools.utilities.batch  # noqa: F401

from conveyor import capabilities
from conveyor.jobs.worker import handle_batch
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import WorkerSettings, init_settings

init_sentry(init_settings(WorkerSettings))  # names a missing variable at cold start
capabilities.install()


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return handle_batch(event, context)

"""Worker function: SQS batches from every job queue -> one job per record, partial batch failures."""

from conveyor import capabilities
from conveyor.jobs.worker import handle_batch
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import WorkerSettings, init_settings

init_sentry(init_settings(WorkerSettings))  # names a missing variable at cold start
capabilities.install()


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return handle_batch(event, context)

"""Dispatcher function: the jobs table's stream -> SQS, for every job that became `queued`."""

from conveyor.jobs.dispatch import dispatch
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import DispatcherSettings, init_settings

init_sentry(init_settings(DispatcherSettings))  # names a missing variable at cold start


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return dispatch(event)

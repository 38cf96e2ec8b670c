"""Scheduler function: the one-minute EventBridge schedule -> every sweep (delayed jobs, ...), within the
invocation's remaining time."""

from conveyor import scheduler
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import SchedulerSettings, init_settings

init_sentry(init_settings(SchedulerSettings))  # names a missing variable at cold start


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return scheduler.run(seconds=context.get_remaining_time_in_millis() / 1000)

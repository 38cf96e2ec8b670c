"""API function: HTTP API (payload 2.0) -> the Conveyor API resolver."""

from conveyor.api.app import handle
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import ApiSettings, init_settings

init_sentry(init_settings(ApiSettings))  # names a missing variable at cold start


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return handle(event, context)

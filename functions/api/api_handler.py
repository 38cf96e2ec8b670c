"""API function: HTTP API (payload 2.0) -> the Conveyor API resolver."""

from conveyor.api.app import handle
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import get_settings

init_sentry(get_settings())


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return handle(event, context)

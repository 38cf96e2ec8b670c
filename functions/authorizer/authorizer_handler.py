"""Authorizer function: HTTP API Lambda REQUEST authorizer (payload 2.0, simple responses)."""

from conveyor.platform.auth.authorizer import authorize
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import get_settings

init_sentry(get_settings())


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return authorize(event)

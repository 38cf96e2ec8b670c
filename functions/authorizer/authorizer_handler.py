"""Authorizer function: HTTP API Lambda REQUEST authorizer (payload 2.0, simple responses)."""

from conveyor.platform.auth.authorizer import authorize
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import AuthorizerSettings, init_settings

init_sentry(init_settings(AuthorizerSettings))  # names a missing variable at cold start


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return authorize(event)

"""Events function: the tables' DynamoDB streams -> domain events -> webhook deliveries."""

from conveyor import capabilities
from conveyor.platform.observability import init_sentry, logger
from conveyor.platform.settings import get_settings
from conveyor.webhooks.consumer import handle_stream

init_sentry(get_settings())
capabilities.install()


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return handle_stream(event)

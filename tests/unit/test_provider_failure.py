from botocore.exceptions import ClientError

from conveyor.platform.aws import provider_failure
from conveyor.platform.errors import PermanentError, TransientError


def _error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "said the provider"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )


THROTTLING = frozenset({"TooManyRequestsException"})


def test_throttling_and_server_errors_are_transient_everything_else_permanent():
    throttled = provider_failure("SES", _error("TooManyRequestsException", 429), THROTTLING)
    server = provider_failure("SES", _error("InternalFailure", 500), THROTTLING)
    rejected = provider_failure("SES", _error("MessageRejected", 400), THROTTLING)

    assert isinstance(throttled, TransientError) and isinstance(server, TransientError)
    assert isinstance(rejected, PermanentError)
    assert rejected.message == "SES MessageRejected: said the provider"

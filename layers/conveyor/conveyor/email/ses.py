"""Amazon SES v2, the email capability's one provider: a send on behalf of a job, its errors classified."""

from __future__ import annotations

import re
from typing import Any

from conveyor.jobs import JobContext
from conveyor.platform.aws import client, provider_failure
from conveyor.platform.settings import get_settings

TRANSIENT_SES_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalServiceError",
    }
)


def _tag(value: str) -> str:
    """SES tag values allow only [A-Za-z0-9_-]."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)[:256] or "_"


def send_via_ses(
    *,
    to: list[str],
    subject: str,
    text: str | None,
    html: str | None,
    job: JobContext,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_to: list[str] | None = None,
) -> str:
    """One SES v2 send on behalf of a job (tagged with its id and tenant); returns SES's message id.

    Raises TransientError for throttling and 5xx (worth retrying), PermanentError for everything else.
    """
    body: dict[str, Any] = {}
    if text:
        body["Text"] = {"Data": text, "Charset": "UTF-8"}
    if html:
        body["Html"] = {"Data": html, "Charset": "UTF-8"}
    request: dict[str, Any] = {
        "FromEmailAddress": get_settings().email_from,
        "Destination": {"ToAddresses": to, "CcAddresses": cc or [], "BccAddresses": bcc or []},
        "Content": {"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"}, "Body": body}},
        "EmailTags": [{"Name": "job_id", "Value": _tag(job.job_id)}, {"Name": "tenant", "Value": _tag(job.tenant_id)}],
    }
    if reply_to:
        request["ReplyToAddresses"] = reply_to

    from botocore.exceptions import ClientError

    try:
        response = client("sesv2").send_email(**request)
    except ClientError as exc:
        raise provider_failure("SES", exc, TRANSIENT_SES_CODES) from exc
    return str(response["MessageId"])

"""The channels' providers: email (SES v2, through the email capability), sms (SNS Publish straight to the
phone number) and in_app (an item in the contact's feed). Each raises PermanentError or TransientError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor import email
from conveyor.jobs import JobContext
from conveyor.notify import repository
from conveyor.notify.domain import Contact, FeedItem, Message, Send
from conveyor.platform.aws import client, provider_failure
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import TransientError

TRANSIENT_SNS_CODES = frozenset(
    {
        "Throttling",
        "Throttled",
        "ThrottledException",
        "ThrottlingException",
        "InternalError",
        "InternalErrorException",
        "ServiceUnavailable",
        "KMSThrottling",
        "KMSThrottlingException",
    }
)


def senders(contact: Contact, message: Message, job: JobContext, source: dict[str, Any]) -> dict[str, Send]:
    """Each channel's send of `message` to `contact` on behalf of `job` (address -> provider message id)."""

    def by_email(address: str) -> str:
        return email.send_via_ses(to=[address], subject=message.subject, text=message.text, html=message.html, job=job)

    def by_sms(address: str) -> str:
        return _sms(address, message.short)

    def in_app(address: str) -> str:
        return _feed(contact, message, job, source)

    channels: dict[str, Callable[[str], str]] = {"email": by_email, "sms": by_sms, "in_app": in_app}
    return channels


def _sms(phone: str, text: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client("sns").publish(
            PhoneNumber=phone,
            Message=text,
            MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
        )
    except ClientError as exc:
        raise provider_failure("SNS", exc, TRANSIENT_SNS_CODES) from exc
    except BotoCoreError as exc:  # connection trouble: worth another try
        raise TransientError(f"SNS unreachable: {exc}") from exc
    return str(response["MessageId"])


def _feed(contact: Contact, message: Message, job: JobContext, source: dict[str, Any]) -> str:
    """A feed item keyed by the job's ULID: written once even if this runs twice, and newest-first by key."""
    now = utcnow()
    item = FeedItem(
        id="ntf_" + job.job_id.removeprefix("job_"),
        contact_id=contact.id,
        title=message.subject,
        body=message.text,
        created_at=now,
        source=source,
    )
    repository.add_feed_item(contact.tenant_id, item, now)  # False: an earlier try wrote it already
    return item.id

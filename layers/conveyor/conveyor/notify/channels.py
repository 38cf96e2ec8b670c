"""One notification over the first channel that works, in the contact's order of preference.

Channels: email (SES v2, through the email capability's sender and templates), sms (SNS Publish straight to
the phone number) and in_app (an item in the contact's feed, in DynamoDB). A channel the contact opted out of,
or has no address for, is skipped; one that fails permanently falls back to the next. A transient failure
(throttling, 5xx) is recorded and raised, so the job is retried; on its last attempt it falls back instead.

Every attempt is recorded on the delivery item (the reminder, or the ad-hoc job's delivery log) and success is
recorded before the job finishes, so a retried or re-delivered job never sends over a channel twice. (The one
gap no one can close without provider-side idempotency: a crash between the provider's "sent" and our write.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.email.job import send_via_ses
from conveyor.email.templates import render
from conveyor.jobs import JobContext
from conveyor.platform.aws import client, provider_failure
from conveyor.platform.errors import PermanentError, TransientError
from conveyor.reminders import store
from conveyor.reminders.store import Attempt, ContactRecord, FeedItemRecord, utcnow

SMS_MAX_CHARS = 600  # several SMS segments at most; longer texts are cut
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


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str | None = None
    sms: str | None = None

    @classmethod
    def from_template(cls, name: str, context: dict[str, Any]) -> Message:
        rendered = render(name, context)
        return cls(
            subject=rendered.subject, text=rendered.text or rendered.subject, html=rendered.html, sms=rendered.sms
        )

    @property
    def short(self) -> str:
        text = self.sms or f"{self.subject}: {self.text}"
        return text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 1] + "…"


@dataclass
class Outcome:
    delivered: Attempt | None
    new_attempts: list[Attempt] = field(default_factory=list)  # recorded already when delivered
    opted_out_of_all: bool = False

    def as_result(self) -> dict[str, Any]:
        return {
            "delivered_via": self.delivered.channel if self.delivered else None,
            "provider_message_id": self.delivered.provider_message_id if self.delivered else None,
            "attempts": [attempt_dict(a) for a in self.new_attempts],
        }


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return {
        "channel": attempt.channel,
        "status": attempt.status,
        "provider_message_id": attempt.provider_message_id,
        "detail": attempt.detail,
        "at": attempt.at.isoformat(),
    }


def _attempt(channel: str, status: str, detail: str | None = None, message_id: str | None = None) -> Attempt:
    return Attempt(
        channel=channel,
        status=status,
        detail=detail[:300] if detail else None,
        provider_message_id=message_id,
        at=utcnow(),
    )


def deliver(
    item: store._Delivery,
    contact: ContactRecord,
    message: Message,
    job: JobContext,
    *,
    source: dict[str, Any],
    on_delivered: list[Any] | None = None,
) -> Outcome:
    """Send `message` to `contact` once. On success the attempts and `on_delivered` actions are written with the
    delivery mark (one write); otherwise the new attempts are returned for the caller to record with its outcome."""
    previous = list(item.attempts or [])
    if item.delivered_via:
        done = next((a for a in reversed(previous) if a.status == "sent"), None)
        return Outcome(done or _attempt(item.delivered_via, "sent", message_id=item.provider_message_id))
    final = job.attempt >= job.max_attempts
    settled = {a.channel for a in previous if a.status in ("failed", "skipped")}
    new: list[Attempt] = []
    for channel in contact.channels:
        if channel in settled:
            continue
        if channel in (contact.opted_out or []):
            new.append(_attempt(channel, "skipped", "opted out"))
            continue
        send = _SENDERS[channel]
        address = _address(contact, channel)
        if address is None:
            new.append(_attempt(channel, "skipped", f"no {'email address' if channel == 'email' else 'phone number'}"))
            continue
        try:
            message_id = send(address, contact, message, job, source)
        except PermanentError as exc:
            new.append(_attempt(channel, "failed", exc.message))
            continue
        except TransientError as exc:
            if final:
                new.append(_attempt(channel, "failed", f"gave up on the last attempt: {exc.message}"))
                continue
            store.record_attempts(item, [*new, _attempt(channel, "error", exc.message)])
            raise
        sent = _attempt(channel, "sent", message_id=message_id)
        store.record_attempts(item, [*new, sent], delivered=sent, extra=on_delivered)
        return Outcome(sent, [*new, sent])
    everything = previous + new
    opted_out = bool(everything) and all(a.status == "skipped" and a.detail == "opted out" for a in everything)
    return Outcome(None, new, opted_out_of_all=opted_out)


def _address(contact: ContactRecord, channel: str) -> str | None:
    if channel == "email":
        return contact.email or None
    if channel == "sms":
        return contact.phone or None
    return contact.sk  # in_app: the contact's own feed


def _send_email(address: str, contact: ContactRecord, message: Message, job: JobContext, source: dict[str, Any]) -> str:
    return send_via_ses(to=[address], subject=message.subject, text=message.text, html=message.html, job=job)


def _send_sms(address: str, contact: ContactRecord, message: Message, job: JobContext, source: dict[str, Any]) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client("sns").publish(
            PhoneNumber=address,
            Message=message.short,
            MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
        )
    except ClientError as exc:
        raise provider_failure("SNS", exc, TRANSIENT_SNS_CODES) from exc
    except BotoCoreError as exc:  # connection trouble: worth another try
        raise TransientError(f"SNS unreachable: {exc}") from exc
    return str(response["MessageId"])


def _send_in_app(
    address: str, contact: ContactRecord, message: Message, job: JobContext, source: dict[str, Any]
) -> str:
    """A feed item keyed by the job's ULID: written once even if this runs twice, and newest-first by key."""
    contact_id = contact.sk.removeprefix("contact#")
    feed_id = "ntf_" + job.job_id.removeprefix("job_")
    now = utcnow()
    item = FeedItemRecord(
        contact.tenant_id,
        store.feed_prefix(contact_id) + feed_id,
        contact_id=contact_id,
        title=message.subject,
        body=message.text,
        source=source,
        created_at=now,
        expires_at=int((now + store.RETENTION).timestamp()),
    )
    store.put(item, store.table(FeedItemRecord).sk.does_not_exist())  # False: an earlier try wrote it already
    return feed_id


_SENDERS: dict[str, Callable[[str, ContactRecord, Message, JobContext, dict[str, Any]], str]] = {
    "email": _send_email,
    "sms": _send_sms,
    "in_app": _send_in_app,
}

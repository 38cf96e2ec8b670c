"""The outbox: every email a function sends through the emulated SES is written to <outbox>/<job-id>.eml, and
every SMS it sends through SNS (`Publish` to a `PhoneNumber`) to <outbox>/<job-id>.sms.txt.

How: a botocore event hook, registered for every client this process creates from then on
(`botocore.handlers.BUILTIN_HANDLERS`, the mechanism moto itself uses to intercept requests).
`before-parameter-build.<ses|sesv2>.<operation>` keeps the request a function made; `after-call` writes it once the
emulator has accepted the send (2xx), with the MessageId it returned. Being client-side, it works the same with the
embedded moto server and with an external emulator (--endpoint-url), and it keeps what moto's SES backend drops:
the EmailTags (the file is named after the `job_id` tag) and both the text and the HTML part.
Functions are unchanged: they call SES and SNS exactly as they would on AWS. An SMS carries no tags: its file is
named after the job the sending thread is running (the `job_id` the worker appended to its log keys), else the
SNS message id. The runner clears the outbox at start, so it holds what this run sent.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("conveyor_local")
OPERATIONS = ("sesv2.SendEmail", "ses.SendEmail", "ses.SendRawEmail", "sns.Publish")
SUFFIXES = (".eml", ".sms.txt")
_KEY = "conveyor_local_outbox"
_active: Outbox | None = None  # the installed outbox; sessions created while it was installed keep the hooks


def _remember(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if _active is None:
        return
    service = model.service_model.service_name
    if service == "sns" and not params.get("PhoneNumber"):
        return  # topic and endpoint publishes are not messages to a person
    params = dict(params)
    if service == "sns":
        params["_job_id"] = _current_job_id()
    context[_KEY] = (service, model.name, params)


def _current_job_id() -> str | None:
    """The job the calling thread runs, as the worker appended it to its log keys (None outside a job)."""
    try:
        from conveyor.platform.observability import logger
    except ImportError:
        return None
    job_id = logger.get_current_keys().get("job_id")
    return str(job_id) if job_id else None


def _sent(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    request = context.pop(_KEY, None)
    outbox = _active
    if outbox is None or request is None or http_response is None or http_response.status_code >= 300:
        return
    service, operation, params = request
    try:
        path = outbox.write(service, operation, params, str(parsed.get("MessageId", "")))
    except (OSError, ValueError, TypeError, KeyError) as exc:  # the send succeeded; only our copy failed
        log.warning("could not write the outbox copy of an email: %s", exc)
        return
    log.info("%s sent: %s", "SMS" if service == "sns" else "email", _shown(path))


def _shown(path: Path) -> str:
    """Relative to the working directory when under it (as the banner shows it), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


HOOKS = [
    (f"{stage}.{operation}", handler)
    for operation in OPERATIONS
    for stage, handler in (("before-parameter-build", _remember), ("after-call", _sent))
]


class Outbox:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    # --- the hook ----------------------------------------------------------------------------------
    def install(self) -> Outbox:
        """Copy emails here from now on (clients created before this call are not hooked: install first)."""
        global _active
        from botocore.handlers import BUILTIN_HANDLERS

        self.directory.mkdir(parents=True, exist_ok=True)
        BUILTIN_HANDLERS.extend(h for h in HOOKS if h not in BUILTIN_HANDLERS)
        _active = self
        return self

    def clear(self) -> int:
        """Remove what an earlier run left (emails and SMS only); returns how many files went."""
        removed = 0
        for path in self.directory.glob("*"):
            if path.is_file() and path.name.endswith(SUFFIXES):
                path.unlink()
                removed += 1
        return removed

    def uninstall(self) -> None:
        """Stop copying. Hooks already on existing clients stay, idle, since no outbox is active."""
        global _active
        from botocore.handlers import BUILTIN_HANDLERS

        if _active is self:
            _active = None
        for hook in HOOKS:
            if hook in BUILTIN_HANDLERS:
                BUILTIN_HANDLERS.remove(hook)

    # --- the .eml ----------------------------------------------------------------------------------
    def write(self, service: str, operation: str, params: dict[str, Any], message_id: str) -> Path:
        if service == "sns":
            name, suffix, raw = params.get("_job_id") or message_id or "sms", ".sms.txt", sms(params, message_id)
        else:
            tags = {t.get("Name"): t.get("Value") for t in params.get("EmailTags") or params.get("Tags") or []}
            name, suffix = tags.get("job_id") or message_id or "email", ".eml"
            raw = message(service, operation, params, message_id, tags)
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))
        with self._lock:
            path, n = self.directory / f"{stem}{suffix}", 1
            while path.exists():  # a job that sends again (several messages, or a retry) keeps every copy
                n += 1
                path = self.directory / f"{stem}-{n}{suffix}"
            temporary = path.with_name(path.name + ".part")
            temporary.write_bytes(raw)
            os.replace(temporary, path)
        return path


def sms(params: dict[str, Any], message_id: str) -> bytes:
    """An SNS SMS as a few header lines, a blank line and the text."""
    lines = [f"To: {params.get('PhoneNumber', '')}", f"Date: {format_datetime(datetime.now(UTC))}"]
    if message_id:
        lines.append(f"X-SNS-Message-ID: {message_id}")
    if params.get("_job_id"):
        lines.append(f"X-Job-ID: {params['_job_id']}")
    for name, value in sorted((params.get("MessageAttributes") or {}).items()):
        lines.append(f"X-SNS-Attribute-{name}: {value.get('StringValue', '')}")
    return ("\n".join(lines) + "\n\n" + str(params.get("Message", "")) + "\n").encode()


def message(service: str, operation: str, params: dict[str, Any], message_id: str, tags: dict[str, Any]) -> bytes:
    """The request as an RFC 5322 message, with the tags and the SES message id as X- headers."""
    if operation == "SendRawEmail":
        return _bytes(params["RawMessage"]["Data"])
    content = params.get("Content") or {}
    if "Raw" in content:
        return _bytes(content["Raw"]["Data"])
    if service == "sesv2":
        sender = params.get("FromEmailAddress", "")
        simple = content.get("Simple") or {}
        subject = (simple.get("Subject") or {}).get("Data", "")
        body = simple.get("Body") or {}
        if "Template" in content:
            template = content["Template"]
            body = {
                "Text": {
                    "Data": f"(SES template {template.get('TemplateName') or template.get('TemplateArn')} "
                    f"with data {template.get('TemplateData', '{}')})\n"
                }
            }
    else:
        sender = params.get("Source", "")
        subject = ((params.get("Message") or {}).get("Subject") or {}).get("Data", "")
        body = (params.get("Message") or {}).get("Body") or {}
    destination = params.get("Destination") or {}

    email = EmailMessage()
    email["From"] = sender
    for header, key in (("To", "ToAddresses"), ("Cc", "CcAddresses"), ("Bcc", "BccAddresses")):
        if destination.get(key):
            email[header] = ", ".join(destination[key])
    if params.get("ReplyToAddresses"):
        email["Reply-To"] = ", ".join(params["ReplyToAddresses"])
    email["Subject"] = subject
    email["Date"] = format_datetime(datetime.now(UTC))
    if message_id:
        email["Message-ID"] = f"<{message_id}@email.amazonses.com>"
        email["X-SES-Message-ID"] = message_id
    for name, value in tags.items():
        email[f"X-SES-Tag-{name}"] = str(value)
    text, html = (body.get("Text") or {}).get("Data"), (body.get("Html") or {}).get("Data")
    if text:
        email.set_content(text)
        if html:
            email.add_alternative(html, subtype="html")
    elif html:
        email.set_content(html, subtype="html")
    else:
        email.set_content("")
    return bytes(email)


def _bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes | bytearray) else str(data).encode()

"""The `email.send` job type: one email through Amazon SES v2, from a shipped template or inline content."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from conveyor.email.ses import send_via_ses
from conveyor.email.templates import render, template_names
from conveyor.jobs import JobContext, RetryPolicy, job_type

MAX_RECIPIENTS = 50  # SES's limit per message, To + Cc + Bcc together


class EmailPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[EmailStr] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    cc: list[EmailStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[EmailStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    reply_to: list[EmailStr] = Field(default_factory=list, max_length=10)
    subject: str | None = Field(default=None, min_length=1, max_length=998)
    template: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    text: str | None = Field(default=None, min_length=1)
    html: str | None = Field(default=None, min_length=1)

    @field_validator("reply_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str | None) -> str | None:
        if value is not None and value not in template_names():
            raise ValueError(f"unknown template; available: {', '.join(sorted(template_names()))}")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> EmailPayload:
        if len(self.to) + len(self.cc) + len(self.bcc) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients in to, cc and bcc together")
        if self.template is None and not (self.subject and (self.text or self.html)):
            raise ValueError("give a template, or a subject with text and/or html")
        return self


@job_type("email.send", queue="email", payload=EmailPayload, retry=RetryPolicy(max_attempts=3, base_seconds=15))
def send_email(payload: EmailPayload, job: JobContext) -> dict[str, Any]:
    if payload.template:
        rendered = render(payload.template, payload.context)
        subject, text, html = payload.subject or rendered.subject, rendered.text, rendered.html
    else:
        subject, text, html = payload.subject, payload.text, payload.html
    message_id = send_via_ses(
        to=payload.to,
        cc=payload.cc,
        bcc=payload.bcc,
        reply_to=payload.reply_to,
        subject=subject or "",
        text=text,
        html=html,
        job=job,
    )
    return {"message_id": message_id}

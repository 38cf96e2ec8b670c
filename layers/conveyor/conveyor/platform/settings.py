"""Runtime settings: one model, read from the environment template.yaml gives each function.

Validated once per process (cold start); a missing or malformed variable fails with its name.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class SettingsError(RuntimeError):
    """The environment is missing or has a malformed setting (a deployment mistake, not a client one)."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    jobs_table: str = Field(alias="JOBS_TABLE", min_length=1)
    api_keys_table: str = Field(alias="API_KEYS_TABLE", min_length=1)
    # Optional so functions and tests that never touch reminders need not set it; reminders' storage refuses
    # to run without it (conveyor.platform.dynamo.bind_to), naming the variable.
    reminders_table: str | None = Field(default=None, alias="REMINDERS_TABLE", min_length=1)
    # The shared get-or-set cache (conveyor.platform.cache); only functions that serve cached reads have it.
    cache_table: str | None = Field(default=None, alias="CACHE_TABLE", min_length=1)
    # Job family -> queue URL, e.g. {"email": "https://sqs.../conveyor-email"}.
    queues: dict[str, str] = Field(alias="QUEUES")
    email_from: str = Field(alias="EMAIL_FROM", min_length=3)
    environment: str = Field(default="dev", alias="ENVIRONMENT")
    completed_retention_days: int = Field(default=7, alias="COMPLETED_RETENTION_DAYS", ge=1)
    failed_retention_days: int = Field(default=30, alias="FAILED_RETENTION_DAYS", ge=1)
    sentry_dsn: str | None = Field(default=None, alias="SENTRY_DSN")
    # Or the DSN kept out of the template: an SSM parameter (SecureString) or a Secrets Manager secret name.
    sentry_dsn_parameter: str | None = Field(default=None, alias="SENTRY_DSN_PARAMETER")
    sentry_dsn_secret: str | None = Field(default=None, alias="SENTRY_DSN_SECRET")
    release: str | None = Field(default=None, alias="RELEASE")
    # Webhooks: their table, the KMS key their signing secrets are encrypted under, and whether outbound HTTP
    # may reach plain http and private addresses (only the local stack allows that; metadata never).
    webhooks_table: str | None = Field(default=None, alias="WEBHOOKS_TABLE", min_length=1)
    webhook_secrets_key: str | None = Field(default=None, alias="WEBHOOK_SECRETS_KEY", min_length=1)
    outbound_allow_private: bool = Field(default=False, alias="OUTBOUND_ALLOW_PRIVATE")
    # Tables whose streams carry domain events: template logical name -> table name (the events function's).
    event_tables: dict[str, str] = Field(default_factory=dict, alias="EVENT_TABLES")
    # The API's pause/resume and queue overview act on this function's event source mappings.
    worker_function: str | None = Field(default=None, alias="WORKER_FUNCTION")
    # The dashboard signs its session cookies with this Secrets Manager secret (ARN or name), read on first use.
    dashboard_session_secret: str | None = Field(default=None, alias="DASHBOARD_SESSION_SECRET")
    # Empty when deployed (botocore then uses AWS); the local emulator's address under `sam local invoke`.
    endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")
    # Set to "true" by the SAM CLI in its local containers.
    sam_local: bool = Field(default=False, alias="AWS_SAM_LOCAL")

    @model_validator(mode="after")
    def _never_real_aws_from_sam_local(self) -> Settings:
        """`sam local invoke` without --env-vars leaves AWS_ENDPOINT_URL empty and passes the shell's credentials
        into the container: a "local test" would then read and write a real account. Refused at cold start."""
        if self.sam_local and not self.endpoint_url:
            raise ValueError(
                "AWS_ENDPOINT_URL is empty under `sam local`: pass --env-vars .local/env.json (written by make run) "
                "so the function uses the local emulator, not the AWS account of your shell's credentials"
            )
        return self

    @field_validator("queues", "event_tables", mode="before")
    @classmethod
    def _parse_json_object(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON object of name -> name ({exc})") from exc
        return value

    @field_validator(
        "sentry_dsn",
        "sentry_dsn_parameter",
        "sentry_dsn_secret",
        "release",
        "worker_function",
        "endpoint_url",
        "webhooks_table",
        "webhook_secrets_key",
        "cache_table",
        "dashboard_session_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None

    def queue_url(self, family: str) -> str:
        try:
            return self.queues[family]
        except KeyError:
            raise SettingsError(f"QUEUES has no queue for job family {family!r}") from None

    def family_for_queue_arn(self, arn: str) -> str | None:
        """The job family whose queue has this ARN (queue URLs and ARNs end with the same queue name)."""
        name = arn.rsplit(":", 1)[-1]
        for family, url in self.queues.items():
            if url.rstrip("/").rsplit("/", 1)[-1] == name:
                return family
        return None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    try:
        return Settings.model_validate(dict(os.environ if environ is None else environ))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid environment: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (each handler calls it at cold start)."""
    return load_settings()

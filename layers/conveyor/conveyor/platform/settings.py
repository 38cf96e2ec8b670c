"""Runtime settings, read from the environment template.yaml gives each function.

Each function gets only the variables it uses (template.yaml: `Globals` hold what every function reads, each
function's `Environment` the rest). So there are two views of the same variables:
  - a function's settings model (`ApiSettings`, `WorkerSettings`...): what that function requires, validated
    once at cold start by its handler (`init_settings`); a missing or malformed variable fails with its name.
  - `Settings` (`get_settings()`): every variable, for the code shared by all functions. Variables the
    environment has are validated; reading one it lacks raises SettingsError naming it (a function was not
    given what its code reads: the template and the function's model must say so).
Models are built from sections (one per resource), so a variable is declared, typed and documented once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class SettingsError(RuntimeError):
    """The environment is missing or has a malformed setting (a deployment mistake, not a client one)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


def _json_object(value: object, shape: str) -> object:
    """A variable holding a JSON object (QUEUES, EVENT_TABLES), parsed; a malformed one names its shape."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object of {shape} ({exc})") from exc
    return value


# --- sections: one per resource or concern ---------------------------------------------------------------
class Observability(_Section):
    """Every function: where it runs and where errors go (Sentry is off without a DSN)."""

    environment: str = Field(default="dev", alias="ENVIRONMENT")
    sentry_dsn: str | None = Field(default=None, alias="SENTRY_DSN")
    # Or the DSN kept out of the template: an SSM parameter (SecureString) or a Secrets Manager secret name.
    sentry_dsn_parameter: str | None = Field(default=None, alias="SENTRY_DSN_PARAMETER")
    sentry_dsn_secret: str | None = Field(default=None, alias="SENTRY_DSN_SECRET")
    release: str | None = Field(default=None, alias="RELEASE")
    # Empty when deployed (botocore then uses AWS); the local emulator's address under `sam local invoke`.
    endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")
    # Set to "true" by the SAM CLI in its local containers.
    sam_local: bool = Field(default=False, alias="AWS_SAM_LOCAL")

    @model_validator(mode="after")
    def _never_real_aws_from_sam_local(self) -> Observability:
        """`sam local invoke` without --env-vars leaves AWS_ENDPOINT_URL empty and passes the shell's credentials
        into the container: a "local test" would then read and write a real account. Refused at cold start."""
        if self.sam_local and not self.endpoint_url:
            raise ValueError(
                "AWS_ENDPOINT_URL is empty under `sam local`: pass --env-vars .local/env.json (written by make run) "
                "so the function uses the local emulator, not the AWS account of your shell's credentials"
            )
        return self

    @field_validator(
        "sentry_dsn", "sentry_dsn_parameter", "sentry_dsn_secret", "release", "endpoint_url", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


class JobsTable(_Section):
    jobs_table: str = Field(alias="JOBS_TABLE", min_length=1)
    # Finished jobs expire (TTL) this many days after they finish (template parameters of the same names).
    completed_retention_days: int = Field(default=7, alias="COMPLETED_RETENTION_DAYS", ge=1)
    failed_retention_days: int = Field(default=30, alias="FAILED_RETENTION_DAYS", ge=1)


class Queues(_Section):
    # Job family -> queue URL, e.g. {"email": "https://sqs.../conveyor-email"}.
    queues: dict[str, str] = Field(alias="QUEUES")

    @field_validator("queues", mode="before")
    @classmethod
    def _parse_queues(cls, value: object) -> object:
        return _json_object(value, "family -> queue URL")

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


class ApiKeysTable(_Section):
    api_keys_table: str = Field(alias="API_KEYS_TABLE", min_length=1)


class RemindersTable(_Section):
    reminders_table: str = Field(alias="REMINDERS_TABLE", min_length=1)


class ProcessesTable(_Section):
    # Long-running processes: their records, counter shards, batch ledger and parked jobs (conveyor.processes).
    processes_table: str = Field(alias="PROCESSES_TABLE", min_length=1)


class SyncTable(_Section):
    # CRM sync: connections, their sync runs, the OAuth token lease (conveyor.sync.repository).
    sync_table: str = Field(alias="SYNC_TABLE", min_length=1)


class CrmCredentials(_Section):
    # The KMS key CRM credentials and OAuth tokens are encrypted under (conveyor.sync.vault).
    crm_credentials_key: str = Field(alias="CRM_CREDENTIALS_KEY", min_length=1)


class ReportsStorage(_Section):
    # Reports: their table, the bucket their files stream into, and how long files are kept (the bucket's
    # lifecycle rule says the same).
    reports_table: str = Field(alias="REPORTS_TABLE", min_length=1)
    reports_bucket: str = Field(alias="REPORTS_BUCKET", min_length=1)
    report_retention_days: int = Field(default=7, alias="REPORT_RETENTION_DAYS", ge=1)


class ReportDelivery(_Section):
    # The public base URL the "report ready" email links to (a custom domain); else the URL the report was
    # requested through (conveyor.reports.service.download_link).
    public_api_url: str | None = Field(default=None, alias="PUBLIC_API_URL")
    # A copy of each finished report lands in this directory (the local stack's .local/reports/; never deployed).
    reports_local_copy_dir: str | None = Field(default=None, alias="REPORTS_LOCAL_COPY_DIR")

    @field_validator("public_api_url", "reports_local_copy_dir", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


class EmailSender(_Section):
    email_from: str = Field(alias="EMAIL_FROM", min_length=3)


class CacheTable(_Section):
    # The shared get-or-set cache (conveyor.platform.cache); only functions that serve cached reads have it.
    cache_table: str = Field(alias="CACHE_TABLE", min_length=1)


class WorkerControl(_Section):
    # The API's pause/resume and queue overview act on this function's event source mappings.
    worker_function: str = Field(alias="WORKER_FUNCTION", min_length=1)


class WebhooksTable(_Section):
    # Webhook subscriptions, deliveries and their rate slots (conveyor.webhooks.repository).
    webhooks_table: str = Field(alias="WEBHOOKS_TABLE", min_length=1)


class WebhookSecrets(_Section):
    # The KMS key webhook signing secrets are encrypted under: the API encrypts, the worker decrypts to sign.
    webhook_secrets_key: str = Field(alias="WEBHOOK_SECRETS_KEY", min_length=1)


class Outbound(_Section):
    # Whether outbound HTTP (webhooks) may reach plain http and private addresses: only the local stack allows
    # it; cloud metadata addresses never.
    outbound_allow_private: bool = Field(default=False, alias="OUTBOUND_ALLOW_PRIVATE")


class EventTables(_Section):
    # Tables whose streams carry domain events: template logical name -> table name (the events function's).
    event_tables: dict[str, str] = Field(alias="EVENT_TABLES")

    @field_validator("event_tables", mode="before")
    @classmethod
    def _parse_event_tables(cls, value: object) -> object:
        return _json_object(value, "template logical name -> table name")


class DashboardSessions(_Section):
    # The dashboard signs its session cookies with this Secrets Manager secret (ARN or name), read on first use;
    # its sessions are items of the API keys table.
    dashboard_session_secret: str = Field(alias="DASHBOARD_SESSION_SECRET", min_length=1)


# --- each function's model: the sections it requires ---------------------------------------------------
class ApiSettings(
    Observability,
    JobsTable,
    Queues,
    RemindersTable,
    CacheTable,
    WorkerControl,
    WebhooksTable,
    WebhookSecrets,
    Outbound,
    ApiKeysTable,
    DashboardSessions,
    ProcessesTable,
    SyncTable,
    CrmCredentials,
    ReportsStorage,
):
    """The API: jobs (enqueue checks the job's queue exists), reminders, admin (queues, pause/resume), webhook
    subscriptions (secrets encrypted, URLs vetted when saved), the dashboard (sign-in with a key, sessions),
    processes (start, read, control), CRM connections (credentials encrypted, webhooks verified), reports (request,
    read, a presigned download link)."""


class AuthorizerSettings(Observability, ApiKeysTable):
    """The authorizer: API keys only."""


class DispatcherSettings(Observability, Queues):
    """The dispatcher: stream records in, queue URLs out."""


class WorkerSettings(
    Observability,
    JobsTable,
    Queues,
    EmailSender,
    RemindersTable,
    WebhooksTable,
    WebhookSecrets,
    Outbound,
    ProcessesTable,
    SyncTable,
    CrmCredentials,
    ReportsStorage,
    ReportDelivery,
):
    """The worker: claims and settles jobs, delays messages, sends email, delivers reminders and webhooks, runs
    processes' batches and CRM syncs (decrypting the connection's credentials), streams reports into S3."""


class SchedulerSettings(Observability, JobsTable, Queues, RemindersTable, WebhooksTable, ProcessesTable, SyncTable):
    """The scheduler: releases and recovers jobs, plans and enqueues reminders, sends overdue webhook deliveries
    again (as jobs), revives silent processes, starts scheduled CRM delta syncs."""


class EventsSettings(Observability, JobsTable, Queues, WebhooksTable, EventTables):
    """The events function: the tables' streams -> domain events -> webhook deliveries (each one a job)."""


class Settings(
    Observability,
    JobsTable,
    Queues,
    ApiKeysTable,
    RemindersTable,
    EmailSender,
    CacheTable,
    WorkerControl,
    WebhooksTable,
    WebhookSecrets,
    Outbound,
    EventTables,
    DashboardSessions,
    ProcessesTable,
    SyncTable,
    CrmCredentials,
    ReportsStorage,
    ReportDelivery,
):
    """Every variable (`get_settings()`); those the environment lacks are absent and raise when read."""

    if not TYPE_CHECKING:  # at type-check time a misspelt setting stays an error

        def __getattr__(self, name: str) -> Any:
            field = type(self).model_fields.get(name)
            if field is not None:
                raise SettingsError(
                    f"invalid environment: {field.alias} is not set (template.yaml gives it only to the functions "
                    "whose settings model requires it, and this code path reads it)"
                )
            return super().__getattr__(name)  # pydantic's own lookup (private attributes)


# Every section, as Settings lists them (one list to keep).
SECTIONS: tuple[type[_Section], ...] = tuple(
    base for base in Settings.__mro__[1:] if issubclass(base, _Section) and base is not _Section
)
M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], environ: Mapping[str, str]) -> M:
    try:
        return model.model_validate(dict(environ))
    except ValidationError as exc:  # locations are the variables' names (the fields' aliases)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid environment: {problems}") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """`Settings` from `environ` (default: the process environment): each section the environment has a
    variable of is validated whole (a malformed or half-given one fails, naming the variables); sections it has
    none of are absent, and reading their fields raises SettingsError naming the variable."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for section in SECTIONS:
        aliases = {f.alias for f in section.model_fields.values()}
        if aliases & env.keys() or not any(f.is_required() for f in section.model_fields.values()):
            values.update(dict(_validate(section, env)))
    settings = Settings.model_construct(**values)
    for name in set(Settings.model_fields) - values.keys():
        settings.__dict__.pop(name, None)  # absent: __getattr__ names the variable when code reads it
    return settings


def init_settings(model: type[M], environ: Mapping[str, str] | None = None) -> M:
    """A function's cold start: its environment validated against its model; a missing variable is named."""
    validated = _validate(model, os.environ if environ is None else environ)
    get_settings.cache_clear()
    return validated


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()

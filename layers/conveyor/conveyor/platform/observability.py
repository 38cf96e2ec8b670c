"""Logging, metrics and error reporting: one place, shared by every function.

Powertools reads its service name and metrics namespace from POWERTOOLS_* variables set in template.yaml.
Metrics are EMF documents (`count`, `timing`): one line per call, or, inside `metrics_batched()` (the worker's
batch), one document per job type when the block ends. Tracing is Lambda's own X-Ray segment
(`Tracing: Active`), so neither a Powertools Metrics nor a Tracer object exists (Tracer alone cost ~100 ms of
cold start).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from conveyor.platform.settings import Observability

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint


class ScrubbingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log lines with every string value scrubbed as Sentry events are (emails, phone numbers,
    API keys masked): the message, extra keys and the exception text alike. Keys and structure are kept."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(self.scrub_log(log))

    @staticmethod
    def scrub_log(log: Any) -> Any:
        if isinstance(log, str):
            return scrub_text(log)
        if isinstance(log, dict):
            return {k: ScrubbingFormatter.scrub_log(v) for k, v in log.items()}
        if isinstance(log, list | tuple):
            return [ScrubbingFormatter.scrub_log(v) for v in log]
        return log


logger = Logger(logger_formatter=ScrubbingFormatter())

__all__ = [
    "MetricUnit",
    "count",
    "cron_checkin",
    "init_sentry",
    "logger",
    "metrics_batched",
    "report_exception",
    "report_job_failure",
    "scrub_event",
    "timing",
]


def count(name: str, job_type: str, value: float = 1) -> None:
    """A counter with the job type as its dimension."""
    _metric(name, MetricUnit.Count, value, ("job_type", job_type))


def timing(name: str, job_type: str, milliseconds: float) -> None:
    _metric(name, MetricUnit.Milliseconds, milliseconds, ("job_type", job_type))


def count_by(name: str, dimension: tuple[str, str], value: float = 1) -> None:
    """A counter with another dimension than the job type (e.g. the cache's statistics)."""
    _metric(name, MetricUnit.Count, value, dimension)


# The EMF documents being gathered by `metrics_batched`, one per dimension (name, value); None outside it
_batch: ContextVar[dict[tuple[str, str], AmazonCloudWatchEMFProvider] | None] = ContextVar(
    "metrics_batch", default=None
)


@contextmanager
def metrics_batched() -> Iterator[None]:
    """Inside, `count` and `timing` are gathered and written when the block ends, one EMF document per job type
    with every value of each metric (CloudWatch records each; Powertools writes a document early at 100 of
    them): a worker's batch of ten email jobs writes one line where it wrote thirty."""
    documents: dict[tuple[str, str], AmazonCloudWatchEMFProvider] = {}
    token = _batch.set(documents)
    try:
        yield
    finally:
        _batch.reset(token)
        for document in documents.values():
            document.flush_metrics()


def _metric(name: str, unit: MetricUnit, value: float, dimension: tuple[str, str]) -> None:
    """One EMF document per dimension, written now, or when the `metrics_batched` block around this ends."""
    documents = _batch.get()
    document = documents.get(dimension) if documents is not None else None
    if document is None:
        document = AmazonCloudWatchEMFProvider()
        document.add_dimension(name=dimension[0], value=dimension[1])
        if documents is not None:
            documents[dimension] = document
    document.add_metric(name=name, unit=unit, value=value)
    if documents is None:
        document.flush_metrics()


# --- Sentry ------------------------------------------------------------------------------------------
# On only when a DSN is configured (SENTRY_DSN, or an SSM parameter / Secrets Manager secret read once at cold
# start). sentry_sdk is imported only then, and with no auto-enabled integrations, so cold starts stay lean.
_sentry_on = False
SCHEDULER_MONITOR = "conveyor-scheduler"
_FILTERED = "[Filtered]"

# Field names whose values never leave the process: credentials, and free text that may hold clinical data.
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|auth|cookie|session|credential|private[-_]?key|"
    r"signature|dsn|ssn|note|diagnos|treatment|medication|prescription|symptom|clinical|allerg|medical",
    re.IGNORECASE,
)
# Any script: the API accepts internationalised addresses (josé.müller@bücher.de), so \w, not [A-Za-z0-9].
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\w{2,}")
_API_KEY = re.compile(r"cvk_[a-z0-9]{20,}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+")
# Phone-shaped (7-15 digits, checked by _phone): international with + or 00 (0049 30 1234567), North American
# (555) 123-4567, French pairs 01 23 45 67 89, national trunk 0..., or a bare run of digits (5551234567,
# 447700900123). Not inside words, ids, decimals, dates (dashes join at most NANP-shaped groups) or URLs/ARNs.
_PHONE = re.compile(
    r"(?<![\w.+/-])(?:\+\d[\d\s().-]{5,18}\d"
    r"|00\d{1,3}(?:\s?\d{2,4}){2,5}"
    r"|\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}"
    r"|0\d(?:[\s.]\d{2}){4}"
    r"|0\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}"
    r"|\d{7,15})(?![\w:/-]|\.\d)"
)
# Parts of an event that are the SDK's own bookkeeping, not data: left as they are.
_UNTOUCHED = frozenset(
    {
        "sdk",
        "stacktrace",
        "timestamp",
        "start_timestamp",
        "event_id",
        "release",
        "environment",
        "fingerprint",
        "trace_id",
        "span_id",
        "parent_span_id",
        "debug_meta",
        "modules",
        "level",
        "platform",
        "type",
        "mechanism",
        "monitor_config",
        "check_in_id",
        "monitor_slug",
    }
)


def traces_sample_rate(environment: str) -> float:
    """Every transaction outside production; a tenth in production."""
    return 0.1 if environment in ("production", "prod") else 1.0


def init_sentry(settings: Observability, *, transport: Any = None) -> bool:
    """Start Sentry if a DSN is configured (once per process). `transport` lets tests capture without network."""
    global _sentry_on
    if _sentry_on:
        return True
    dsn = _sentry_dsn(settings)
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.aws_lambda import AwsLambdaIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=settings.release,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[AwsLambdaIntegration(timeout_warning=True)],
        # send_default_pii stays unset (deprecated; unset = no PII: no user IPs, no request bodies)
        include_local_variables=False,  # a frame's locals may hold a job's payload
        max_request_body_size="never",
        traces_sample_rate=traces_sample_rate(settings.environment),
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, "x-api-key", "api-key", "notes", "diagnosis", "treatment"], recursive=True
        ),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        transport=transport,
    )
    _sentry_on = True
    return True


def _sentry_dsn(settings: Observability) -> str | None:
    if settings.sentry_dsn:
        return settings.sentry_dsn
    if not (settings.sentry_dsn_parameter or settings.sentry_dsn_secret):
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    from conveyor.platform.aws import client

    try:
        if settings.sentry_dsn_parameter:
            found = client("ssm").get_parameter(Name=settings.sentry_dsn_parameter, WithDecryption=True)
            return str(found["Parameter"]["Value"]).strip() or None
        value = str(client("secretsmanager").get_secret_value(SecretId=settings.sentry_dsn_secret)["SecretString"])
        return str(json.loads(value)["dsn"]) if value.lstrip().startswith("{") else value.strip() or None
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        # Error reporting must not take the function down with it: say so loudly and run without it.
        logger.error(
            "Sentry DSN could not be read; running without Sentry",
            extra={
                "parameter": settings.sentry_dsn_parameter,
                "secret": settings.sentry_dsn_secret,
                "problem": type(exc).__name__,
            },
        )
        return None


def scrub_event(event: Event, hint: Hint) -> Event | None:
    """before_send: drop connection-reset noise; blank sensitive fields; mask emails, phones and API keys."""
    if _is_connection_reset(event, hint):
        return None
    scrubbed: Event = _scrub(event)
    return scrubbed


def _scrub(value: Any, key: str = "") -> Any:
    if key in _UNTOUCHED:
        return value
    if key and _SENSITIVE_KEY.search(key):
        return _FILTERED if value not in (None, "", [], {}) else value
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Header lists come as [name, value] pairs: scrub by the name.
        if len(value) == 2 and isinstance(value[0], str) and _SENSITIVE_KEY.search(value[0]):
            return [value[0], _FILTERED]
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_text(text: str) -> str:
    text = _API_KEY.sub("[api-key]", text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15:
        return text
    return "[phone]"


def _is_connection_reset(event: Mapping[str, Any], hint: Mapping[str, Any]) -> bool:
    exc = (hint.get("exc_info") or (None, None, None))[1]
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ConnectionResetError) or "connection reset" in str(exc).lower():
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    for value in (event.get("exception") or {}).get("values") or []:
        if value.get("type") == "ConnectionResetError" or "connection reset" in str(value.get("value", "")).lower():
            return True
    return False


def report_exception(exc: BaseException, *, tags: dict[str, Any]) -> None:
    """Send a swallowed exception (e.g. a failed record in a batch) to Sentry with searchable tags."""
    if not _sentry_on:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, str(value))
        sentry_sdk.capture_exception(exc)


def report_job_failure(
    error_type: str, reason: str, *, tags: dict[str, Any], final: bool, exc: BaseException | None = None
) -> None:
    """A job attempt failed: `final` (the job is failed) or not (it will be retried). Tagged with the job's
    id, type, tenant and attempt so Sentry can search and group by them; grouped by job type + error type."""
    if not _sentry_on:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, str(value))
        scope.set_tag("outcome", "failed" if final else "retrying")
        scope.set_tag("error_type", error_type)
        scope.level = "error" if final else "warning"
        if exc is not None:
            sentry_sdk.capture_exception(exc)
        else:
            scope.fingerprint = ["job-failure", str(tags.get("job_type", "")), error_type]
            scope.set_extra("reason", reason)
            sentry_sdk.capture_message(f"job {'failed' if final else 'attempt failed'}: {error_type}")


@contextmanager
def cron_checkin(slug: str = SCHEDULER_MONITOR) -> Iterator[None]:
    """Report a run as a Sentry cron check-in (in progress, then ok or error); nothing when Sentry is off."""
    if not _sentry_on:
        yield
        return
    from sentry_sdk.crons import monitor

    config = {
        "schedule": {"type": "interval", "value": 1, "unit": "minute"},
        "checkin_margin": 2,
        "max_runtime": 2,
        "timezone": "UTC",
    }
    with monitor(monitor_slug=slug, monitor_config=config):  # type: ignore[arg-type]
        yield

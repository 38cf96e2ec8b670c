"""Logging, metrics, tracing and error reporting: one place, shared by every function.

Powertools reads its service name and metrics namespace from POWERTOOLS_* variables set in template.yaml.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from conveyor.settings import Settings

logger = Logger()
metrics = Metrics()


def __getattr__(name: str) -> Any:
    """`tracer` is made on first use: Tracer() imports the X-Ray SDK and, inside Lambda, patches botocore, sqlite3,
    httplib... (~100 ms of cold start, measured by `make bench`). Lambda's own X-Ray segment needs none of it."""
    if name == "tracer":
        global tracer
        tracer = Tracer()
        return tracer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MetricUnit", "count", "init_sentry", "logger", "metrics", "report_exception", "timing", "tracer"]


def count(name: str, job_type: str, value: float = 1) -> None:
    """A counter with the job type as its dimension (one EMF line; a batch mixes job types)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        metric.add_dimension(name="job_type", value=job_type)


def timing(name: str, job_type: str, milliseconds: float) -> None:
    with single_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds) as metric:
        metric.add_dimension(name="job_type", value=job_type)


_sentry_on = False


def init_sentry(settings: Settings) -> None:
    """Sentry only when a DSN is configured; no auto-enabled integrations (they cost cold start)."""
    global _sentry_on
    if not settings.sentry_dsn or _sentry_on:
        return
    import sentry_sdk
    from sentry_sdk.integrations.aws_lambda import AwsLambdaIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[AwsLambdaIntegration(timeout_warning=True)],
        send_default_pii=False,
    )
    _sentry_on = True


def report_exception(exc: BaseException, *, tags: dict[str, Any]) -> None:
    """Send a swallowed exception (e.g. a failed record in a batch) to Sentry with searchable tags."""
    if not _sentry_on:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, value)
        sentry_sdk.capture_exception(exc)

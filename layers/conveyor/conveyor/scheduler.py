"""The one-minute scheduler: every sweep that moves due work forward. Each sweep is idempotent."""

from __future__ import annotations

from datetime import datetime

from conveyor import capabilities
from conveyor.platform.clock import utcnow
from conveyor.platform.observability import cron_checkin, logger, report_exception

capabilities.install()  # sweeps enqueue jobs, which the registry validates


class SweepsFailed(RuntimeError):
    """One or more sweeps raised; the others still ran. Fails the run (and its cron check-in)."""


def run(now: datetime | None = None) -> dict[str, int]:
    """Run every sweep, each on its own: one failing sweep does not stop the others. Reported as a check-in."""
    at = now or utcnow()
    with cron_checkin():
        results: dict[str, int] = {}
        failed: list[str] = []
        for sweep in capabilities.sweeps():
            try:
                results[sweep.__name__] = sweep(at)
            except Exception as exc:  # noqa: BLE001 - reported here, then the run fails as a whole below
                logger.exception("sweep failed", extra={"sweep": sweep.__name__})
                report_exception(exc, tags={"sweep": sweep.__name__})
                failed.append(sweep.__name__)
        if failed:
            raise SweepsFailed(f"sweeps failed: {', '.join(failed)} (completed: {results})")
    return results

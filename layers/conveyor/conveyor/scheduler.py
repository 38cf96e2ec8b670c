"""The one-minute scheduler: every sweep that moves due work forward. Each sweep is idempotent.

Time is shared: a run has the function's remaining time less MARGIN_SECONDS. Each sweep, in list order, gets
an equal share of what is left (a sweep that finishes early leaves its time to the ones after it); then the
sweeps that ran out of time split whatever is still left. A sweep stops at its deadline and leaves the rest in
its index, so a backlog (thousands of due jobs) drains over successive runs instead of starving the others.
"""

from __future__ import annotations

from datetime import datetime

from conveyor import capabilities
from conveyor.platform.clock import Deadline, utcnow
from conveyor.platform.observability import cron_checkin, logger, report_exception

capabilities.install()  # sweeps enqueue jobs, which the registry validates

# Kept back from the function's time: the item in flight when a deadline passes, the check-in, the response.
MARGIN_SECONDS = 5.0
# A run called without a Lambda context (a test, a script): the template's Timeout (60 s).
DEFAULT_SECONDS = 60.0


class SweepsFailed(RuntimeError):
    """One or more sweeps raised; the others still ran. Fails the run (and its cron check-in)."""


def run(now: datetime | None = None, *, seconds: float | None = None) -> dict[str, int]:
    """Run every sweep within `seconds` (the function's remaining time), each on its own: one failing sweep does
    not stop the others. Reported as a check-in. Returns how much each sweep did."""
    at = now or utcnow()
    run_deadline = Deadline((DEFAULT_SECONDS if seconds is None else seconds) - MARGIN_SECONDS)
    sweeps = capabilities.sweeps()
    with cron_checkin():
        results = {sweep.__name__: 0 for sweep in sweeps}
        failed: list[str] = []
        waiting = list(sweeps)
        for _ in range(2):  # the fair shares, then what is left for the sweeps that ran out of time
            cut_short = []
            for position, sweep in enumerate(waiting):
                share = Deadline(run_deadline.remaining() / (len(waiting) - position))
                try:
                    results[sweep.__name__] += sweep(at, share)
                except Exception as exc:  # noqa: BLE001 - reported here, then the run fails as a whole below
                    logger.exception("sweep failed", extra={"sweep": sweep.__name__})
                    report_exception(exc, tags={"sweep": sweep.__name__})
                    failed.append(sweep.__name__)
                    continue
                if share.cut_short:
                    cut_short.append(sweep)
            waiting = cut_short
            if not waiting or run_deadline.expired():
                break
        for sweep in waiting:
            logger.warning("sweep out of time; the rest waits for the next run", extra={"sweep": sweep.__name__})
        if failed:
            raise SweepsFailed(f"sweeps failed: {', '.join(failed)} (completed: {results})")
    return results

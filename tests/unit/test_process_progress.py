"""Rate, ETA, percent and tolerance: pure functions of the record, deterministic under frozen time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.processes.domain import (
    Children,
    Counters,
    Process,
    Snapshot,
    State,
    Tolerance,
    allowed_from,
    next_snapshots,
    progress,
    smoothed_rate,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def process(**overrides) -> Process:
    base = {
        "id": "prc_X",
        "tenant_id": "t",
        "type": "x",
        "name": "x",
        "state": State.RUNNING,
        "started_at": T0,
        "created_at": T0,
    }
    return Process(**{**base, **overrides})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_rate_is_processed_over_elapsed_and_eta_uses_the_smoothed_rate():
    # 100/s for a minute, then 200/s: the EWMA (alpha 0.1) moves a tenth of the way per 10 s step
    snaps = [Snapshot(at(s), 100 * s) for s in range(0, 61, 10)] + [Snapshot(at(70), 6000 + 2000)]
    p = process(expected_total=20_000, counters=Counters(processed=8000), snapshots=tuple(snaps))

    view = progress(p, at(70))

    assert view.rate_per_second == pytest.approx(8000 / 70)
    assert view.smoothed_rate_per_second == pytest.approx(0.1 * 200 + 0.9 * 100)  # 110
    assert view.eta_seconds == pytest.approx(12_000 / 110)
    assert view.eta_at == at(70) + timedelta(seconds=12_000 / 110)
    assert view.percent == 40.0 and view.indeterminate is False


def test_snapshots_closer_than_10_seconds_are_skipped():
    snaps = [Snapshot(at(0), 0), Snapshot(at(3), 900), Snapshot(at(10), 1000), Snapshot(at(20), 2000)]
    assert smoothed_rate(snaps) == pytest.approx(100.0)  # 0->10 s and 10->20 s, both 100/s
    assert smoothed_rate([Snapshot(at(0), 0)]) is None


def test_without_a_total_the_progress_is_indeterminate_with_no_eta():
    p = process(counters=Counters(processed=500), snapshots=(Snapshot(at(0), 0),))

    view = progress(p, at(50))

    assert view.indeterminate is True
    assert view.percent is None and view.eta_seconds is None and view.eta_at is None
    assert view.rate_per_second == pytest.approx(10.0)


def test_progress_never_shows_100_percent_before_the_process_is_finished():
    running = progress(process(expected_total=1000, counters=Counters(processed=1000)), at(10))
    over = progress(process(expected_total=1000, counters=Counters(processed=1200)), at(10))
    done = progress(
        process(state=State.COMPLETED, expected_total=1000, counters=Counters(processed=1000), finished_at=at(20)),
        at(20),
    )

    assert running.percent == 99.9 and over.percent == 99.9
    assert done.percent == 100.0 and done.eta_seconds == 0.0
    assert done.rate_per_second == pytest.approx(50.0)  # processed / (finished - started)


def test_the_same_record_reads_the_same_whatever_the_wall_clock():
    p = process(expected_total=100, counters=Counters(processed=40), snapshots=(Snapshot(at(0), 0),))
    assert progress(p, at(20)) == progress(p, at(20))  # no hidden clock: the GET's ETag holds


def test_a_new_snapshot_needs_10_seconds_and_the_list_is_bounded():
    snaps: tuple[Snapshot, ...] = ()
    for s in range(0, 400, 10):
        snaps = next_snapshots(snaps, Snapshot(at(s), s)) or snaps
    assert len(snaps) == 30 and snaps[-1].at == at(390)
    assert next_snapshots(snaps, Snapshot(at(395), 1)) is None


@pytest.mark.parametrize(
    ("tolerance", "failed", "total", "exceeded"),
    [
        (Tolerance(count=5), 5, None, False),
        (Tolerance(count=5), 6, None, True),
        (Tolerance(percent=10), 10, 100, False),
        (Tolerance(percent=10), 11, 100, True),
        (Tolerance(percent=10), 50, None, False),  # percent waits for the total
        (Tolerance(count=100, percent=1), 2, 100, True),  # either exceeded fails
        (Tolerance(), 1, 100, True),  # nothing given: nothing tolerated
        (Tolerance(), 0, 100, False),
    ],
)
def test_tolerance_follows_step_functions_semantics(tolerance, failed, total, exceeded):
    assert tolerance.exceeded(failed, total) is exceeded


def test_the_completion_gate_waits_for_fetch_batches_and_children():
    base = {"fetch_done": True, "batches_total": 2, "counters": Counters(processed=20, succeeded=20, batches_done=2)}
    assert process(**base).outcome_state() is State.COMPLETED
    assert process(**{**base, "fetch_done": False}).outcome_state() is None
    assert process(**{**base, "batches_total": 3}).outcome_state() is None
    assert process(**base, children=Children(total=1)).outcome_state() is None
    assert process(**base, children=Children(total=1, done=1, failed=1)).outcome_state() is State.COMPLETED_WITH_ERRORS
    assert process(**base, children=Children(total=2, failed=1, released=True)).outcome_state() is not None
    assert process(**{**base, "state": State.PAUSED}).outcome_state() is None


def test_illegal_transitions_are_not_allowed():
    assert State.COMPLETED not in allowed_from(State.RUNNING)
    assert allowed_from(State.COMPLETED) == {State.RUNNING}
    assert State.CANCELLED not in allowed_from(State.PAUSED) | allowed_from(State.COMPLETED)

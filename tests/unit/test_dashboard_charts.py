"""The overview's per-minute chart: pure arithmetic from counts to SVG rectangles."""

from __future__ import annotations

import pytest

from conveyor.dashboard.charts import per_minute


def test_the_busiest_minute_fills_the_height_and_failures_stack_on_completions():
    completed, failed = [0] * 60, [0] * 60
    completed[10], failed[10], completed[59] = 3, 1, 2

    chart = per_minute(completed, failed, width=600, height=80)

    assert (chart.peak, chart.completed, chart.failed) == (4, 5, 1)
    by_minute = {(b.minute, b.kind): b for b in chart.bars}
    assert set(by_minute) == {(10, "completed"), (10, "failed"), (59, "completed")}
    bottom, top = by_minute[(10, "completed")], by_minute[(10, "failed")]
    assert bottom.height == 60 and bottom.y == 20  # 3 of 4 of the height, standing on the axis
    assert top.height == 20 and top.y == 0  # stacked above it, reaching the top
    assert by_minute[(59, "completed")].x > by_minute[(10, "completed")].x
    assert all(b.x + b.width <= 600 for b in chart.bars)
    assert "5 completed and 1 failed in the last 60 minutes" in chart.summary


def test_an_idle_hour_draws_no_bars():
    chart = per_minute([0] * 60, [0] * 60)
    assert chart.bars == () and chart.peak == 0


def test_the_two_series_must_be_the_same_length():
    with pytest.raises(ValueError, match="one value per minute"):
        per_minute([1, 2], [1])

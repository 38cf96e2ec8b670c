"""Small inline SVG charts, computed here and drawn by the templates (no script, no chart library).

Pure: numbers in, rectangle coordinates out. Bars are stacked per minute, completed at the bottom and failed on
top; the tallest column fills the height; a zero column draws nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    minute: int  # 0 = the oldest minute of the window
    kind: str  # "completed" | "failed"
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    peak: int
    completed: int
    failed: int

    @property
    def summary(self) -> str:
        return (
            f"{self.completed} completed and {self.failed} failed in the last {self.minutes} minutes; "
            f"busiest minute {self.peak}"
        )

    minutes: int = 60


def per_minute(completed: list[int], failed: list[int], width: int = 600, height: int = 80) -> Chart:
    if len(completed) != len(failed):
        raise ValueError("completed and failed need one value per minute each")
    minutes = len(completed)
    peak = max((c + f for c, f in zip(completed, failed, strict=True)), default=0)
    slot = width / minutes if minutes else width
    gap = min(1.0, slot / 4)
    bars: list[Bar] = []
    for minute, (done, bad) in enumerate(zip(completed, failed, strict=True)):
        base = float(height)
        for kind, value in (("completed", done), ("failed", bad)):
            if value <= 0 or peak == 0:
                continue
            tall = height * value / peak
            base -= tall
            bars.append(
                Bar(
                    minute,
                    kind,
                    value,
                    round(minute * slot + gap / 2, 2),
                    round(base, 2),
                    round(slot - gap, 2),
                    round(tall, 2),
                )
            )
    return Chart(width, height, tuple(bars), peak, sum(completed), sum(failed), minutes)

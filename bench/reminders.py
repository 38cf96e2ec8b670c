"""Reminders end to end (filled in once the reminders capability is on this branch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def available(root: Path) -> bool:
    return (root / "layers" / "conveyor" / "conveyor" / "reminders").is_dir()


def run(n: int) -> dict[str, Any]:
    raise NotImplementedError

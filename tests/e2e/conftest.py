"""End-to-end fixtures: a local stack per test session (one per xdist worker), stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_stack_process import ROOT, RunningStack, start_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The project's own template.yaml, schedules fired every second."""
    stack = start_stack(ROOT / "template.yaml", tmp_path_factory.mktemp("stack"), "--fast-schedules", "1")
    yield stack
    stack.stop()

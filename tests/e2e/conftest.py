"""End-to-end fixtures: a local stack for the e2e package (one per xdist worker), stopped when the worker leaves
the package: an idle stack's pollers cost a third of a core, which the integration tests that follow would pay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_stack_process import ROOT, RunningStack, start_stack


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The project's own template.yaml, schedules fired every second."""
    stack = start_stack(ROOT / "template.yaml", tmp_path_factory.mktemp("stack"), "--fast-schedules", "1")
    yield stack
    stack.stop()

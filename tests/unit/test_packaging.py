"""The layer's requirements.txt and pyproject's runtime dependencies must not drift apart."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _names(requirements):
    return {re.split(r"[\[=<>]", r)[0].lower(): r for r in requirements}


def test_layer_requirements_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = [
        line.strip()
        for line in (ROOT / "layers/conveyor/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert _names(project) == _names(layer)
    assert all("==" in r for r in layer), "the layer's dependencies are pinned"


def test_handlers_have_unique_module_names():
    handlers = [p.name for p in (ROOT / "functions").glob("*/*_handler.py")]
    assert len(handlers) == len(set(handlers)) >= 5

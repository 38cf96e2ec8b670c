"""Every sample in events/ is a valid input for its function: `sam local invoke -e events/<file>` never rots.

A file is named <function>-<case>.json, where <function> is the function's folder under functions/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor_local.lambdas import LambdaContext, load_handler

EVENTS = sorted((Path(__file__).resolve().parents[2] / "events").glob("*.json"))


def _function_for(stack, event_file: Path):
    by_folder = {spec.code_dir.name: spec for spec in stack.functions.values()}
    folder = next((f for f in by_folder if event_file.name.startswith(f + "-")), None)
    assert folder, f"{event_file.name} names no function folder ({sorted(by_folder)})"
    return by_folder[folder]


@pytest.mark.parametrize("event_file", EVENTS, ids=lambda p: p.name)
def test_sample_event_is_handled_by_its_function(stack, event_file):
    spec = _function_for(stack, event_file)
    event = json.loads(event_file.read_text())

    result = load_handler(spec)(event, LambdaContext(spec))

    if "statusCode" in (result or {}):  # HTTP API: client mistakes are 4xx, never a 5xx
        assert result["statusCode"] < 500, result
        assert json.loads(result["body"]) is not None
    elif spec.logical_id == "AuthorizerFunction":
        assert result["isAuthorized"] is True and result["context"]["authenticated"] is False  # an unknown key
    else:
        assert result is not None


def test_samples_cover_every_function(stack):
    covered = {_function_for(stack, f).logical_id for f in EVENTS}
    assert covered == set(stack.functions)

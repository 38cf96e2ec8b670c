"""Locally every function shares one process and so one environment (the union of theirs); on Lambda each has only
its own. Here each sample event runs with only the variables template.yaml gives its function, so code that reads
a setting its function is not given fails a test instead of a deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor_local.lambdas import LambdaContext, load_handler

EVENTS = sorted((Path(__file__).resolve().parents[2] / "events").glob("*.json"))


@pytest.fixture
def only_its_environment(monkeypatch: pytest.MonkeyPatch):
    from conveyor.platform.settings import Settings, get_settings

    every = {field.alias for field in Settings.model_fields.values()}

    def restrict(spec) -> None:
        for name in every - spec.environment.keys():
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()

    yield restrict
    get_settings.cache_clear()


@pytest.mark.parametrize("event_file", EVENTS, ids=lambda p: p.name)
def test_a_sample_runs_with_only_the_variables_its_function_is_given(stack, only_its_environment, event_file):
    # Given the function's own environment and nothing else
    by_folder = {spec.code_dir.name: spec for spec in stack.functions.values()}
    spec = next(s for folder, s in by_folder.items() if event_file.name.startswith(folder + "-"))
    handler = load_handler(spec)
    only_its_environment(spec)

    # When it handles its sample event
    result = handler(json.loads(event_file.read_text()), LambdaContext(spec))

    # Then nothing failed for want of a setting (batch handlers would report a failed record)
    if isinstance(result, dict) and "statusCode" in result:
        assert result["statusCode"] < 500, result
    if isinstance(result, dict) and "batchItemFailures" in result:
        assert result["batchItemFailures"] == [], result

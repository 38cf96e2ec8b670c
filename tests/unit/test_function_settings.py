"""Each function is given exactly the variables its settings model requires, and its cold start names a missing one.

template.yaml's Globals hold what every function reads; the rest sits in the function that uses it. The handler
validates its environment against its own model at import (cold start), so a variable the template forgot fails
the deployment's first invocation with its name, not a request deep inside storage.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.decode.cfn_yaml import loads

from conveyor.platform import settings as settings_module
from conveyor.platform.settings import SettingsError, init_settings

ROOT = Path(__file__).resolve().parents[2]
DOC = loads((ROOT / "template.yaml").read_text())
GLOBAL_ENV = set(DOC["Globals"]["Function"]["Environment"]["Variables"])
FUNCTIONS = {k: v["Properties"] for k, v in DOC["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _model_of(props: dict) -> type:
    """The settings model the function's handler validates at cold start: `init_settings(<Model>)`."""
    module = props["Handler"].rsplit(".", 1)[0]
    source = (ROOT / props["CodeUri"] / f"{module}.py").read_text()
    found = re.findall(r"init_settings\((\w+)\)", source)
    assert len(found) == 1, f"{module} validates its settings once at import"
    return getattr(settings_module, found[0])


# Read by every function, set by the SAM CLI in its local containers (never by the template).
FROM_THE_RUNTIME = {"AWS_SAM_LOCAL"}
# Read by the libraries themselves (Powertools' logger and metrics, pydantic's plugin loader), not by our settings.
FOR_LIBRARIES = ("POWERTOOLS_", "PYDANTIC_")


def _variables(model: type) -> set[str]:
    return {field.alias for field in model.model_fields.values()} - FROM_THE_RUNTIME


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_function_is_given_exactly_what_its_settings_model_reads(function):
    props = FUNCTIONS[function]
    given = GLOBAL_ENV | set((props.get("Environment") or {}).get("Variables", {}))
    assert {v for v in given if not v.startswith(FOR_LIBRARIES)} == _variables(_model_of(props))


def test_globals_hold_only_what_every_function_reads():
    shared = set.intersection(*(_variables(_model_of(p)) for p in FUNCTIONS.values()))
    assert {v for v in GLOBAL_ENV if not v.startswith(FOR_LIBRARIES)} == shared


def test_no_function_gets_every_table():
    for function, props in FUNCTIONS.items():
        model = _model_of(props)
        assert _variables(model) != _variables(settings_module.Settings), function


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_missing_variable_is_named_at_cold_start(function):
    model = _model_of(FUNCTIONS[function])
    required = sorted(f.alias for f in model.model_fields.values() if f.is_required())
    assert required, f"{function} requires something beyond the shared variables"
    with pytest.raises(SettingsError, match=required[0]):
        init_settings(model, {})

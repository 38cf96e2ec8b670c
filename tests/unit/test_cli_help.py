"""`conveyor --help` names every command scope and every API key scope a key can hold."""

from __future__ import annotations

import pytest

from conveyor.cli import SCOPES_HELP, main, parser
from conveyor.platform.auth import keys


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("jobs", "queues", "dlq", "keys", "demo"):
        assert command in out


def test_jobs_help_lists_every_action(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["jobs", "--help"])
    out = capsys.readouterr().out
    for action in ("enqueue", "get", "list", "watch", "cancel", "retry", "run-now"):
        assert action in out


def test_keys_create_help_lists_every_scope(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["keys", "create", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for scope in keys.SCOPES:
        assert scope in SCOPES_HELP and scope in out


def test_without_a_local_stack_the_cli_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CONVEYOR_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_API_KEY", raising=False)
    monkeypatch.delenv("API_KEYS_TABLE", raising=False)
    state = str(tmp_path / "none.json")
    assert main(["jobs", "list", "--stack-file", state]) == 2
    assert main(["keys", "list", "--stack-file", state]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("make run" in line for line in err)

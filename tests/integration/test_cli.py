"""`conveyor keys create|revoke`: the operator's way to mint and revoke API keys."""

from __future__ import annotations

from factories import email_job

from conveyor.cli import main


def test_a_created_key_works_once_printed_and_stops_working_when_revoked(stack, api, capsys):
    table = stack.template.physical["ApiKeysTable"]

    assert main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read,jobs:write", "--table", table]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("cvk_") and "shown only this once" in err
    assert api.post("/v1/jobs", email_job(), key=key).status == 202

    assert main(["keys", "revoke", key, "--table", table]) == 0
    assert api.get("/v1/jobs", key=key).status == 200  # API Gateway's cached answer, for up to ReauthorizeEvery
    stack.gateway.expire_authorizer_cache()
    assert api.get("/v1/jobs", key=key).status == 401


def test_the_plain_key_is_never_stored(stack, capsys):
    table = stack.template.physical["ApiKeysTable"]
    main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read", "--table", table])
    key = capsys.readouterr().out.strip()

    stored = stack.client("dynamodb").scan(TableName=table)["Items"]

    assert len(stored) == 1 and key not in repr(stored)
    assert stored[0]["tenant_id"] == {"S": "acme"}


def test_bad_scopes_and_unknown_keys_are_clear_errors(stack, capsys):
    table = stack.template.physical["ApiKeysTable"]

    assert main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:everything", "--table", table]) == 2
    assert main(["keys", "revoke", "nosuchkeyid1", "--table", table]) == 2
    assert "unknown" in capsys.readouterr().err


def test_a_key_cannot_be_created_already_expired_or_with_a_zero_lifetime(stack, capsys):
    table = stack.template.physical["ApiKeysTable"]
    for days in ("0", "-1"):
        # When an operator asks for a key that expires in 0 (or fewer) days
        code = main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read", "--expires-in-days", days,
                     "--table", table])  # fmt: skip
        # Then it is refused with the reason, and no key exists that could be used
        assert code == 2
        assert "--expires-in-days must be at least 1" in capsys.readouterr().err
    assert stack.client("dynamodb").scan(TableName=table)["Items"] == []


def test_a_key_made_with_a_zero_lifetime_is_already_expired(stack):
    from conveyor.platform.auth import keys

    key, record = keys.create("acme", {"jobs:read"}, expires_in_days=0)
    assert record.expires_at is not None
    assert keys.authenticate(key) is None


def test_a_key_created_to_expire_in_a_day_expires(stack, capsys, monkeypatch):
    table = stack.template.physical["ApiKeysTable"]
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read", "--expires-in-days", "1",
                 "--table", table]) == 0  # fmt: skip
    key = capsys.readouterr().out.strip()
    [stored] = stack.client("dynamodb").scan(TableName=table)["Items"]
    from conveyor.platform.auth import keys

    assert keys.authenticate(key) is not None
    monkeypatch.setattr(keys, "datetime", _Later(int(stored["expires_at"]["N"]) + 1))
    assert keys.authenticate(key) is None


class _Later:
    """Stands in for keys.datetime: now() is the given epoch second."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def now(self, tz):
        from datetime import datetime

        return datetime.fromtimestamp(self.epoch, tz)

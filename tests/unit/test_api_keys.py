from conveyor.platform.auth.authorizer import principal_from
from conveyor.platform.auth.keys import KEY_ID_LENGTH, PREFIX, Principal, key_id_of


def test_key_id_is_read_only_from_well_formed_keys():
    key = PREFIX + "a" * KEY_ID_LENGTH + "b" * 40
    assert key_id_of(key) == "a" * KEY_ID_LENGTH
    for bad in ("", "cvk_", key + "x", key[:-1], key.replace("cvk_", "xyz_"), key.upper()):
        assert key_id_of(bad) is None


def test_admin_scope_implies_every_scope():
    assert Principal("t", frozenset({"admin"}), "k").allows("jobs:write")
    assert not Principal("t", frozenset({"jobs:read"}), "k").allows("jobs:write")


def test_principal_comes_only_from_an_authenticated_authorizer_context():
    assert principal_from({"authenticated": True, "tenant_id": "t", "scopes": "jobs:read"}).tenant_id == "t"
    assert principal_from({"authenticated": False, "tenant_id": "t"}) is None
    assert principal_from({"authenticated": True}) is None
    assert principal_from(None) is None

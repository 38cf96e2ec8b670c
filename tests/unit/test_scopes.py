"""Scopes: a tenant's admin key can do everything in its tenant, but acting on every tenant is `platform`."""

from conveyor.platform.auth.keys import Principal


def test_admin_implies_every_tenant_scope_but_not_platform():
    admin = Principal("tenant-a", frozenset({"admin"}), "k")
    assert admin.allows("jobs:read") and admin.allows("jobs:write") and admin.allows("admin")
    assert not admin.allows("platform")


def test_platform_must_be_granted_explicitly():
    operator = Principal("ops", frozenset({"admin", "platform"}), "k")
    assert operator.allows("platform")

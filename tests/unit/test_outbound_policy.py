"""The SSRF address policy: which destinations outbound HTTP may reach (no network: resolvers are fakes)."""

from __future__ import annotations

import pytest

from conveyor.platform.outbound import Blocked, DnsFailure, Policy, check_url, refusal, vetted_addresses

DEPLOYED = Policy(allow_private=False)
LOCAL = Policy(allow_private=True)

REFUSED = [
    "10.0.0.1",
    "172.16.10.65",
    "192.168.10.65",
    "127.0.0.1",
    "0.1.2.3",
    "169.254.169.254",
    "100.100.0.0",
    "198.18.0.0",
    "192.0.2.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "224.0.0.1",
    "ff02::1",
    "fe80::1",
    "2001:db8::1",
    "198.51.100.7",
    "203.0.113.9",
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused_in_a_deployment(address):
    assert refusal(address, DEPLOYED) is not None


@pytest.mark.parametrize("address", ["1.1.1.1", "2606:4700::1111", "8.8.8.8", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address):
    assert refusal(address, DEPLOYED) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "192.168.1.20", "::1", "::ffff:127.0.0.1"])
def test_the_local_stack_may_reach_private_addresses(address):
    assert refusal(address, LOCAL) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "0.0.0.0"])  # noqa: S104
def test_metadata_and_this_network_stay_refused_even_when_private_addresses_are_allowed(address):
    assert refusal(address, LOCAL) is not None


def test_a_name_resolving_to_a_public_then_a_private_address_is_refused():
    def resolver(host, port):
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(Blocked, match="10.0.0.7"):
        vetted_addresses("rebind.example.com", 443, DEPLOYED, resolver)


def test_a_name_resolving_only_to_public_addresses_is_vetted():
    assert vetted_addresses("hooks.example.com", 443, DEPLOYED, lambda h, p: ["1.1.1.1", "2606:4700::1111"]) == [
        "1.1.1.1",
        "2606:4700::1111",
    ]


def test_an_unresolvable_name_is_a_dns_failure():
    def resolver(host, port):
        raise DnsFailure(f"{host} does not resolve")

    with pytest.raises(DnsFailure):
        check_url("https://nowhere.invalid/hook", DEPLOYED, resolver)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https:///x", "host"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]:8443/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
    ],
)
def test_urls_that_could_never_be_delivered_to_are_refused(url, why):
    with pytest.raises(Blocked, match=why):
        check_url(url, DEPLOYED, lambda h, p: ["1.1.1.1"])


def test_plain_http_to_a_local_address_is_allowed_only_when_the_deployment_allows_private_destinations():
    check_url("http://127.0.0.1:3000/_local/webhook-inbox", LOCAL, lambda h, p: ["127.0.0.1"])
    with pytest.raises(Blocked):
        check_url("http://127.0.0.1:3000/_local/webhook-inbox", DEPLOYED, lambda h, p: ["127.0.0.1"])

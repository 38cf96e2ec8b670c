"""The one HTTP client for user-given URLs (webhook endpoints, CRM base URLs): SSRF-safe by construction.

Invariants, on every request (not only when a URL is saved):
- https only, unless the deployment allows private destinations (the local stack does); no credentials in URLs.
- The host name is resolved ONCE, in the connection itself; if ANY address it resolves to is refused (see
  `refusal`), the request is refused. The socket then connects to one of the vetted addresses, never to a name,
  so a second lookup (DNS rebinding) cannot swap in another address. TLS still sends the original host name
  (SNI) and checks the certificate against it; the Host header is the original too (the URL is not rewritten).
- Proxy variables of the environment are ignored (trust_env=False) and redirects are never followed.
- Connect timeout 5 s (resolution included, except a resolver that hangs: getaddrinfo has no timeout); the
  exchange is abandoned after 15 s, checked between reads (no single read waits more than 10 s); at most 4 KiB of
  the response body is read and kept.

httpx's transport takes no network backend, so `_VettingTransport` swaps its connection pool for one built with
`_VettingBackend` (httpx is pinned; tests/unit/test_outbound.py checks the pool really connects through it).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
TOTAL_TIMEOUT_SECONDS = 15.0
EXCERPT_BYTES = 4096

_net = ipaddress.ip_network
# Never reachable, whatever the deployment allows: cloud metadata, "this network", broadcast, multicast, reserved.
ALWAYS_REFUSED: tuple[tuple[Any, str], ...] = (
    (_net("169.254.169.254/32"), "cloud metadata address"),
    (_net("fd00:ec2::254/128"), "cloud metadata address"),
    (_net("169.254.170.2/32"), "container credentials address"),
    (_net("0.0.0.0/8"), "'this network' address"),
    (_net("255.255.255.255/32"), "broadcast address"),
    (_net("224.0.0.0/4"), "multicast address"),
    (_net("ff00::/8"), "multicast address"),
    (_net("240.0.0.0/4"), "reserved address"),
    (_net("::/128"), "unspecified address"),
)
# Refused unless the deployment allows private destinations (local development).
PRIVATE: tuple[tuple[Any, str], ...] = (
    (_net("127.0.0.0/8"), "loopback address"),
    (_net("::1/128"), "loopback address"),
    (_net("10.0.0.0/8"), "private address"),
    (_net("172.16.0.0/12"), "private address"),
    (_net("192.168.0.0/16"), "private address"),
    (_net("fc00::/7"), "private address"),
    (_net("169.254.0.0/16"), "link-local address"),
    (_net("fe80::/10"), "link-local address"),
    (_net("100.64.0.0/10"), "carrier-grade NAT address"),
)
# Refused always; named for a clear message (anything else that is not globally routable is refused too).
NON_PUBLIC: tuple[tuple[Any, str], ...] = (
    (_net("192.0.2.0/24"), "documentation address"),
    (_net("198.51.100.0/24"), "documentation address"),
    (_net("203.0.113.0/24"), "documentation address"),
    (_net("2001:db8::/32"), "documentation address"),
    (_net("198.18.0.0/15"), "benchmarking address"),
    (_net("192.0.0.0/24"), "IETF protocol address"),
    (_net("100::/64"), "discard-only address"),
)
_NAT64 = _net("64:ff9b::/96")


class OutboundError(Exception):
    """A request that got no (usable) HTTP answer. `kind`: dns | connect | tls | timeout | blocked | too_large."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


class Blocked(OutboundError):
    def __init__(self, message: str) -> None:
        super().__init__("blocked", message)


class DnsFailure(OutboundError):
    def __init__(self, message: str) -> None:
        super().__init__("dns", message)


@dataclass(frozen=True)
class Policy:
    """What the deployment allows: `allow_private` also allows plain http (both only for local development)."""

    allow_private: bool = False


def _embedded_v4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def refusal(address: IPAddress | str, policy: Policy) -> str | None:
    """Why `address` may not be contacted, or None when it may (a globally routable unicast address)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = _embedded_v4(ip)
    if inner is not None:
        reason = refusal(inner, policy)
        return f"{reason} (embedded in {ip})" if reason else None
    for network, reason in ALWAYS_REFUSED:
        if ip.version == network.version and ip in network:
            return f"{ip} is a {reason}"
    for network, reason in PRIVATE:
        if ip.version == network.version and ip in network:
            return None if policy.allow_private else f"{ip} is a {reason}"
    for network, reason in NON_PUBLIC:
        if ip.version == network.version and ip in network:
            return f"{ip} is a {reason}"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DnsFailure(f"{host} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def vetted_addresses(host: str, port: int, policy: Policy, resolver: Resolver) -> list[str]:
    """Resolve once; every address must pass, or the destination is refused (one bad answer is enough)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        addresses = resolver(host, port)
    else:
        addresses = [str(literal)]
    if not addresses:
        raise DnsFailure(f"{host} resolves to no address")
    for address in addresses:
        reason = refusal(address, policy)
        if reason:
            raise Blocked(f"{host} resolves to {address}: {reason}")
    return addresses


def _checked_form(url: str, policy: Policy) -> tuple[str, int]:
    """(host, port) of a URL whose form may be delivered to: https (or http when allowed), no credentials."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (policy.allow_private and parts.scheme == "http"):
        raise Blocked("the URL must use https" + ("" if policy.allow_private else " (plain http is not allowed)"))
    if parts.username or parts.password:
        raise Blocked("the URL must not carry credentials")
    if not parts.hostname:
        raise Blocked("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Blocked(f"the URL's port is invalid: {exc}") from None
    return parts.hostname, port


def check_url(url: str, policy: Policy, resolver: Resolver | None = None) -> None:
    """Refuse a URL that could never be delivered to (scheme, credentials, host, its addresses): raises Blocked,
    or DnsFailure when the name does not resolve. Used when a URL is saved; every connection checks again."""
    host, port = _checked_form(url, policy)
    vetted_addresses(host, port, policy, resolver or system_resolver)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (lower-case names), the first 4 KiB of the body, elapsed milliseconds."""

    status: int
    headers: dict[str, str]
    excerpt: bytes
    elapsed_ms: int


BODY_LIMIT_BYTES = 8 * 1024 * 1024  # an API page (a CRM's 200-500 records) is far below this


@dataclass(frozen=True)
class Reply:
    """A whole HTTP answer (`OutboundClient.request`): status, headers (lower-case names), body, elapsed ms."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: int


def _vetting_backend(policy: Policy, resolver: Resolver) -> Any:
    import httpcore

    class _VettingBackend(httpcore.SyncBackend):
        """Connects to vetted addresses only: the name is resolved here, once per connection."""

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> Any:
            last: Exception | None = None
            for address in vetted_addresses(host, port, policy, resolver):
                try:
                    return super().connect_tcp(address, port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None
            raise last

    return _VettingBackend()


class OutboundClient:
    """Requests to user-given URLs, safely (`post` for webhooks, `request` for APIs such as CRMs). One per process
    (connections are pooled per vetted origin)."""

    def __init__(
        self,
        policy: Policy,
        *,
        resolver: Resolver | None = None,
        user_agent: str = "Conveyor",
        ssl_context: ssl.SSLContext | None = None,  # tests pass one trusting their own CA; default: system CAs
    ) -> None:
        import httpcore
        import httpx

        self.policy = policy
        transport = httpx.HTTPTransport(trust_env=False, retries=0)
        transport._pool = httpcore.ConnectionPool(  # noqa: SLF001 - see the module docstring
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=_vetting_backend(policy, resolver or system_resolver),
        )
        self._client = httpx.Client(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS, pool=CONNECT_TIMEOUT_SECONDS),
            headers={"user-agent": user_agent},
        )

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Answer:
        """One POST, no retries, no redirects; only the first EXCERPT_BYTES of the answer are read (as sent: no
        decompression). Raises OutboundError (dns/connect/tls/timeout/blocked)."""
        status, answer_headers, body, ms = self._exchange("POST", url, content, headers, EXCERPT_BYTES, excerpt=True)
        return Answer(status, answer_headers, body, ms)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        limit_bytes: int = BODY_LIMIT_BYTES,
    ) -> Reply:
        """One request to an API (a CRM): no retries, no redirects, the whole body read up to `limit_bytes`
        (a longer one raises OutboundError("too_large")). Raises OutboundError (dns/connect/tls/timeout/blocked)."""
        import httpx

        url_with_query = str(httpx.URL(url, params=params)) if params else url
        status, answer_headers, body, ms = self._exchange(
            method, url_with_query, content, headers or {}, limit_bytes, excerpt=False
        )
        return Reply(status, answer_headers, body, ms)

    def _exchange(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str], limit: int, *, excerpt: bool
    ) -> tuple[int, dict[str, str], bytes, int]:
        """(status, lower-cased headers, body, elapsed ms) of one request, every failure as an OutboundError; the
        body is cut at `limit` (excerpt) or refused past it ("too_large"), and the whole exchange is bounded by
        TOTAL_TIMEOUT_SECONDS. The addresses are vetted by the connection itself (the network backend)."""
        import httpx

        _checked_form(url, self.policy)
        started = time.monotonic()
        deadline = started + TOTAL_TIMEOUT_SECONDS
        try:
            with self._client.stream(method, url, content=content, headers=headers) as response:
                body = bytearray()
                for chunk in response.iter_raw() if excerpt else response.iter_bytes():
                    body += chunk
                    if excerpt and len(body) >= limit:
                        break
                    if len(body) > limit:
                        raise OutboundError("too_large", f"the answer is over {limit} bytes")
                    if time.monotonic() > deadline:
                        raise OutboundError("timeout", f"no complete answer within {TOTAL_TIMEOUT_SECONDS:.0f}s")
                return (
                    response.status_code,
                    {k.lower(): v for k, v in response.headers.items()},
                    bytes(body[:limit]),
                    int((time.monotonic() - started) * 1000),
                )
        except OutboundError:
            raise
        except httpx.TimeoutException as exc:
            raise OutboundError("timeout", f"{type(exc).__name__}: {exc}") from exc
        except httpx.ConnectError as exc:
            kind = "tls" if _is_tls(exc) else "connect"
            raise OutboundError(kind, str(exc) or type(exc).__name__) from exc
        except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise OutboundError("connect", f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc).upper()
    return "SSL" in text or "CERTIFICATE" in text or "TLS" in text

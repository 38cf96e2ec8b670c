"""Talking to a connection's CRM: the authenticated, SSRF-safe `Http` connectors use, and OAuth access tokens
refreshed single-flight.

Refresh (OAuth connections): a token valid for more than REFRESH_MARGIN is used as is. Otherwise one worker takes
the connection's lease (a conditional write on the secret item's `version`, only when no live lease is held),
calls the token endpoint once, and stores the new access token (and the rotated refresh token) with version+1,
conditional on still owning the lease; every other worker waits for the version to move and uses what was
stored, so N concurrent workers make one refresh call and a single-use refresh token is used once. On
`invalid_grant` the stored secret is read again (another worker may have rotated it meanwhile); only when it has
not moved is the connection marked `reauth_required`. A worker that dies holding the lease delays the others
by at most LEASE_SECONDS. (A crash between the token endpoint's answer and the write loses a rotated refresh
token: the connection then needs re-authorising; no client can close that gap without the vendor's help.)
"""

from __future__ import annotations

import json as jsonlib
import random
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from conveyor.connectors import Connector, InvalidGrant, connector
from conveyor.connectors.base import Config, Reply
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import PermanentError, RetryLater, TransientError
from conveyor.platform.ids import new_id
from conveyor.platform.observability import count, logger
from conveyor.platform.outbound import OutboundClient, OutboundError, Policy
from conveyor.platform.settings import get_settings
from conveyor.sync import repository, vault
from conveyor.sync.domain import LEASE_SECONDS, REFRESH_MARGIN, Connection

WAIT_FOR_REFRESH_SECONDS = 20.0  # a worker waits this long for another's refresh, then defers its job
POLL_SECONDS = (0.05, 1.0)  # first and longest wait between reads while another worker refreshes


class RateLimited(RetryLater):
    """The CRM asked us to wait (429 or its rate-limit headers)."""


class ReauthRequired(PermanentError):
    """The CRM refused the connection's refresh token: a user must authorise it again."""


@lru_cache(maxsize=2)
def _client(policy: Policy) -> OutboundClient:
    return OutboundClient(policy, user_agent="Conveyor-Sync/1.0")


def outbound() -> OutboundClient:
    return _client(Policy(allow_private=get_settings().outbound_allow_private))


def connector_for(connection: Connection) -> Connector:
    return connector(
        connection.connector,
        Config(
            base_url=connection.base_url,
            token_url=connection.token_url,
            default_region=connection.default_region,
            field_map=connection.field_map,
        ),
    )


def credentials(connection: Connection) -> dict[str, Any]:
    secret = repository.get_secret(connection)
    if secret is None:
        raise PermanentError(f"connection {connection.id} has no credentials")
    return vault.open_credentials(connection.tenant_id, connection.id, secret.credentials)


# --- access tokens -----------------------------------------------------------------------------------------
def access_token(connection: Connection, crm: Connector, *, stale: str | None = None) -> str:
    """A valid access token (see the module docstring); `stale`: one the CRM just refused (refresh past it)."""
    deadline = time.monotonic() + WAIT_FOR_REFRESH_SECONDS
    pause = POLL_SECONDS[0]
    while True:
        secret = repository.get_secret(connection)
        if secret is None:
            raise PermanentError(f"connection {connection.id} has no credentials")
        now = utcnow()
        if secret.access_token and secret.access_expires_at and secret.access_expires_at - now > REFRESH_MARGIN:
            token = vault.open_token(connection.tenant_id, connection.id, secret.access_token)
            if token != stale:
                return token
        leased = secret.lease_until is not None and secret.lease_until > time.time()  # someone is refreshing
        owner = new_id("lease")
        if not leased and repository.take_lease(connection, secret.version, owner, time.time(), LEASE_SECONDS):
            return _refresh(connection, crm, secret, owner)
        if time.monotonic() > deadline:
            raise RetryLater(5, "another worker is refreshing this connection's token")
        time.sleep(pause * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
        pause = min(POLL_SECONDS[1], pause * 2)


def _refresh(connection: Connection, crm: Connector, secret: repository.Secret, owner: str) -> str:
    creds = vault.open_credentials(connection.tenant_id, connection.id, secret.credentials)
    http = CrmHttp(connection, crm, token=None)
    try:
        grant = crm.refresh(http, creds["client_id"], creds["client_secret"], creds["refresh_token"])
    except InvalidGrant as refused:
        repository.release_lease(connection, owner)
        fresh = repository.get_secret(connection)
        if fresh is not None and fresh.version != secret.version:
            count("CrmTokenRotatedElsewhere", connection.connector)
            return access_token(connection, crm)
        from conveyor.sync import service

        service.reauth_required(connection, f"the CRM refused the refresh token ({refused})")
        raise ReauthRequired("the CRM refused this connection's refresh token; authorise it again") from None
    except BaseException:
        repository.release_lease(connection, owner)
        raise
    count("CrmTokenRefreshed", connection.connector)
    rotated = None
    if grant.refresh_token and grant.refresh_token != creds["refresh_token"]:
        rotated = vault.seal_credentials(
            connection.tenant_id, connection.id, {**creds, "refresh_token": grant.refresh_token}
        )
    stored = repository.store_grant(
        connection,
        secret.version,
        owner,
        access_token=vault.seal_token(connection.tenant_id, connection.id, grant.access_token),
        expires_at=utcnow() + timedelta(seconds=grant.expires_in),
        credentials=rotated,
    )
    if not stored:  # our lease expired and another worker refreshed: theirs is what counts
        logger.warning("token lease lost before the refreshed token was stored", extra={"connection": connection.id})
        return access_token(connection, crm)
    return grant.access_token


# --- HTTP -----------------------------------------------------------------------------------------------
class CrmHttp:
    """connectors.base.Http for one connection (see its docstring for the status mapping)."""

    def __init__(self, connection: Connection, crm: Connector, *, token: str | None = "auto") -> None:  # noqa: S107 - a mode
        self.connection, self.crm = connection, crm
        self._token = token
        self._api_token: str | None = None
        self.requests = 0

    def _auth(self, stale: str | None = None) -> dict[str, str]:
        if self.connection.auth == "api_token":
            if self._api_token is None:
                self._api_token = str(credentials(self.connection)["api_token"])
            header = getattr(self.crm, "api_token_header", None)
            return header(self._api_token) if header else self.crm.auth_header(self._api_token)
        if self._token in (None, "auto") or stale is not None:
            self._token = access_token(self.connection, self.crm, stale=stale)
        return self.crm.auth_header(str(self._token))

    def request(
        self,
        method: str,
        path: str = "",
        *,
        url: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authorized: bool = True,
        expect: Sequence[int] = (),
    ) -> Reply:
        target = url or self.connection.base_url.rstrip("/") + path
        sent = {"accept": "application/json", **dict(headers or {})}
        content = None
        if json is not None:
            content, sent["content-type"] = jsonlib.dumps(json).encode(), "application/json"
        elif form is not None:
            content, sent["content-type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        reply = None
        for attempt in (1, 2):
            auth = self._auth(stale=self._token if attempt == 2 else None) if authorized else {}
            reply = self._send(method, target, params, {**sent, **auth}, content)
            if not (reply.status == 401 and authorized and self.connection.auth == "oauth" and attempt == 1):
                break
        assert reply is not None  # noqa: S101
        return self._judge(reply, expect)

    def _send(self, method: str, url: str, params: Any, headers: dict[str, str], content: bytes | None) -> Any:
        self.requests += 1
        try:
            return outbound().request(
                method, url, params=dict(params) if params else None, headers=headers, content=content
            )
        except OutboundError as exc:
            if exc.kind == "blocked":
                raise PermanentError(f"the CRM's address is refused: {exc.message}") from None
            raise TransientError(f"the CRM did not answer: {exc.kind}: {exc.message}") from None

    def _judge(self, reply: Any, expect: Sequence[int]) -> Reply:
        status = reply.status
        wait = self.crm.retry_after(status, reply.headers, utcnow())
        if status == 429:
            count("CrmRateLimited", self.connection.connector)
            raise RateLimited(wait or 60, f"{self.connection.connector} rate limit: retry after {wait or 60}s")
        body = None
        if reply.body:
            try:
                body = jsonlib.loads(reply.body)
            except ValueError:
                body = None
        if 200 <= status < 300 or status in expect:
            return Reply(status, reply.headers, body)
        if status >= 500:
            raise TransientError(f"{self.connection.connector} answered {status}")
        if status == 401:
            raise PermanentError(f"{self.connection.connector} refused the credentials (401)")
        excerpt = reply.body[:200].decode("utf-8", "replace")
        raise PermanentError(f"{self.connection.connector} answered {status}: {excerpt}")

"""The dashboard's HTTP edge: its resolver, session cookie, CSRF check, HTML rendering and static files.

Invariants:
- Every route but sign-in and static files runs behind `_authenticate`: no valid session cookie, no page
  (a browser is sent to sign-in; htmx polls get 401 with HX-Redirect).
- Every request other than GET/HEAD must carry the session's CSRF token (form field `csrf` or header
  `X-CSRF-Token`), or it is refused with 403 before its route runs.
- Scopes are the API's own: routes declare `requires(scope)` from conveyor.platform.http.security, reading the
  principal this module puts in the resolver's context; services keep their own checks (e.g. `platform`).
- Pages are never cached and never framed; scripts and styles come only from /dashboard/static (CSP).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from jinja2 import Environment, PackageLoader, select_autoescape

from conveyor.platform.auth import sessions
from conveyor.platform.auth.sessions import Session
from conveyor.platform.errors import ConveyorError, Forbidden
from conveyor.platform.http.errors import status_for
from conveyor.platform.observability import logger

PREFIX = "/dashboard"
SESSION_COOKIE = "conveyor_session"
NONCE_COOKIE = "conveyor_signin"
PUBLIC = (PREFIX + "/signin", PREFIX + "/static/")
HTMX = "htmx-2.0.11.min.js"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain", ".svg": "image/svg+xml"}

app = APIGatewayHttpResolver()


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _register_pages()
    return app.resolve(event, context)


@cache
def _register_pages() -> None:
    from conveyor.dashboard import pages

    app.include_router(pages.router, prefix=PREFIX)


# --- the request ------------------------------------------------------------------------------------
def cookie(name: str) -> str | None:
    for pair in app.current_event.cookies:
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    return None


def form() -> dict[str, list[str]]:
    """The urlencoded form body (what a <form method="post"> sends); empty for anything else."""
    event = app.current_event
    kind = (event.headers or {}).get("content-type", "")
    if not kind.startswith("application/x-www-form-urlencoded"):
        return {}
    raw = event.body or ""
    text = base64.b64decode(raw).decode(errors="replace") if event.is_base64_encoded else raw
    return parse_qs(text, keep_blank_values=True, max_num_fields=600)


def field(name: str, default: str = "") -> str:
    values = form().get(name)
    return values[0] if values else default


def query(name: str, default: str = "") -> str:
    return (app.current_event.query_string_parameters or {}).get(name, default)


def session() -> Session:
    found = app.context.get("session")
    if found is None:
        raise Forbidden("not signed in")
    return found


def is_htmx() -> bool:
    return (app.current_event.headers or {}).get("hx-request") == "true"


def _authenticate(router: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    path = router.current_event.path
    if path.startswith(PUBLIC):
        return next_middleware(router)
    found = sessions.resume(cookie(SESSION_COOKIE))
    if found is None:
        if router.current_event.http_method in ("GET", "HEAD") and not is_htmx():
            # back here after signing in (an emailed report link): only this dashboard's own paths
            return redirect(PREFIX + "/signin" + ("?" + urlencode({"next": path}) if path != PREFIX else ""))
        headers = {"HX-Redirect": PREFIX + "/signin"}
        return page("signin.html", status=401, headers=headers, error="Your session has ended. Sign in again.")
    if router.current_event.http_method not in ("GET", "HEAD"):
        presented = (router.current_event.headers or {}).get("x-csrf-token") or field("csrf")
        if not sessions.csrf_ok(found, presented):
            logger.warning("dashboard request without a valid CSRF token", extra={"path": path})
            return error_page(403, "This request did not carry a valid CSRF token; reload the page and try again.")
    router.append_context(session=found, principal=found.principal)
    return next_middleware(router)


app.use(middlewares=[_authenticate])


# --- responses ---------------------------------------------------------------------------------------
@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("conveyor.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(asset=asset, url=url, HTMX=HTMX, PREFIX=PREFIX, queue_names=_queue_names)
    env.filters.update(when=when, ago=ago, pretty=pretty, duration=duration, rate=rate, eta=eta, round3=round3)
    return env


def _queue_names() -> list[str]:
    from conveyor.platform.settings import get_settings

    return sorted(get_settings().queues)


def render(template: str, **values: Any) -> str:
    current = app.context.get("session")
    if current is not None:
        principal = current.principal
        values.setdefault("principal", principal)
        values.setdefault("csrf", current.csrf_token)
        values.setdefault(
            "can",
            {
                scope.replace(":", "_"): principal.allows(scope)
                for scope in (
                    "jobs:read",
                    "jobs:write",
                    "reminders:read",
                    "admin",
                    "platform",
                    "processes:read",
                    "processes:write",
                    "reports:read",
                    "webhooks:read",
                    "webhooks:write",
                )
            },
        )
    values.setdefault("path", app.current_event.path)
    return _environment().get_template(template).render(**values)


def page(
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cookies: list[Cookie] | None = None,
    **values: Any,
) -> Response:
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=render(template, **values),
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})},
        cookies=cookies or [],
    )


def redirect(location: str, cookies: list[Cookie] | None = None) -> Response:
    return Response(
        status_code=303, headers={"Location": location, "Cache-Control": "no-store"}, body="", cookies=cookies or []
    )


def error_page(status: int, message: str) -> Response:
    return page("error.html", status=status, message=message, code=status)


def session_cookie(value: str, expires: datetime | None) -> Cookie:
    """HttpOnly (no script reads it), Secure, SameSite=Strict, scoped to /dashboard, expiring with the session."""
    max_age = int((expires - datetime.now(UTC)).total_seconds()) if expires else -1
    return Cookie(
        SESSION_COOKIE,
        value,
        path=PREFIX,
        secure=True,
        http_only=True,
        max_age=max_age,
        same_site=SameSite.STRICT_MODE,
    )


def nonce_cookie(value: str, max_age: int = 600) -> Cookie:
    return Cookie(
        NONCE_COOKIE,
        value,
        path=PREFIX + "/signin",
        secure=True,
        http_only=True,
        max_age=max_age,
        same_site=SameSite.STRICT_MODE,
    )


def url(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return PREFIX + path + ("?" + urlencode(clean, doseq=True) if clean else "")


def safe_return(target: str, default: str) -> str:
    """Only paths of this dashboard are followed after an action (no open redirect)."""
    if target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target and "://" not in target:
        return target
    return default


# --- filters -------------------------------------------------------------------------------------------
def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size or unit == "s":
            amount = f"{seconds // size} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return ""


def round3(value: float | None) -> str:
    """A figure as the API rounds it (3 decimals), for data attributes; empty for None."""
    return "" if value is None else repr(round(value, 3))


def duration(seconds: float | None) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, rest = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def rate(progress: Any) -> str:
    """Records per second: the smoothed rate (what the ETA uses) when there is one, else the overall one."""
    value = progress.smoothed_rate_per_second
    if value is None:
        value = progress.rate_per_second
    return "—" if value is None else f"{round(value, 3):.1f}/s"


def eta(progress: Any, process: Any) -> str:
    if process.state.finished:
        return "finished"
    if progress.indeterminate:
        return "unknown: the total is not known yet"
    if progress.eta_seconds is None:
        return "unknown: no rate yet"
    return "in " + duration(round(progress.eta_seconds, 3)) + (" (paused)" if process.state.value == "paused" else "")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


# --- static files -------------------------------------------------------------------------------------
def _static_dir() -> Any:
    return resources.files("conveyor.dashboard").joinpath("static")


@cache
def _static(name: str) -> bytes | None:
    if "/" in name or name.startswith(".") or not any(name.endswith(s) for s in STATIC_TYPES):
        return None
    entry = _static_dir().joinpath(name)
    return entry.read_bytes() if entry.is_file() else None


@cache
def asset(name: str) -> str:
    """The URL of a static file, versioned by its content (so it can be cached for a year)."""
    body = _static(name) or b""
    return f"{PREFIX}/static/{name}?v={hashlib.sha256(body).hexdigest()[:12]}"


@app.get(PREFIX + "/static/<name>")
def static(name: str) -> Response:
    body = _static(name)
    if body is None:
        return Response(status_code=404, content_type="text/plain", body="not found")
    suffix = name[name.rfind(".") :]
    return Response(
        status_code=200,
        content_type=STATIC_TYPES[suffix] + "; charset=utf-8",
        body=body.decode(),
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )


# --- errors --------------------------------------------------------------------------------------------
@app.exception_handler(ConveyorError)
def _domain_error(exc: ConveyorError) -> Response:
    return error_page(status_for(exc), exc.message)


@app.not_found
def _no_page(_: Exception) -> Response:
    return error_page(404, "There is no such page.")

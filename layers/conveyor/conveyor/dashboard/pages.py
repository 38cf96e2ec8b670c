"""The dashboard's pages and actions. Each one: read the form/query -> one public service call -> a page.

Scopes are declared per route with the API's own `requires(scope)`; the services behind them keep their own
checks (pausing needs `platform`, whatever the route says). Actions answer 303 back to a page (post/redirect/get),
so they work without JavaScript; htmx only refreshes the live parts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from conveyor import jobs
from conveyor.admin import service as admin
from conveyor.admin.models import RedriveRequest, RetryFailedRequest
from conveyor.dashboard import charts
from conveyor.dashboard.web import (
    NONCE_COOKIE,
    PREFIX,
    cookie,
    field,
    form,
    nonce_cookie,
    page,
    query,
    redirect,
    safe_return,
    session,
    session_cookie,
    url,
)
from conveyor.jobs import Job
from conveyor.platform.auth import sessions
from conveyor.platform.errors import BadRequest, ConveyorError
from conveyor.platform.http.security import principal, requires
from conveyor.platform.settings import get_settings

router = Router()
READ, WRITE, ADMIN = requires("jobs:read"), requires("jobs:write"), requires("admin")
REMINDERS_READ = requires("reminders:read")
STATES = ("scheduled", "queued", "active", "retrying", "completed", "failed", "cancelled")
TABS = (*STATES, "dead-letters")
FINISHED = ("completed", "failed", "cancelled")
PAGE_SIZE = 25
MAX_SELECTED = 100
SORTS = {
    "type": lambda j: j.type,
    "attempts": lambda j: j.attempts,
    "updated": lambda j: j.updated_at,
    "state": lambda j: j.state,
}
NOTICES = {
    "retried": "Retried: the job is queued again.",
    "cancelled": "Cancelled.",
    "ran-now": "Sent to its queue now.",
    "deleted": "Deleted.",
    "paused": "Queue paused: the worker takes no more jobs from it.",
    "resumed": "Queue resumed.",
    "redriven": "Dead letters moved back to the queue.",
    "bulk": "Bulk action done.",
}


def app_query() -> dict[str, str]:
    return dict(router.current_event.query_string_parameters or {})


def _tenant() -> str:
    return principal(router).tenant_id


def _notice() -> str | None:
    """The result of the action that redirected here, from a fixed table (nothing from the URL is echoed)."""
    key = query("notice")
    if key not in NOTICES:
        return None

    def count(name: str) -> int:
        return int(query(name)) if query(name).isdigit() else 0

    if key == "bulk":
        text = f"Done: {count('changed')} changed, {count('skipped')} skipped (their state had changed)."
        return text + (" More jobs match: run it again." if query("more") == "1" else "")
    if key == "redriven":
        return f"{NOTICES[key]} {count('moved')} moved."
    return NOTICES[key]


def _family(name: str) -> str:
    if name not in get_settings().queues:
        raise BadRequest(f"no queue {name!r}")
    return name


# --- sign-in and sign-out -------------------------------------------------------------------------------
@router.get("/signin")
def signin_form() -> Response:
    nonce = sessions.new_signin_nonce()
    return page("signin.html", token=sessions.signin_token(nonce), cookies=[nonce_cookie(nonce)])


@router.post("/signin")
def signin() -> Response:
    """The pasted key is checked once and then forgotten: the cookie holds only a session id and the key's id."""
    if not sessions.signin_token_ok(cookie(NONCE_COOKIE), field("csrf")):
        nonce = sessions.new_signin_nonce()
        return page(
            "signin.html",
            status=403,
            token=sessions.signin_token(nonce),
            cookies=[nonce_cookie(nonce)],
            error="This form expired or did not come from this dashboard. Paste the key again.",
        )
    started = sessions.start(field("key"))
    if started is None:
        nonce = sessions.new_signin_nonce()
        return page(
            "signin.html",
            status=401,
            token=sessions.signin_token(nonce),
            cookies=[nonce_cookie(nonce)],
            error="That API key is unknown, revoked or expired.",
        )
    return redirect(url(""), cookies=[session_cookie(started.cookie, started.expires_at), nonce_cookie("", 0)])


@router.get("/signin/link")
def signin_link() -> Response:
    """A one-time link (make run's banner). The page then navigates itself, so the Strict cookie is sent."""
    started = sessions.redeem_link(query("token"))
    if started is None:
        nonce = sessions.new_signin_nonce()
        return page(
            "signin.html",
            status=401,
            token=sessions.signin_token(nonce),
            cookies=[nonce_cookie(nonce)],
            error="That sign-in link was already used or has expired (links last one minute). Paste a key instead.",
        )
    return page("signed_in.html", cookies=[session_cookie(started.cookie, started.expires_at)])


@router.post("/signout")
def signout() -> Response:
    sessions.end(session())
    return redirect(url("/signin"), cookies=[session_cookie("", None)])


# --- overview -------------------------------------------------------------------------------------------
def _overview_values() -> dict[str, Any]:
    caller = principal(router)
    values: dict[str, Any] = {"queues": sorted(get_settings().queues), "overview": None, "chart": None}
    if caller.allows("admin"):
        overview, _ = admin.overview(caller)  # (the overview, its cache status)
        completed = [sum(m) for m in zip(*(q.jobs.completed_per_minute for q in overview.queues), strict=True)]
        failed = [sum(m) for m in zip(*(q.jobs.failed_per_minute for q in overview.queues), strict=True)]
        values.update(
            overview=overview,
            chart=charts.per_minute(completed, failed),
            sparks={
                q.name: charts.per_minute(q.jobs.completed_per_minute, q.jobs.failed_per_minute, 120, 24)
                for q in overview.queues
            },
        )
    values["now"] = datetime.now(UTC)
    return values


@router.get("", middlewares=[READ])
def overview() -> Response:
    return page("overview.html", notice=_notice(), **_overview_values())


@router.get("/live/overview", middlewares=[READ])
def overview_live() -> Response:
    return page("_overview_live.html", **_overview_values())


# --- a queue: tabs per state, the grid, search, filters, bulk actions ------------------------------------
def _when_input(name: str) -> datetime | None:
    """A datetime-local form value (read as UTC), or None."""
    text = query(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: not a date and time ({text[:40]!r})") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _grid(name: str, state: str) -> dict[str, Any]:
    search = query("q").strip()
    sort, direction = query("sort", "created"), query("dir", "desc")
    filters = {"type": query("type").strip(), "from": query("from"), "to": query("to")}
    found: list[Job]
    next_cursor: str | None = None
    searched = bool(search)
    if searched:
        job = jobs.find(_tenant(), search, caller=principal(router))
        found = [job] if job else []
    else:
        found, next_cursor = jobs.list_jobs(
            _tenant(),
            state=state,
            job_type=filters["type"] or None,
            queue=name,
            created_from=_when_input("from"),
            created_before=_when_input("to"),
            oldest_first=sort == "created" and direction == "asc",
            limit=PAGE_SIZE,
            cursor=query("cursor") or None,
            caller=principal(router),
        )
    if sort in SORTS:  # other columns than `created` sort the page shown (DynamoDB keeps jobs in creation order)
        found = sorted(found, key=SORTS[sort], reverse=direction == "desc")
    return {
        "jobs": found,
        "next_cursor": next_cursor,
        "cursor": query("cursor"),
        "search": search,
        "searched": searched,
        "sort": sort,
        "dir": direction,
        "filters": filters,
    }


@router.get("/queues/<name>", middlewares=[READ])
def queue(name: str) -> Response:
    name = _family(name)
    state = query("state", "failed")
    if state not in TABS:
        raise BadRequest(f"no tab {state!r}")
    values: dict[str, Any] = {
        "name": name,
        "state": state,
        "tabs": TABS,
        "notice": _notice(),
        "dead": None,
        "here": _here(),
    }
    if state == "dead-letters":
        if principal(router).allows("admin"):
            values["dead"] = admin.dead_letters(principal(router), name, limit=admin.PEEK_LIMIT, all_tenants=False)
    else:
        values.update(_grid(name, state))
    values["paused"] = _paused(name)
    return page("queue.html", **values)


def _here() -> str:
    """This page's URL without the notice of the action that led here (where actions send the user back)."""
    params = app_query()
    kept = {k: v for k, v in params.items() if k not in ("notice", "changed", "skipped", "moved", "more")}
    return url(router.current_event.path.removeprefix(PREFIX), **kept)


def _paused(name: str) -> bool | None:
    return admin.is_paused(name) if principal(router).allows("admin") else None


def _back(default: str) -> str:
    return safe_return(field("return"), default)


def _with_notice(target: str, notice: str, **counts: int) -> str:
    base, _, rest = target.partition("?")
    kept = [
        p for p in rest.split("&") if p and not p.startswith(("notice=", "changed=", "skipped=", "moved=", "more="))
    ]
    extra = [f"notice={notice}", *(f"{k}={v}" for k, v in counts.items())]
    return base + "?" + "&".join([*kept, *extra])


BULK_ACTIONS = {"retry": jobs.retry, "cancel": jobs.cancel, "delete": jobs.delete}


@router.post("/queues/<name>/bulk", middlewares=[WRITE])
def bulk_selected(name: str) -> Response:
    """Retry / cancel / delete the selected jobs, each through the same service call as its own button."""
    name = _family(name)
    action = BULK_ACTIONS.get(field("action"))
    if action is None:
        raise BadRequest("choose retry, cancel or delete")
    ids = list(dict.fromkeys(form().get("ids", [])))
    if not ids:
        raise BadRequest("select at least one job")
    if len(ids) > MAX_SELECTED:
        raise BadRequest(f"select at most {MAX_SELECTED} jobs, or use the action on all matching jobs")
    changed = skipped = 0
    for job_id in ids:
        try:
            action(_tenant(), job_id, caller=principal(router))
            changed += 1
        except ConveyorError:  # changed state meanwhile, or not the caller's: counted, the others go on
            skipped += 1
    back = _back(url(f"/queues/{name}"))
    return redirect(_with_notice(back, "bulk", changed=changed, skipped=skipped))


@router.post("/queues/<name>/bulk-matching", middlewares=[ADMIN])
def bulk_matching(name: str) -> Response:
    """Every job matching the tab's filter: admin's bounded bulk operations (one call; the notice says if more
    remain, and the same button continues)."""
    name = _family(name)
    action, state = field("action"), field("state")
    job_type = field("type").strip() or None
    if action == "retry" and state == "failed":
        since = _form_when("from")
        result = admin.retry_failed(_tenant(), RetryFailedRequest(type=job_type, queue=name, since=since))
    elif action == "delete" and state in FINISHED:
        before = _form_when("to") or datetime.now(UTC) + timedelta(seconds=1)
        result = admin.delete_finished(
            _tenant(), state=state, before=before, limit=100, cursor=None, queue=name, job_type=job_type
        )
    else:
        raise BadRequest("all matching: retry failed jobs, or delete finished ones")
    back = _back(url(f"/queues/{name}", state=state))
    notice: dict[str, int] = {"changed": result.changed, "skipped": result.skipped}
    if result.next_cursor:
        notice["more"] = 1
    return redirect(_with_notice(back, "bulk", **notice))


def _form_when(name: str) -> datetime | None:
    text = field(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: not a date and time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.post("/queues/<name>/pause", middlewares=[ADMIN])
def pause(name: str) -> Response:
    admin.set_paused(principal(router), _family(name), True)
    return redirect(_with_notice(_back(url(f"/queues/{name}")), "paused"))


@router.post("/queues/<name>/resume", middlewares=[ADMIN])
def resume(name: str) -> Response:
    admin.set_paused(principal(router), _family(name), False)
    return redirect(_with_notice(_back(url(f"/queues/{name}")), "resumed"))


@router.post("/queues/<name>/redrive", middlewares=[ADMIN])
def redrive(name: str) -> Response:
    result = admin.redrive(principal(router), _family(name), RedriveRequest())
    return redirect(_with_notice(url(f"/queues/{name}", state="dead-letters"), "redriven", moved=result.moved))


# --- a job ------------------------------------------------------------------------------------------------
@router.get("/jobs/<job_id>", middlewares=[READ])
def job(job_id: str) -> Response:
    found = jobs.get(_tenant(), job_id, caller=principal(router))
    return page("job.html", job=found, notice=_notice(), now=datetime.now(UTC))


@router.get("/live/jobs/<job_id>", middlewares=[READ])
def job_live(job_id: str) -> Response:
    return page("_job_live.html", job=jobs.get(_tenant(), job_id, caller=principal(router)), now=datetime.now(UTC))


JOB_ACTIONS = {
    "retry": (jobs.retry, "retried"),
    "cancel": (jobs.cancel, "cancelled"),
    "run-now": (jobs.run_now, "ran-now"),
}


@router.post("/jobs/<job_id>/<action>", middlewares=[WRITE])
def job_action(job_id: str, action: str) -> Response:
    if action == "delete":
        found = jobs.get(_tenant(), job_id, caller=principal(router))
        jobs.delete(_tenant(), job_id, caller=principal(router))
        return redirect(_with_notice(url(f"/queues/{found.queue}", state=found.state), "deleted"))
    if action not in JOB_ACTIONS:
        raise BadRequest(f"no action {action!r}")
    call, notice = JOB_ACTIONS[action]
    call(_tenant(), job_id, caller=principal(router))
    return redirect(_with_notice(url(f"/jobs/{job_id}"), notice))


# --- reminders ----------------------------------------------------------------------------------------------
@router.get("/reminders", middlewares=[REMINDERS_READ])
def reminders() -> Response:
    from conveyor.reminders import service as reminders_service

    today = datetime.now(UTC).date()
    try:
        day = datetime.fromisoformat(query("day")).date() if query("day") else today
    except ValueError:
        raise BadRequest("day: use YYYY-MM-DD") from None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    result = reminders_service.list_reminders(
        _tenant(),
        state=query("state") or None,
        start=start,
        end=start + timedelta(days=1),
        limit=100,
        cursor=query("cursor") or None,
    )
    return page(
        "reminders.html",
        day=day,
        today=today,
        previous=(day - timedelta(days=1)).isoformat(),
        following=(day + timedelta(days=1)).isoformat(),
        reminders=result.items,
        next_cursor=result.next_cursor,
        state=query("state"),
    )


@router.get("/appointments/<appointment_id>", middlewares=[REMINDERS_READ])
def appointment(appointment_id: str) -> Response:
    from conveyor.reminders import service as reminders_service

    found = reminders_service.get_appointment(_tenant(), appointment_id)
    items = reminders_service.appointment_reminders(_tenant(), appointment_id)
    return page("appointment.html", appointment=found, reminders=items)

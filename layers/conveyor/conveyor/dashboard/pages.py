"""The dashboard's pages and actions. Each one: read the form/query -> one public service call -> a page.

Scopes are declared per route with the API's own `requires(scope)`; the services behind them keep their own
checks (pausing needs `platform`, whatever the route says). Actions answer 303 back to a page (post/redirect/get),
so they work without JavaScript; htmx only refreshes the live parts.
"""

from __future__ import annotations

import re
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
PROCESSES_READ, PROCESSES_WRITE = requires("processes:read"), requires("processes:write")
REPORTS_READ = requires("reports:read")
WEBHOOKS_READ, WEBHOOKS_WRITE = requires("webhooks:read"), requires("webhooks:write")
STATES = ("scheduled", "queued", "active", "retrying", "completed", "failed", "cancelled")
TABS = (*STATES, "dead-letters")
FINISHED = ("completed", "failed", "cancelled")
PAGE_SIZE = 25
MAX_SELECTED = 100
OVERVIEW_PROCESSES = 10
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
    "process-pause": "Paused: batches not started yet wait (no attempt is spent); running ones finish.",
    "process-resume": "Resumed: the waiting batches are queued again.",
    "process-cancel": "Cancelled: no new batch starts; running ones finish and are counted.",
    "delivery-resent": "Sent again: the delivery is queued now (a new attempt, outside its retry schedule).",
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
    return page(
        "signin.html", token=sessions.signin_token(nonce), cookies=[nonce_cookie(nonce)], next=_next(query("next"))
    )


def _next(target: str) -> str:
    """Where sign-in goes afterwards: a page of this dashboard (never another site), else the overview."""
    return safe_return(target, url("")) if target else url("")


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
    cookies = [session_cookie(started.cookie, started.expires_at), nonce_cookie("", 0)]
    target = _next(field("next"))
    if target != url(""):
        # Onwards by a page that navigates itself, not a redirect of the form's POST: the CSP's form-action
        # 'self' also covers redirects, and a report download continues to S3 (another origin).
        return page("signed_in.html", target=target, cookies=cookies)
    return redirect(target, cookies=cookies)


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
    if caller.allows("processes:read"):
        from conveyor.processes import service as processes

        running, _ = processes.list_processes(
            caller.tenant_id, state="running", process_type=None, limit=OVERVIEW_PROCESSES, after=None
        )
        values["processes"] = [(p, processes.listed_progress(p)) for p in running]
    values["now"] = datetime.now(UTC)
    return values


@router.get("", middlewares=[READ])
def overview() -> Response:
    return page("overview.html", notice=_notice(), **_overview_values())


@router.get("/live/overview", middlewares=[READ])
def overview_live() -> Response:
    return page("_overview_live.html", **_overview_values())


# --- a queue: tabs per state, the grid, search, filters, bulk actions ------------------------------------
def _when(name: str, text: str | None) -> datetime | None:
    """A datetime-local input's value (read as UTC when it has no offset), or None when empty."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: not a date and time ({text[:40]!r})") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _when_input(name: str) -> datetime | None:
    """A datetime-local filter of the query string, or None."""
    return _when(name, query(name))


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
    """A datetime-local field of a posted form, or None."""
    return _when(name, field(name))


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
    reminders, next_cursor = reminders_service.list_reminders(
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
        reminders=reminders,
        next_cursor=next_cursor,
        state=query("state"),
    )


@router.get("/appointments/<appointment_id>", middlewares=[REMINDERS_READ])
def appointment(appointment_id: str) -> Response:
    from conveyor.reminders import service as reminders_service

    found = reminders_service.get_appointment(_tenant(), appointment_id)
    items = reminders_service.appointment_reminders(_tenant(), appointment_id)
    return page("appointment.html", appointment=found, reminders=items)


# --- processes ---------------------------------------------------------------------------------------------
PROCESS_STATES = ("pending", "running", "paused", "completed", "completed_with_errors", "failed", "cancelled")
PROCESS_ACTIONS = ("pause", "resume", "cancel")
PROCESS_ID = re.compile(r"prc_[0-9A-HJKMNP-TV-Z]{26}")


def _process_id(text: str) -> str:
    if not PROCESS_ID.fullmatch(text):
        raise BadRequest("not a process id")
    return text


def _processes_values() -> dict[str, Any]:
    from conveyor.processes import service as processes

    state, kind, after = query("state"), query("type").strip(), query("after")
    if state and state not in PROCESS_STATES:
        raise BadRequest(f"no state {state!r}")
    found, last = processes.list_processes(
        _tenant(),
        state=state or None,
        process_type=kind or None,
        limit=PAGE_SIZE,
        after=_process_id(after) if after else None,
    )
    return {
        "rows": [(p, processes.listed_progress(p)) for p in found],
        "next_cursor": last,
        "state": state,
        "type": kind,
        "after": after,
        "states": PROCESS_STATES,
        "now": datetime.now(UTC),
    }


@router.get("/processes", middlewares=[PROCESSES_READ])
def processes_list() -> Response:
    return page("processes.html", notice=_notice(), **_processes_values())


@router.get("/live/processes", middlewares=[PROCESSES_READ])
def processes_live() -> Response:
    return page("_processes_live.html", **_processes_values())


def _process_values(process_id: str) -> dict[str, Any]:
    """One process as GET /v1/processes/{id} reports it (the same progress function, as of the same instant),
    with its newest error samples and its children."""
    from conveyor.processes import service as processes

    found = processes.require(_tenant(), _process_id(process_id))
    children = processes.children(_tenant(), found.id) if found.children.total else []
    return {
        "process": found,
        "progress": processes.progress_of(found),
        "errors": processes.errors(_tenant(), found.id),
        "children": [(child, processes.listed_progress(child)) for child, _ in children],
        "policies": {child.id: policy.value for child, policy in children},
    }


@router.get("/processes/<process_id>", middlewares=[PROCESSES_READ])
def process_detail(process_id: str) -> Response:
    return page("process.html", notice=_notice(), **_process_values(process_id))


@router.get("/live/processes/<process_id>", middlewares=[PROCESSES_READ])
def process_live(process_id: str) -> Response:
    return page("_process_live.html", **_process_values(process_id))


@router.post("/processes/<process_id>/<action>", middlewares=[PROCESSES_WRITE])
def process_action(process_id: str, action: str) -> Response:
    """Pause / resume / cancel through the processes service (its conditional transitions; 409 page if the
    process is no longer in a state that allows it)."""
    from conveyor.processes import service as processes

    if action not in PROCESS_ACTIONS:
        raise BadRequest(f"no action {action!r}")
    call = {"pause": processes.pause, "resume": processes.resume, "cancel": processes.cancel}[action]
    call(_tenant(), _process_id(process_id))
    return redirect(_with_notice(url(f"/processes/{process_id}"), f"process-{action}"))


# --- reports ----------------------------------------------------------------------------------------------------
@router.get("/reports", middlewares=[REPORTS_READ])
def reports() -> Response:
    from conveyor.platform.dynamo import decode_cursor, encode_cursor
    from conveyor.reports import service as reports_service

    after = decode_cursor(query("cursor") or None, {"sk": "rpt_"})
    items, last = reports_service.list_reports(_tenant(), limit=PAGE_SIZE, after=after["sk"] if after else None)
    return page(
        "reports.html",
        reports=[reports_service.status(r) for r in items],
        next_cursor=encode_cursor(sk=last) if last else None,
        now=datetime.now(UTC),
    )


@router.get("/reports/<report_id>/download", middlewares=[REPORTS_READ])
def report_download(report_id: str) -> Response:
    """The link the "report ready" email carries: a presigned URL minted now, on every click (302)."""
    from conveyor.reports import service as reports_service

    location = reports_service.download_url(_tenant(), report_id)
    return Response(status_code=302, headers={"Location": location, "Cache-Control": "no-store"}, body="")


# --- webhooks ---------------------------------------------------------------------------------------------------
DELIVERY_STATUSES = ("pending", "delivered", "failed", "skipped")
SUBSCRIPTION_ID = re.compile(r"whk_[0-9A-Z]{26}")  # as the API's path parameters (webhooks.api)
DELIVERY_ID = re.compile(r"dlv_[0-9A-Z]{26}")


def _checked(pattern: re.Pattern[str], text: str, what: str) -> str:
    if not pattern.fullmatch(text):
        raise BadRequest(f"not a {what} id")
    return text


@router.get("/webhooks", middlewares=[WEBHOOKS_READ])
def webhooks() -> Response:
    """The tenant's subscriptions with their health (the same service the API's GET /v1/webhooks reads)."""
    from conveyor.webhooks import service as webhooks_service

    return page("webhooks.html", subscriptions=webhooks_service.list_all(_tenant()), now=datetime.now(UTC))


@router.get("/webhooks/<subscription_id>", middlewares=[WEBHOOKS_READ])
def webhook(subscription_id: str) -> Response:
    """One subscription and its delivery log, newest first, filtered by status, paged by the API's cursor."""
    from conveyor.webhooks import service as webhooks_service

    tenant, sub_id = _tenant(), _checked(SUBSCRIPTION_ID, subscription_id, "subscription")
    status = query("status")
    if status and status not in DELIVERY_STATUSES:
        raise BadRequest(f"no status {status!r}")
    found = webhooks_service.get(tenant, sub_id)
    items, next_cursor = webhooks_service.list_deliveries(
        tenant, sub_id, status=status or None, event_type=None, limit=PAGE_SIZE, cursor=query("cursor") or None
    )
    return page(
        "webhook.html",
        notice=_notice(),
        subscription=found,
        deliveries=items,
        next_cursor=next_cursor,
        shown_status=status,  # not `status`: page() takes that as the HTTP status
        statuses=DELIVERY_STATUSES,
        now=datetime.now(UTC),
    )


@router.post("/webhooks/<subscription_id>/deliveries/<delivery_id>/resend", middlewares=[WEBHOOKS_WRITE])
def webhook_resend(subscription_id: str, delivery_id: str) -> Response:
    """POST /v1/webhooks/{id}/deliveries/{delivery_id}/resend's use case (webhooks.service.resend)."""
    from conveyor.webhooks import service as webhooks_service

    sub_id = _checked(SUBSCRIPTION_ID, subscription_id, "subscription")
    webhooks_service.resend(_tenant(), sub_id, _checked(DELIVERY_ID, delivery_id, "delivery"))
    return redirect(_with_notice(url(f"/webhooks/{sub_id}"), "delivery-resent"))

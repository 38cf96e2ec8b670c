"""A Python client for the Conveyor API (httpx): typed methods for the routes, waiting for a job, iterating
cursored lists, retries on 429/503 (honouring Retry-After), errors raised as typed exceptions carrying the API's
`code`. The `conveyor` CLI is built on it.

    from conveyor.client import Client
    with Client.discover() as conveyor:  # .local/stack.json (make run), or CONVEYOR_URL / CONVEYOR_API_KEY
        welcome = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}
        job = conveyor.enqueue("email.send", welcome)
        print(conveyor.wait(job["id"], timeout=60)["state"])  # completed
        results = conveyor.enqueue_many({"type": "email.send", "payload": welcome} for _ in range(500))

Responses are the API's JSON (see /v1/openapi.json for each shape) as plain dicts and lists.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

STATE_FILE = Path(".local/stack.json")  # written by `make run` (conveyor-local)
DEFAULT_URL = "http://127.0.0.1:3000"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
BATCH_MAX = 100  # jobs per POST /v1/jobs/batch
BATCH_MAX_BYTES = 250 * 1024  # the API takes bodies up to 256 KB
Json = dict[str, Any]


class ApiError(Exception):
    """An error answer of the API: its HTTP status, `code`, `message` and `details`."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status, self.code, self.message, self.details = status, code, message, details


class BadRequest(ApiError):
    """400: not UTF-8, not JSON, or a cursor the API did not make."""


class Unauthorized(ApiError):
    """401: no key, or an unknown, expired or revoked one."""


class Forbidden(ApiError):
    """403: the key lacks the scope (details.required_scope)."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: the state forbids it, or a concurrent change won."""


class ValidationFailed(ApiError):
    """422: invalid fields (details: loc, msg, type)."""


class Unavailable(ApiError):
    """429 or 503 after the retries ran out."""


class ConnectionFailed(ApiError):
    """No answer at all (nothing listening, DNS, timeout)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: BadRequest,
    422: ValidationFailed,
    429: Unavailable,
    503: Unavailable,
}


def stack_settings(state_file: Path = STATE_FILE) -> Json:
    """What `make run` wrote about the local stack (url, api_key, endpoint_url, resources), or {}."""
    try:
        found = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


class Client:
    """One API key against one stack. Safe to reuse; close it (or use `with`) when done."""

    def __init__(
        self,
        url: str,
        key: str | None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._retries, self._max_wait, self._sleep = retries, max_retry_wait, sleep

    @classmethod
    def discover(cls, url: str | None = None, key: str | None = None, **options: Any) -> Client:
        """`url`/`key`, else CONVEYOR_URL / CONVEYOR_API_KEY, else the local stack's .local/stack.json."""
        saved = stack_settings()
        url = url or os.environ.get("CONVEYOR_URL") or saved.get("url") or DEFAULT_URL
        key = key or os.environ.get("CONVEYOR_API_KEY") or saved.get("api_key")
        return cls(url, key, **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- transport ------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API call: the decoded JSON (None for 204). 429/503 are retried (Retry-After, else backoff)."""
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, path, json=body, params=query, headers=headers)
            except httpx.HTTPError as exc:
                raise ConnectionFailed(0, "connection_failed", f"no answer from {self.url} ({exc})") from None
            if response.status_code in (429, 503) and attempt < self._retries:
                self._sleep(self._wait(response, attempt))
                continue
            return _decoded(response)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _wait(self, response: httpx.Response, attempt: int) -> float:
        given = response.headers.get("retry-after", "")
        seconds = float(given) if given.replace(".", "", 1).isdigit() else 0.5 * 2**attempt
        return min(seconds, self._max_wait)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[Json]:
        cursor = params.pop("cursor", None)
        while True:
            page = self.request("GET", path, params={**params, "cursor": cursor})
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # --- health ---------------------------------------------------------------------------------------
    def health(self) -> Json:
        return dict(self.request("GET", "/health"))

    def ready(self) -> Json:
        """The readiness report (a 503 report is returned too, not raised: it names the failing check)."""
        response = self._http.get("/health/ready")
        return dict(response.json())

    # --- jobs -----------------------------------------------------------------------------------------
    def enqueue(
        self,
        job_type: str,
        payload: Json | None = None,
        *,
        run_at: datetime | str | None = None,
        delay_seconds: int | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        body: Json = {"type": job_type, "payload": payload or {}}
        if run_at is not None:
            body["run_at"] = _param(run_at)
        if delay_seconds is not None:
            body["delay_seconds"] = delay_seconds
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(self.request("POST", "/v1/jobs", body=body, headers=headers))

    def enqueue_many(self, jobs: Iterable[Json], *, chunk: int = BATCH_MAX) -> list[Json]:
        """Enqueue many jobs through POST /v1/jobs/batch, `chunk` (at most 100) to a request and each request's
        body under the API's 256 KB: one result per job, in order ({"index", "status": created | duplicate |
        conflict | invalid | unavailable, "status_code", "job" or "error"}; `index` counts across all `jobs`).

        Each job is what `enqueue` sends ({"type", "payload", "run_at"?, "delay_seconds"?, "max_attempts"?}) plus
        an optional "idempotency_key". An error answer for a whole request (401, 413, a 503 after the retries)
        raises; the requests before it were stored, so give keys to jobs you may send again."""
        if not 1 <= chunk <= BATCH_MAX:
            raise ValueError(f"chunk must be 1..{BATCH_MAX}")
        results: list[Json] = []
        for batch in _batches(jobs, chunk, BATCH_MAX_BYTES):
            offset = len(results)
            answer = self.request("POST", "/v1/jobs/batch", body={"items": batch})
            results += [{**item, "index": offset + int(item["index"])} for item in answer["items"]]
        return results

    def get_job(self, job_id: str) -> Json:
        return dict(self.request("GET", f"/v1/jobs/{_segment(job_id)}"))

    def list_jobs(
        self,
        *,
        state: str | None = None,
        job_type: str | None = None,
        queue: str | None = None,
        limit: int = 25,
        cursor: str | None = None,
        order: str = "newest",
    ) -> Json:
        """One page: {"items": [...], "next_cursor": ...}."""
        params = {"state": state, "type": job_type, "queue": queue, "limit": limit, "cursor": cursor, "order": order}
        return dict(self.request("GET", "/v1/jobs", params=params))

    def iter_jobs(
        self, *, state: str | None = None, job_type: str | None = None, queue: str | None = None, page_size: int = 100
    ) -> Iterator[Json]:
        """Every matching job, newest first, page after page."""
        return self._pages("/v1/jobs", {"state": state, "type": job_type, "queue": queue, "limit": page_size})

    def cancel(self, job_id: str) -> Json:
        return dict(self.request("POST", f"/v1/jobs/{_segment(job_id)}/cancel"))

    def retry(self, job_id: str) -> Json:
        return dict(self.request("POST", f"/v1/jobs/{_segment(job_id)}/retry"))

    def run_now(self, job_id: str) -> Json:
        return dict(self.request("POST", f"/v1/jobs/{_segment(job_id)}/run-now"))

    def delete_job(self, job_id: str) -> None:
        self.request("DELETE", f"/v1/jobs/{_segment(job_id)}")

    def wait(
        self,
        job_id: str,
        timeout: float = 60.0,
        *,
        poll: float = 0.5,
        on_change: Callable[[Json], None] | None = None,
    ) -> Json:
        """Poll until the job is completed, failed or cancelled; the job. TimeoutError after `timeout` seconds.
        `on_change` sees the job each time its state or progress changes (the CLI's watch draws with it)."""
        deadline = time.monotonic() + timeout
        seen: tuple[Any, ...] | None = None
        while True:
            job = self.get_job(job_id)
            marker = (job.get("state"), job.get("progress"), job.get("attempts"))
            if on_change is not None and marker != seen:
                on_change(job)
            seen = marker
            if job.get("state") in TERMINAL:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job.get('state')} after {timeout:g} s")
            self._sleep(poll)

    # --- queues (admin) -------------------------------------------------------------------------------
    def queues(self) -> Json:
        return dict(self.request("GET", "/v1/queues"))

    def dead_letters(self, queue: str, *, limit: int = 10) -> Json:
        return dict(self.request("GET", f"/v1/queues/{_segment(queue)}/dead-letters", params={"limit": limit}))

    def redrive(self, queue: str, *, max_messages: int | None = None, all_tenants: bool = False) -> Json:
        body: Json = {"all_tenants": all_tenants} | ({"max": max_messages} if max_messages else {})
        return dict(self.request("POST", f"/v1/queues/{_segment(queue)}/redrive", body=body))

    def pause(self, queue: str) -> Json:
        return dict(self.request("POST", f"/v1/queues/{_segment(queue)}/pause"))

    def resume(self, queue: str) -> Json:
        return dict(self.request("POST", f"/v1/queues/{_segment(queue)}/resume"))

    # --- webhooks -------------------------------------------------------------------------------------
    def webhooks(self) -> list[Json]:
        return list(self.request("GET", "/v1/webhooks").get("items", []))

    def subscribe(self, url: str, event_types: list[str], *, description: str | None = None) -> Json:
        """A new subscription; its signing secret (`secret`) is in this answer only."""
        body: Json = {"url": url, "event_types": event_types} | ({"description": description} if description else {})
        return dict(self.request("POST", "/v1/webhooks", body=body))

    def webhook(self, subscription_id: str) -> Json:
        return dict(self.request("GET", f"/v1/webhooks/{_segment(subscription_id)}"))

    def delete_webhook(self, subscription_id: str) -> None:
        self.request("DELETE", f"/v1/webhooks/{_segment(subscription_id)}")

    def test_webhook(self, subscription_id: str, event_type: str = "job.completed") -> Json:
        body = {"event_type": event_type}
        return dict(self.request("POST", f"/v1/webhooks/{_segment(subscription_id)}/test", body=body))

    def iter_deliveries(self, subscription_id: str, *, status: str | None = None) -> Iterator[Json]:
        """A subscription's delivery log, newest first, page after page."""
        return self._pages(f"/v1/webhooks/{_segment(subscription_id)}/deliveries", {"status": status, "limit": 100})


def _batches(jobs: Iterable[Json], most: int, max_bytes: int) -> Iterator[list[Json]]:
    """Runs of at most `most` jobs whose batch body stays under `max_bytes` (a job too big alone goes alone: the
    API then answers 413 for it)."""
    batch: list[Json] = []
    size = len(b'{"items": []}')
    for job in jobs:
        job_size = len(json.dumps(job).encode()) + 2  # with its ", " separator
        if batch and (len(batch) == most or size + job_size > max_bytes):
            yield batch
            batch, size = [], len(b'{"items": []}')
        batch.append(job)
        size += job_size
    if batch:
        yield batch


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _param(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decoded(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        if response.is_success:
            return None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success:
        return data
    error = (data or {}).get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code, message, details = str(error.get("code")), str(error.get("message")), error.get("details")
    else:  # not the API's own answer (API Gateway's 429/503, a proxy)
        code, message, details = "http_error", (response.text[:200] or response.reason_phrase), None
    cls = _BY_STATUS.get(response.status_code, ApiError)
    raise cls(response.status_code, code, message, details)

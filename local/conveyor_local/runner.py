"""The local stack, running: an emulator, template.yaml's resources, an HTTP server, a poller per event source and a
timer per schedule, all in one process (dev only, never deployed). `python -m conveyor_local` / `make run` drive it.

Nothing here names a function, queue or table: everything comes from the template.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("conveyor_local")
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
STATE_FILE = "stack.json"


@dataclass
class Options:
    template: Path = Path("template.yaml")
    host: str = "127.0.0.1"
    port: int = 3000
    emulator_port: int = 3001  # 0: any free port; a busy default falls back to a free one
    emulator_host: str = "127.0.0.1"  # 0.0.0.0: also reachable from Docker containers (`sam local invoke`)
    endpoint_url: str | None = None  # an external emulator instead of the embedded one
    fast_schedules: float | None = None  # fire every schedule every N seconds instead of at its rate
    state_dir: Path | None = None  # default: .local beside the template
    region: str = "us-east-1"
    parameters: dict[str, str] = field(default_factory=dict)
    pretty_logs: bool = True
    color: bool = False
    show_metrics: bool = False
    access_log: str = "writes"  # all | writes (all but successful reads) | none
    demo_tenant: str = "demo"
    demo_scopes: tuple[str, ...] = ("jobs:read", "jobs:write", "admin")
    poll_wait_seconds: int = 1  # SQS long poll per receive: also how fast an idle poller notices a stop
    fake_crm: int | None = None  # serve fake Zoho / Pipedrive / HubSpot APIs with this many people each
    timeout_scale: float = 1.0  # a function's Timeout x this before an invocation counts as timed out

    @property
    def state(self) -> Path:
        return self.state_dir or self.template.resolve().parent / ".local"


@dataclass
class Ready:
    """What the banner shows; also written to <state dir>/stack.json for `conveyor demo` and scripts."""

    url: str
    endpoint_url: str
    embedded_emulator: bool
    api_key: str | None
    tenant: str
    outbox: str
    functions: int
    sources: int
    schedules: list[str]
    started_in: float
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> table name / queue URL
    env_json: str = ""  # the `sam local invoke --env-vars` file
    container_endpoint: str = ""  # the emulator as a Docker container reaches it (what env.json names)
    containers_reach_emulator: bool | None = None  # False: ours listens on loopback only; None: external, unknown
    signin_link: str | None = None  # one-time dashboard sign-in for the demo key (valid one minute)
    fake_crms: dict[str, dict[str, str]] = field(default_factory=dict)  # vendor -> base_url, token_url, credentials

    @property
    def dashboard(self) -> str:
        return self.url + "/dashboard"

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "endpoint_url": self.endpoint_url,
            "api_key": self.api_key,
            "tenant": self.tenant,
            "outbox": self.outbox,
            "env_json": self.env_json,
            "container_endpoint": self.container_endpoint,
            "pid": os.getpid(),
            "resources": self.resources,
            "dashboard": self.dashboard,
            "fake_crms": self.fake_crms,
        }


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._emulator: Any = None
        self.http: Any = None
        self.stack: Any = None
        self.outbox: Any = None
        self.ready: Ready | None = None
        self._state_file: Path | None = None
        self.fake_crm_server: Any = None

    # --- start -------------------------------------------------------------------------------------
    def prepare(self) -> str:
        """The emulator (embedded unless options.endpoint_url), this process pointed at it, the outbox, and the
        template's resources in it. What `make run` and `conveyor-local invoke` share. Returns the endpoint."""
        options = self.options
        endpoint = options.endpoint_url or self._start_emulator()
        self._isolate_environment(endpoint)

        from conveyor_local.outbox import Outbox
        from conveyor_local.stack import Stack

        options.state.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(options.state / "outbox").install()  # before any function creates its SES client
        # Locally, webhooks may reach this machine (the built-in inbox, a receiver you run); a deployment may not.
        # Report files: the "ready" email links to this server, and a copy of each lands in .local/reports/.
        parameters = {
            "OutboundAllowPrivate": "true",
            "PublicApiUrl": f"http://{options.host}:{options.port}",
            "ReportsLocalCopyDir": str(options.state / "reports"),
            **options.parameters,
        }
        self.stack = Stack(
            options.template,
            parameters=parameters,
            region=options.region,
            timeout_scale=options.timeout_scale,
            own_emulator=self._emulator is not None,
        ).provision()
        return endpoint

    def start(self) -> Ready:
        started = time.monotonic()
        options = self.options
        if options.port and not _port_free(options.host, options.port):
            raise OSError(f"port {options.port} on {options.host} is already in use")
        endpoint = self.prepare()

        from conveyor_local import env_json
        from conveyor_local.seed import seed
        from conveyor_local.terminal import patch_powertools_loggers

        state = options.state
        # The outbox holds what this run sends, as the emulator holds this run's data (`invoke` keeps it: it reads
        # what the function it ran sent).
        cleared = self.outbox.clear()
        if cleared:
            log.info("outbox: removed %d message(s) an earlier run left", cleared)
        for logical_id, kind in self.stack.template.unsupported().items():
            log.warning("%s (%s) is not created locally; references to it resolve to a placeholder", logical_id, kind)
        for event in self.stack.skipped_events():
            log.warning("event %s is not run locally", event)
        enabled = [s for s in self.stack.schedules if s.enabled]
        for schedule in enabled:
            schedule.next_after(datetime.now(UTC))  # an unreadable expression stops the start, naming the event
        self.stack.warm_up()
        patch_powertools_loggers(pretty=options.pretty_logs, color=options.color)

        from conveyor_local.httpserver import LocalHttpServer

        self.http = LocalHttpServer((options.host, options.port), self.stack.gateway, access_log=options.access_log)
        self._spawn("http", self.http.serve_forever, 0.1)
        for source in self.stack.sources:
            self._spawn(f"poll {source.name}", self._poll, source)
        for schedule in enabled:
            self._spawn(f"schedule {schedule.name}", self._fire_on_time, schedule)

        fakes = self._start_fake_crms()
        key = self._demo_key()
        seed(self.stack, api_url=self.http.url, wait_until_due=False)  # the records events/*.json act on
        emulator_host = "" if options.endpoint_url else options.emulator_host
        for_containers = self._container_endpoint(endpoint, emulator_host)
        env_file = env_json.write(state / env_json.FILE, self.stack.functions, endpoint, for_containers)
        link = self._signin_link(key)
        self.ready = Ready(
            url=self.http.url,
            endpoint_url=endpoint,
            embedded_emulator=options.endpoint_url is None,
            api_key=key,
            tenant=options.demo_tenant,
            outbox=str(state / "outbox"),
            functions=len(self.stack.functions),
            sources=len(self.stack.sources),
            schedules=[f"{s.name}: {self._cadence(s)}" for s in enabled],
            started_in=time.monotonic() - started,
            resources=dict(self.stack.template.physical),
            env_json=str(env_file),
            container_endpoint=for_containers,
            containers_reach_emulator=None
            if options.endpoint_url
            else env_json.reachable_from_containers(emulator_host),
            signin_link=f"{self.http.url}/dashboard/signin/link?token={link}" if link else None,
            fake_crms=fakes,
        )
        self._state_file = state / STATE_FILE
        self._state_file.write_text(json.dumps(self.ready.as_json(), indent=2) + "\n")
        return self.ready

    def _start_fake_crms(self) -> dict[str, dict[str, str]]:
        """`--fake-crm N`: the fake CRMs (conveyor_local.fake_crm) on a free loopback port, N people each."""
        if not self.options.fake_crm:
            return {}
        from conveyor_local.fake_crm import FakeCrms

        self.fake_crm_server = FakeCrms(people=self.options.fake_crm).start()
        found = {}
        for vendor, fake in self.fake_crm_server.vendors.items():
            found[vendor] = {
                "base_url": self.fake_crm_server.url(vendor),
                "token_url": self.fake_crm_server.token_url(vendor),
                "api_token": fake.api_token,
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            }
        return found

    @staticmethod
    def _container_endpoint(endpoint: str, emulator_host: str) -> str:
        """The emulator as a container on Docker's bridge reaches it: ours on the bridge address when it listens on
        every interface; an external one (--endpoint-url) by its own address unless that is loopback."""
        from conveyor_local import env_json

        parts = urlsplit(endpoint)
        host = emulator_host or (parts.hostname or "")
        return env_json.container_endpoint(host, parts.port or (443 if parts.scheme == "https" else 80))

    def _start_emulator(self) -> str:
        from conveyor_local.emulator import Emulator

        host, port = self.options.emulator_host, self.options.emulator_port
        if port and not _port_free(host, port):
            log.warning("port %d is busy; the emulator takes a free port instead (see the banner)", port)
            port = 0
        self._emulator = Emulator(host, port)
        self._emulator.start()
        if self._emulator.errors:
            raise RuntimeError(f"the embedded emulator could not start on {host}:{port}: {self._emulator.errors[0]}")
        bound_host, bound_port = self._emulator.get_host_and_port()
        from conveyor_local.env_json import is_wildcard

        if is_wildcard(bound_host):  # listening everywhere: this process reaches it on loopback
            bound_host = "127.0.0.1"
        return f"http://{bound_host}:{bound_port}"

    def _isolate_environment(self, endpoint: str) -> None:
        """Every AWS call of this process goes to the emulator with fake credentials, whatever the shell had."""
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL_") or name in (
                "AWS_PROFILE",
                "AWS_SESSION_TOKEN",
                "AWS_SECURITY_TOKEN",
                "AWS_DEFAULT_PROFILE",
            ):
                del os.environ[name]
        os.environ.update(FAKE_CREDENTIALS)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": self.options.region,
                "AWS_DEFAULT_REGION": self.options.region,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )

    def _demo_key(self) -> str | None:
        """A fresh API key for the demo tenant, minted with the project's own key module (as `conveyor keys` does)."""
        try:
            from conveyor.platform.auth import keys
        except ImportError:
            log.warning("no conveyor.platform.auth.keys module: no demo API key")
            return None
        key, _ = keys.create(self.options.demo_tenant, set(self.options.demo_scopes), name="conveyor-local demo")
        return key

    def _signin_link(self, key: str | None) -> str | None:
        """A one-time token signing the demo key into the dashboard (the key never goes into a URL)."""
        if key is None:
            return None
        from conveyor.platform.auth import keys, sessions

        key_id = keys.key_id_of(key)
        return sessions.create_link(key_id) if key_id else None

    def _cadence(self, schedule: Any) -> str:
        fast = self.options.fast_schedules
        return f"{schedule.expression}, fired every {fast:g}s (--fast-schedules)" if fast else schedule.expression

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- the loops ---------------------------------------------------------------------------------
    def _poll(self, source: Any) -> None:
        """Lambda's poller for one event source. A batch received before a stop is finished (invoked and settled)."""
        from conveyor_local.event_sources import SqsSource

        is_queue = isinstance(source, SqsSource)
        writes = self._emulator.writes if self._emulator is not None else None
        while not self.stopping.is_set():
            seen = writes.count if writes is not None else 0
            try:
                delivered = self.stack.pump(
                    source, self.options.poll_wait_seconds if is_queue else 0, self.stopping, hold=True
                )
            except Exception:  # noqa: BLE001 - an emulator hiccup must not kill the poller; say it and go on
                if self.stopping.is_set():
                    break
                log.exception("poller %s failed; retrying in 2 s", source.name)
                self.stopping.wait(2)
                continue
            if delivered or is_queue:
                continue
            # Streams have no long poll. The embedded emulator says when a table was written (read again at once;
            # else once a second); an external one is read 4 times a second, as Lambda reads a shard.
            if writes is not None:
                writes.wait(seen, 1.0)
            else:
                self.stopping.wait(0.25)

    def _fire_on_time(self, schedule: Any) -> None:
        fast = self.options.fast_schedules
        now = datetime.now(UTC)
        due = now + timedelta(seconds=fast) if fast else schedule.next_after(now)
        while due is not None and not self.stopping.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
            try:
                result = self.stack.fire(schedule, due)
                log.debug("fired %s -> %s", schedule.name, result)
            except Exception:  # noqa: BLE001 - a failed run is logged; the next firing is the retry
                log.exception("%s failed", schedule.name)
            if schedule.expression.startswith("at("):
                break
            now = datetime.now(UTC)
            due = now + timedelta(seconds=fast) if fast else schedule.next_after(max(now, due))

    # --- stop --------------------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking requests, let every poller finish its in-flight batch, then stop the emulator.

        Returns False if some thread was still busy after `timeout` (default: the longest function Timeout + 5 s).
        """
        self.stopping.set()
        if self.fake_crm_server is not None:
            self.fake_crm_server.stop()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        if timeout is None:
            timeouts = [spec.timeout for spec in (self.stack.functions.values() if self.stack else [])]
            timeout = max(timeouts, default=0) + self.options.poll_wait_seconds + 5
        deadline = time.monotonic() + timeout
        busy = []
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                busy.append(thread.name)
        if busy:
            log.warning("still busy after %.0fs: %s", timeout, ", ".join(busy))
        if self.outbox is not None:
            self.outbox.uninstall()
        if self._emulator is not None:
            self._emulator.stop()
        if self._state_file is not None:
            self._state_file.unlink(missing_ok=True)
        return not busy


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True

"""The HTTP front door: a stdlib threading HTTP server handing every request to the Gateway (dev only)."""

from __future__ import annotations

import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conveyor_local.gateway import Gateway

log = logging.getLogger("conveyor_local")
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], gateway: Gateway, *, access_log: str = "writes") -> None:
        super().__init__(address, _Handler)
        self.gateway, self.access_log = gateway, access_log

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "conveyor-local"

    def _serve(self) -> None:
        started = time.monotonic()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._reply(411, {"content-type": "application/json"}, b'{"message":"Length Required"}', started)
            return
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}', started)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():  # repeated headers are joined with commas, as API Gateway does
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        port = self.server.server_address[1]
        headers.setdefault("x-forwarded-for", self.client_address[0])
        headers.setdefault("x-forwarded-port", str(port))
        headers.setdefault("x-forwarded-proto", "http")
        response = self.server.gateway.handle(self.command, self.path, headers, body)
        self._reply(response.status, response.headers, response.body, started, response.cookies)

    def _reply(
        self, status: int, headers: dict[str, str], body: bytes, started: float, cookies: list[str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        mode = self.server.access_log
        if mode == "all" or (mode == "writes" and (status >= 400 or self.command not in ("GET", "HEAD", "OPTIONS"))):
            log.info("%s %s -> %d (%d ms)", self.command, self.path, status, (time.monotonic() - started) * 1000)

    def __getattr__(self, name: str) -> Any:
        """Every method, TRACE, CONNECT and made-up ones included, goes to the gateway, which answers those no route
        has as API Gateway does (404 JSON), instead of the stdlib's 501 HTML page."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Silenced: _reply logs one line per request instead."""

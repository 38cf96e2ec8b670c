"""`make run`'s HTTP server answers every request as API Gateway would, over a real socket."""

from __future__ import annotations

import http.client
import json
import threading

import pytest


@pytest.fixture
def server(stack):
    from conveyor_local.httpserver import LocalHttpServer

    running = LocalHttpServer(("127.0.0.1", 0), stack.gateway, access_log="none")
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def send(server, method: str, path: str) -> tuple[int, str, bytes]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, headers={"Authorization": "Bearer cvk_x"})
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW", "LINK"])
def test_a_method_no_route_has_is_404_json_as_on_api_gateway(server, method):
    status, content_type, body = send(server, method, "/v1/jobs")
    assert (status, content_type) == (404, "application/json")
    assert json.loads(body) == {"message": "Not Found"}


def test_a_known_method_on_a_route_that_lacks_it_is_404_json_too(server):
    status, _, body = send(server, "PATCH", "/v1/jobs")
    assert status == 404 and json.loads(body) == {"message": "Not Found"}


def test_routes_still_answer_through_the_authorizer(server):
    status, content_type, body = send(server, "GET", "/health")
    assert (status, content_type) == (200, "application/json") and json.loads(body) == {"status": "ok"}

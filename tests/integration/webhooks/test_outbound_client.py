"""The SSRF-safe client against real local servers: it connects to the vetted address with the original Host
and TLS name, never follows redirects, and refuses before connecting."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from conveyor.platform.outbound import Blocked, OutboundClient, OutboundError, Policy

LOCAL = Policy(allow_private=True)


def _to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_the_request_goes_to_the_vetted_address_with_the_original_host_header(httpserver: HTTPServer):
    httpserver.expect_request("/hook", method="POST").respond_with_data("thanks", status=200)
    client = OutboundClient(LOCAL, resolver=_to_loopback)

    answer = client.post(f"http://hooks.example.test:{httpserver.port}/hook", content=b"{}", headers={})

    assert answer.status == 200 and answer.excerpt == b"thanks"
    [(request, _)] = httpserver.log
    assert request.headers["Host"] == f"hooks.example.test:{httpserver.port}"


def test_a_redirect_to_loopback_is_not_followed(httpserver: HTTPServer):
    httpserver.expect_request("/hook").respond_with_response(
        Response(status=302, headers={"Location": f"http://127.0.0.1:{httpserver.port}/internal"})
    )
    httpserver.expect_request("/internal").respond_with_data("secret")
    client = OutboundClient(LOCAL, resolver=_to_loopback)

    answer = client.post(httpserver.url_for("/hook"), content=b"{}", headers={})

    assert answer.status == 302
    assert [r.path for r, _ in httpserver.log] == ["/hook"]


def test_a_private_destination_is_refused_before_any_connection_in_a_deployment(httpserver: HTTPServer):
    client = OutboundClient(Policy(allow_private=False), resolver=_to_loopback)
    with pytest.raises(Blocked):
        client.post(f"https://hooks.example.test:{httpserver.port}/hook", content=b"{}", headers={})
    assert httpserver.log == []


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_connection_time(httpserver: HTTPServer):
    answers = iter([["1.1.1.1"], ["127.0.0.1"]])  # public when the URL was checked, private now
    client = OutboundClient(Policy(allow_private=False), resolver=lambda h, p: next(answers))
    next(answers)  # the check at save time saw the public one
    with pytest.raises(Blocked, match="127.0.0.1"):
        client.post(f"https://rebind.example.test:{httpserver.port}/", content=b"{}", headers={})


def test_only_4_kib_of_the_answer_is_kept(httpserver: HTTPServer):
    httpserver.expect_request("/hook").respond_with_data("x" * 100_000, status=500)
    answer = OutboundClient(LOCAL, resolver=_to_loopback).post(httpserver.url_for("/hook"), content=b"", headers={})
    assert answer.status == 500 and len(answer.excerpt) == 4096


def test_nobody_listening_is_a_connect_error():
    with pytest.raises(OutboundError) as caught:
        OutboundClient(LOCAL).post("http://127.0.0.1:9/hook", content=b"", headers={})
    assert caught.value.kind == "connect"


# --- TLS: the vetted IP is dialled, but SNI and certificate checks use the original name ---------------
def _certificate(name: str, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


@pytest.mark.parametrize(("certified", "ok"), [("hooks.example.test", True), ("other.example.test", False)])
def test_tls_uses_the_original_name_for_sni_and_certificate_checks(tmp_path, certified, ok):
    server_context, client_context = _certificate(certified, tmp_path)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context)
    server.expect_request("/hook").respond_with_data("ok")
    server.start()
    try:
        client = OutboundClient(LOCAL, resolver=_to_loopback, ssl_context=client_context)
        url = f"https://hooks.example.test:{server.port}/hook"
        if ok:
            assert client.post(url, content=b"{}", headers={}).status == 200
        else:
            with pytest.raises(OutboundError) as caught:
                client.post(url, content=b"{}", headers={})
            assert caught.value.kind == "tls"
    finally:
        server.stop()

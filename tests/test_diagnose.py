"""Every failure a user can meet reaches them as one NomadError whose message says what
failed and whose hint names the variable and the flag to change, triggered for real
against local servers, and never with a secret in it."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading

import pytest

from nomadtls import NomadClient, pki as nomad_pki
from nomadtls._diagnose import suggest_server_name
from nomadtls.errors import (APIError, CertificateExpired, ClientCertificateRejected,
                             ClientCertificateRequired, ConnectError, ConnectTimeout,
                             InvalidResponse, NomadError, NotFound, PermissionDenied,
                             ProtocolMismatch, ServerNameMismatch, UnknownAuthority)
from nomadtls.testing import StandInAgent

TOKEN = "d4c3b2a1-0000-4000-8000-5ec12e7t0ken"


def failure(environ: dict, path: str = "/v1/jobs", **given) -> NomadError:
    """The NomadError a GET of `path` raises with these settings; fails if none is."""
    given.setdefault("backoff", 0.01)
    with NomadClient(environ=environ, **given) as client:
        with pytest.raises(NomadError) as caught:
            client.get(path)
    error = caught.value
    for text in (error.message, error.hint or "", repr(error)):
        assert "\n" not in text
        assert TOKEN not in text and "hunter2" not in text
    return error


@contextlib.contextmanager
def raw_server(handle):
    """A TCP listener on 127.0.0.1 whose every connection is given to `handle(conn)`,
    for protocols no well-behaved agent speaks."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


# ------------------------------------------------------------------ addresses

def test_nothing_listening_names_nomad_addr_and_the_flag():
    address = f"http://127.0.0.1:{closed_port()}"

    error = failure({"NOMAD_ADDR": address}, retries=0)

    assert type(error) is ConnectError
    assert error.message == f"nothing is listening at {address} (NOMAD_ADDR): connection refused"
    assert "NOMAD_ADDR (-address)" in error.hint


def test_a_missing_unix_socket_is_named():
    error = failure({"NOMAD_ADDR": "unix:///tmp/nomadtls-nowhere/api.sock"})

    assert isinstance(error, ConnectError)
    assert "no unix socket at /tmp/nomadtls-nowhere/api.sock" in error.message
    assert "NOMAD_ADDR (-address)" in error.hint


def test_a_unix_socket_file_nobody_listens_on_says_so():
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        path = os.path.join(directory, "api.sock")
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(path)  # the file stays; nothing accepts

        error = failure({"NOMAD_ADDR": f"unix://{path}"}, retries=0)

    assert isinstance(error, ConnectError)
    assert f"nothing is listening on the unix socket {path}" in error.message


def test_a_dropping_agent_is_reported_after_the_last_try(plain_agent):
    plain_agent.drop_next(10)

    error = failure({"NOMAD_ADDR": plain_agent.address}, retries=2)

    assert type(error) is ConnectError
    assert "closed the connection without answering GET /v1/jobs (tried 3 times)" in (
        error.message)


def test_a_dropping_tls_agent_is_not_mistaken_for_a_certificate_demand(tls_agent, pki):
    tls_agent.drop_next(10)

    error = failure({"NOMAD_ADDR": tls_agent.address, "NOMAD_CACERT": pki.ca_file},
                    retries=1)

    assert type(error) is ConnectError
    assert "closed the connection" in error.message


# ------------------------------------------------------------------ verification

def test_a_name_mismatch_lists_the_names_and_suggests_the_server_name(agent_by_ip, pki):
    error = failure({"NOMAD_ADDR": agent_by_ip.address, "NOMAD_CACERT": pki.ca_file})

    assert isinstance(error, ServerNameMismatch)
    assert "server.global.nomad" in error.names and "127.0.0.1" in error.names
    assert error.checked == "127.0.0.2"
    assert error.message.startswith("the agent's certificate is valid for ")
    assert "not '127.0.0.2' (the host in NOMAD_ADDR)" in error.message
    assert error.hint == ("set NOMAD_TLS_SERVER_NAME=server.global.nomad "
                          "(-tls-server-name=server.global.nomad)")


def test_a_wrong_server_name_is_blamed_on_where_it_came_from(tls_agent, pki):
    error = failure({"NOMAD_ADDR": tls_agent.address, "NOMAD_CACERT": pki.ca_file},
                    origin="flag", tls_server_name="client.global.nomad")

    assert isinstance(error, ServerNameMismatch)
    assert "not 'client.global.nomad' (-tls-server-name)" in error.message
    assert "-tls-server-name=server.global.nomad" in error.hint


def test_the_suggestion_follows_the_region(cluster, pki):
    eu_server = nomad_pki.create_certificate(pki.ca, "server", region="eu")
    with StandInAgent(cluster, tls=eu_server, host="127.0.0.2") as agent:
        error = failure({"NOMAD_ADDR": agent.address, "NOMAD_CACERT": pki.ca_file,
                         "NOMAD_REGION": "eu"})

    assert "NOMAD_TLS_SERVER_NAME=server.eu.nomad" in error.hint


@pytest.mark.parametrize("names, region, suggested", [
    (["localhost", "server.global.nomad", "127.0.0.1"], None, "server.global.nomad"),
    (["server.global.nomad", "server.eu.nomad"], "eu", "server.eu.nomad"),
    (["server.eu.nomad"], None, "server.eu.nomad"),
    (["localhost", "nomad.internal.example"], None, "nomad.internal.example"),
    (["localhost", "127.0.0.1"], None, None),
])
def test_which_server_name_is_suggested(names, region, suggested):
    assert suggest_server_name(names, region) == suggested


def test_an_unknown_authority_points_at_nomad_cacert(other_ca_agent, pki):
    error = failure({"NOMAD_ADDR": other_ca_agent.address, "NOMAD_CACERT": pki.ca_file})

    assert isinstance(error, UnknownAuthority)
    assert f"the CA file {pki.ca_file} from NOMAD_CACERT" in error.message
    assert "issued by" in error.message
    assert error.hint.startswith("set NOMAD_CACERT (-ca-cert) to the PEM file of the CA")


def test_no_ca_at_all_says_the_public_roots_were_used(tls_agent):
    error = failure({"NOMAD_ADDR": tls_agent.address})

    assert isinstance(error, UnknownAuthority)
    assert "certifi's public roots" in error.message


def test_an_expired_certificate_gives_its_end_date(expired_agent, pki):
    error = failure({"NOMAD_ADDR": expired_agent.address, "NOMAD_CACERT": pki.ca_file})

    assert isinstance(error, CertificateExpired)
    end = pki.expired_server.cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert error.message == f"the agent's certificate expired on {end}"


# ------------------------------------------------------------------ protocols

@pytest.mark.parametrize("go_reply", [True, False])
def test_http_at_a_tls_port_says_to_use_https(cluster, pki, go_reply):
    with StandInAgent(cluster, tls=pki.server, go_plaintext_reply=go_reply) as agent:
        secure = agent.address
        error = failure({"NOMAD_ADDR": secure.replace("https://", "http://")})

    assert isinstance(error, ProtocolMismatch)
    assert "speaks TLS" in error.message
    assert error.hint == f"use https://: set NOMAD_ADDR={secure} (-address={secure})"


def test_https_at_a_plain_port_says_to_use_http(plain_agent):
    secure = plain_agent.address.replace("http://", "https://")

    error = failure({"NOMAD_ADDR": secure})

    assert isinstance(error, ProtocolMismatch)
    assert "speaks plain HTTP" in error.message
    assert f"NOMAD_ADDR={plain_agent.address}" in error.hint


def test_https_at_a_plain_server_that_waits_for_a_full_request(tmp_path):
    def plain_http(conn):
        seen = b""
        while b"\r\n\r\n" not in seen:
            chunk = conn.recv(4096)
            if not chunk:
                return
            seen += chunk
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    with raw_server(plain_http) as port:
        error = failure({"NOMAD_ADDR": f"https://127.0.0.1:{port}"}, timeout=(0.5, 2))

    assert isinstance(error, ProtocolMismatch)
    assert "use http://" in error.hint


def test_a_port_that_never_answers_the_handshake_is_a_connect_timeout():
    with raw_server(lambda conn: conn.recv(65536) and conn.recv(65536)) as port:
        error = failure({"NOMAD_ADDR": f"https://127.0.0.1:{port}"}, timeout=(0.3, 2))

    assert isinstance(error, ConnectTimeout)
    assert "TLS handshake" in error.message


# ------------------------------------------------------------------ client certificates

def test_a_demanded_client_certificate_names_both_variables_and_flags(mtls_agent, pki):
    error = failure({"NOMAD_ADDR": mtls_agent.address, "NOMAD_CACERT": pki.ca_file})

    assert isinstance(error, ClientCertificateRequired)
    assert "demands a client certificate" in error.message
    assert "NOMAD_CLIENT_CERT (-client-cert)" in error.hint
    assert "NOMAD_CLIENT_KEY (-client-key)" in error.hint


def test_a_demand_is_diagnosed_even_when_verification_is_skipped(mtls_agent):
    with pytest.warns(UserWarning):
        error = failure({"NOMAD_ADDR": mtls_agent.address, "NOMAD_SKIP_VERIFY": "true"})

    assert isinstance(error, ClientCertificateRequired)
    assert "skipping verification does not replace them" in error.hint


def test_a_rejected_client_certificate_says_which_file(mtls_agent, pki):
    environ = {"NOMAD_ADDR": mtls_agent.address, "NOMAD_CACERT": pki.ca_file,
               "NOMAD_CLIENT_CERT": pki.other_server_cert_file,
               "NOMAD_CLIENT_KEY": pki.other_server_key_file}

    error = failure(environ)

    assert isinstance(error, ClientCertificateRejected)
    assert f"refused the client certificate {str(pki.other_server_cert_file)!r} " \
           f"(NOMAD_CLIENT_CERT)" in error.message


# ------------------------------------------------------------------ answers

def test_no_token_at_an_acl_agent_says_to_set_one(cluster):
    with StandInAgent(cluster, token=TOKEN) as agent:
        error = failure({"NOMAD_ADDR": agent.address})

    assert isinstance(error, PermissionDenied) and error.status == 403
    assert error.message == "the agent refused GET /v1/jobs (403): Permission denied"
    assert error.hint == "no ACL token was sent; set NOMAD_TOKEN (-token)"


def test_a_wrong_token_is_blamed_without_being_shown(cluster):
    with StandInAgent(cluster, token="the-right-one") as agent:
        error = failure({"NOMAD_ADDR": agent.address, "NOMAD_TOKEN": TOKEN})

    assert isinstance(error, PermissionDenied)
    assert "ACL token not found" in error.message
    assert "the token from NOMAD_TOKEN" in error.hint


def test_a_proxy_asking_for_basic_auth_points_at_nomad_http_auth(plain_agent):
    plain_agent.add_route("GET", "/v1/jobs", lambda request: (
        401, {"WWW-Authenticate": 'Basic realm="nomad"'}, "Unauthorized"))

    error = failure({"NOMAD_ADDR": plain_agent.address})

    assert isinstance(error, PermissionDenied) and error.status == 401
    assert "NOMAD_HTTP_AUTH=user:password" in error.hint


def test_not_found_quotes_the_agent(plain_agent):
    error = failure({"NOMAD_ADDR": plain_agent.address}, path="/v1/no-such-endpoint")

    assert isinstance(error, NotFound) and error.status == 404
    assert error.message == "GET /v1/no-such-endpoint found nothing (404): 404 page not found"


def test_a_server_error_carries_the_agents_own_message(plain_agent):
    plain_agent.add_route("GET", "/v1/jobs", lambda request: (
        500, {}, "rpc error: failed to get conn: dial tcp 10.0.0.9:4647: i/o timeout\n"))

    error = failure({"NOMAD_ADDR": plain_agent.address})

    assert type(error) is APIError and error.status == 500
    assert error.message == ("the agent answered GET /v1/jobs with 500: rpc error: failed "
                             "to get conn: dial tcp 10.0.0.9:4647: i/o timeout")
    assert error.body.startswith("rpc error")


def test_an_unavailable_agent_says_it_was_retried(plain_agent):
    plain_agent.fail_next(10, status=503, body="No cluster leader")

    error = failure({"NOMAD_ADDR": plain_agent.address}, retries=1)

    assert error.status == 503 and "No cluster leader" in error.message
    assert "(tried 2 times)" in error.hint


def test_a_login_page_is_not_a_nomad_agents_answer(plain_agent):
    plain_agent.add_route("GET", "/v1/jobs", lambda request: (
        200, {"Content-Type": "text/html"}, "<html><body>Sign in</body></html>"))

    error = failure({"NOMAD_ADDR": plain_agent.address})

    assert isinstance(error, InvalidResponse)
    assert "this is not a Nomad agent's answer" in error.message
    assert "<html>" in error.message
    assert "NOMAD_ADDR (-address)" in error.hint


def test_secrets_echoed_by_an_agent_are_masked(plain_agent):
    plain_agent.add_route("GET", "/v1/jobs", lambda request: (
        500, {}, f"bad token {request.headers['X-Nomad-Token']} for {request.path}"))
    address = plain_agent.address.replace("http://", "http://ops:hunter2@")

    error = failure({"NOMAD_ADDR": address, "NOMAD_TOKEN": TOKEN})

    assert "bad token *** for /v1/jobs" in error.message
    assert TOKEN not in error.body

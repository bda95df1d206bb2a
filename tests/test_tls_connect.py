"""Verified TLS against real local agents: which connections NomadClient makes and which
it refuses, exactly as Nomad's own client does, with the server name as SNI and as the
name checked."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
import warnings

import certifi
import pytest

from nomadtls import NomadClient, NomadWarning
from nomadtls.errors import (CertificateExpired, ClientCertificateRejected,
                             ClientCertificateRequired, ServerNameMismatch, UnknownAuthority)
from nomadtls.testing import StandInAgent


def jobs_through(address, **given):
    with NomadClient(address, environ={}, **given) as client:
        return client.get("/v1/jobs")


def test_a_ca_file_reaches_the_agent_it_signed(tls_agent, pki):
    assert jobs_through(tls_agent.address, ca_cert=pki.ca_file)


def test_a_ca_directory_reaches_the_agent_it_signed(tls_agent, pki, tmp_path):
    (tmp_path / "cas" / "nested").mkdir(parents=True)
    shutil.copy(pki.ca_file, tmp_path / "cas" / "nested" / "cluster.pem")
    shutil.copy(pki.other_ca_file, tmp_path / "cas" / "unrelated.pem")

    assert jobs_through(tls_agent.address, ca_path=str(tmp_path / "cas"))


def test_the_default_roots_refuse_a_private_ca(tls_agent):
    with pytest.raises(UnknownAuthority):
        jobs_through(tls_agent.address)


def test_the_ca_file_beats_the_ca_directory(tls_agent, pki, tmp_path):
    (tmp_path / "right").mkdir()
    shutil.copy(pki.ca_file, tmp_path / "right" / "ca.pem")

    with pytest.raises(UnknownAuthority):
        jobs_through(tls_agent.address, ca_cert=pki.other_ca_file,
                     ca_path=str(tmp_path / "right"))


def test_a_ca_that_did_not_sign_the_agent_is_refused(other_ca_agent, pki):
    with pytest.raises(UnknownAuthority):
        jobs_through(other_ca_agent.address, ca_cert=pki.ca_file)


def test_requests_ca_bundle_never_widens_a_cluster_ca(tls_agent, pki, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())

    with NomadClient(tls_agent.address, ca_cert=pki.ca_file) as client:
        client.get("/v1/jobs")
        client.get("/v1/jobs")

        assert client._context.cert_store_stats()["x509_ca"] == 1


def test_by_ip_the_server_name_is_what_gets_checked(agent_by_ip, pki):
    address = agent_by_ip.address

    with pytest.raises(ServerNameMismatch):
        jobs_through(address, ca_cert=pki.ca_file)
    assert jobs_through(address, ca_cert=pki.ca_file, tls_server_name="server.global.nomad")


def test_the_server_name_from_the_environment_is_enough(agent_by_ip, pki):
    environ = {"NOMAD_ADDR": agent_by_ip.address, "NOMAD_CACERT": pki.ca_file,
               "NOMAD_TLS_SERVER_NAME": "server.global.nomad"}

    with NomadClient(environ=environ) as client:
        assert client.get("/v1/jobs")


def test_a_wrong_server_name_is_refused_even_for_a_good_address(tls_agent, pki):
    with pytest.raises(ServerNameMismatch):
        jobs_through(tls_agent.address, ca_cert=pki.ca_file,
                     tls_server_name="client.global.nomad")


def test_the_server_name_is_sent_as_sni(pki, tmp_path):
    """A bare TLS server that records the SNI it is offered and answers one request."""
    seen: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.server.write(tmp_path / "s.pem", tmp_path / "s-key.pem")
    context.load_cert_chain(tmp_path / "s.pem", tmp_path / "s-key.pem")
    context.sni_callback = lambda sock, name, ctx: seen.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\n[]")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with listener:
        assert jobs_through(f"https://127.0.0.1:{listener.getsockname()[1]}",
                            ca_cert=pki.ca_file, tls_server_name="server.global.nomad") == []
    thread.join(timeout=5)

    assert seen == ["server.global.nomad"]


@pytest.mark.parametrize("value", ["true", "1", "T"])
def test_skip_verify_reaches_an_agent_no_trusted_ca_signed(other_ca_agent, value):
    environ = {"NOMAD_ADDR": other_ca_agent.address, "NOMAD_SKIP_VERIFY": value}

    with pytest.warns(NomadWarning, match="verification is off"):
        client = NomadClient(environ=environ)
    with client, warnings.catch_warnings():
        warnings.simplefilter("error")  # no urllib3 warning on every request
        assert client.get("/v1/jobs")
        assert client.get("/v1/jobs")


@pytest.mark.parametrize("value", ["false", "0", "maybe"])
def test_skip_verify_false_or_unparseable_keeps_verifying(other_ca_agent, value):
    environ = {"NOMAD_ADDR": other_ca_agent.address, "NOMAD_SKIP_VERIFY": value}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NomadWarning)
        client = NomadClient(environ=environ)
    with client, pytest.raises(UnknownAuthority):
        client.get("/v1/jobs")


def test_mutual_tls_with_a_client_certificate(mtls_agent, pki):
    assert jobs_through(mtls_agent.address, ca_cert=pki.ca_file,
                        client_cert=pki.client_cert_file, client_key=pki.client_key_file)
    assert mtls_agent.requests[-1].client_cert is not None


def test_mutual_tls_without_a_client_certificate_is_refused(mtls_agent, pki):
    with pytest.raises(ClientCertificateRequired):
        jobs_through(mtls_agent.address, ca_cert=pki.ca_file)


def test_a_client_certificate_from_another_ca_is_rejected(mtls_agent, pki):
    with pytest.raises(ClientCertificateRejected):
        jobs_through(mtls_agent.address, ca_cert=pki.ca_file,
                     client_cert=pki.other_server_cert_file,
                     client_key=pki.other_server_key_file)


def test_an_expired_agent_certificate_is_refused(expired_agent, pki):
    with pytest.raises(CertificateExpired):
        jobs_through(expired_agent.address, ca_cert=pki.ca_file)


def test_a_flag_beats_the_variable_for_the_ca(tls_agent, pki):
    environ = {"NOMAD_ADDR": tls_agent.address, "NOMAD_CACERT": pki.other_ca_file}

    with NomadClient(environ=environ, origin="flag", ca_cert=pki.ca_file) as client:
        assert client.get("/v1/jobs")


def test_an_empty_variable_is_unset_so_the_default_roots_apply(tls_agent, pki):
    environ = {"NOMAD_ADDR": tls_agent.address, "NOMAD_CACERT": "", "NOMAD_CAPATH": ""}

    with NomadClient(environ=environ) as client, pytest.raises(UnknownAuthority):
        client.get("/v1/jobs")


def test_the_token_reaches_an_agent_that_requires_it(cluster, pki):
    with StandInAgent(cluster, tls=pki.server, token="5ab1e-secret") as agent:
        assert jobs_through(agent.address, ca_cert=pki.ca_file, token="5ab1e-secret")

        assert agent.requests[-1].headers["X-Nomad-Token"] == "5ab1e-secret"


def test_basic_auth_reaches_the_agent_over_tls(tls_agent, pki):
    address = tls_agent.address.replace("https://", "https://ops:pa%40ss@")

    jobs_through(address, ca_cert=pki.ca_file)

    assert tls_agent.requests[-1].headers["Authorization"] == "Basic b3BzOnBhQHNz"

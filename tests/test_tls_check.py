"""`nomadtls tls check` and the probe behind it (`nomadtls.probe`): what they report about
real local agents, and that the verdict is the client's own diagnosis."""

from __future__ import annotations

import datetime as _dt
import socket
import ssl

import pytest
from typer.testing import CliRunner

from nomadtls import probe
from nomadtls.errors import (CertificateExpired, ClientCertificateRequired, NomadError,
                             ProtocolMismatch, ServerNameMismatch, UnknownAuthority)
from nomadtls.settings import resolve
from nomadtls.testing import StandInAgent
from nomadtls_cli.main import app


def tls_check(*args: str, env: dict[str, str] | None = None):
    environ = {key: str(value) for key, value in (env or {}).items()}
    return CliRunner().invoke(app, ["tls", "check", *args], env=environ)


def https(agent) -> str:
    return f"https://127.0.0.1:{agent.port}"


def trusting(pki, agent, **more) -> dict[str, str]:
    """The variables of a user who trusts the cluster's CA and connects by IP."""
    return {"NOMAD_ADDR": https(agent), "NOMAD_CACERT": str(pki.ca_file), **more}


# The command --------------------------------------------------------------------------

def test_a_good_agent_passes_and_the_report_shows_every_part(pki, tls_agent):
    result = tls_check(env=trusting(pki, tls_agent,
                                    NOMAD_TLS_SERVER_NAME="server.global.nomad"))

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"NOMAD_ADDR            = {https(tls_agent)}  (environment)" in out
    assert "NOMAD_TOKEN           = unset" in out
    assert "CN=server.global.nomad  (the agent's own)" in out
    assert "server.global.nomad, localhost" in out
    assert "days left" in out
    assert "Version            = TLSv1.3" in out
    assert "server.global.nomad (from NOMAD_TLS_SERVER_NAME): in the certificate" in out
    assert "not asked for by the agent" in out
    assert "Region     = global" in out and "Version    = 1.9.3" in out
    assert out.rstrip().splitlines()[-1].startswith("OK: ")
    assert result.stderr == ""


def test_flags_in_either_style_win_over_the_variables_and_are_shown_as_flags(pki, tls_agent):
    result = tls_check(f"-address={https(tls_agent)}", "--ca-cert", str(pki.ca_file),
                       env={"NOMAD_ADDR": "https://127.0.0.1:1"})

    assert result.exit_code == 0, result.output
    assert f"{https(tls_agent)}  (flag -address)" in result.stdout
    assert "(flag -ca-cert)" in result.stdout


def test_a_wrong_server_name_fails_and_names_the_fix(pki, tls_agent):
    result = tls_check(env=trusting(pki, tls_agent, NOMAD_TLS_SERVER_NAME="nomad.example.com"))

    assert result.exit_code == 1
    assert "nomad.example.com (from NOMAD_TLS_SERVER_NAME): NOT in the certificate" in (
        result.stdout)
    assert "NOMAD_TLS_SERVER_NAME=server.global.nomad" in result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output


def test_connecting_by_an_address_the_certificate_lacks_names_the_server_name(pki,
                                                                            agent_by_ip):
    result = tls_check(env={"NOMAD_ADDR": agent_by_ip.address,
                            "NOMAD_CACERT": str(pki.ca_file)})

    assert result.exit_code == 1
    assert "127.0.0.2 (the host in NOMAD_ADDR): NOT in the certificate" in result.stdout
    assert "NOMAD_TLS_SERVER_NAME=server.global.nomad" in result.stderr


def test_an_agent_signed_by_another_ca_fails_yet_its_certificate_is_shown(pki, other_ca_agent):
    result = tls_check(env=trusting(pki, other_ca_agent))

    assert result.exit_code == 1
    assert "CN=Some Other CA" in result.stdout
    assert "NOMAD_CACERT" in result.stderr
    assert "not signed by a CA this client trusts" in result.stderr


def test_an_expired_certificate_fails_and_shows_how_long_ago(pki, expired_agent):
    result = tls_check(env=trusting(pki, expired_agent))

    assert result.exit_code == 1
    assert "EXPIRED 29 days ago" in result.stdout or "EXPIRED 30 days ago" in result.stdout
    assert "expired on" in result.stderr


def test_an_agent_that_demands_a_client_certificate_fails_without_one(pki, mtls_agent):
    result = tls_check(env=trusting(pki, mtls_agent))

    assert result.exit_code == 1
    assert "required by the agent (verify_https_client); none is set" in result.stdout
    assert "NOMAD_CLIENT_CERT" in result.stderr and "NOMAD_CLIENT_KEY" in result.stderr


def test_an_agent_that_demands_a_client_certificate_passes_with_one(pki, mtls_agent):
    result = tls_check("-client-cert", str(pki.cli_cert_file),
                       "-client-key", str(pki.cli_key_file), env=trusting(pki, mtls_agent))

    assert result.exit_code == 0, result.output
    assert "required by the agent (verify_https_client); one is set (-client-cert)" in (
        result.stdout)
    assert "mutual TLS" in result.stdout.rstrip().splitlines()[-1]


def test_skipping_verification_does_not_make_a_bad_agent_pass(pki, other_ca_agent):
    result = tls_check("-tls-skip-verify", env=trusting(pki, other_ca_agent))

    assert result.exit_code == 1
    assert "verifies all the same" in result.stdout
    assert "NOMAD_CACERT" in result.stderr


def test_a_plain_http_agent_fails_the_check(plain_agent):
    result = tls_check(env={"NOMAD_ADDR": plain_agent.address})

    assert result.exit_code == 1
    assert "not an https:// address" in result.stdout
    assert "Region     = global" in result.stdout
    assert "nothing is encrypted" in " ".join(result.stderr.split())  # however it wraps


def test_https_at_a_plain_agent_says_to_use_http(plain_agent):
    result = tls_check(env={"NOMAD_ADDR": f"https://127.0.0.1:{plain_agent.port}"})

    assert result.exit_code == 1
    assert "Handshake = failed" in result.stdout
    assert f"NOMAD_ADDR=http://127.0.0.1:{plain_agent.port}" in result.stderr


def test_a_token_is_shown_only_as_set(pki, cluster):
    secret = "4b1d7c1e-0e6f-4f0a-9d7e-2a2f5d1c9e77"
    with StandInAgent(cluster, tls=pki.server, token=secret) as agent:
        result = tls_check(env=trusting(pki, agent, NOMAD_TOKEN=secret))

    assert result.exit_code == 0, result.output
    assert "NOMAD_TOKEN           = set  (environment)" in result.stdout
    assert secret not in result.output


def test_nothing_is_sent_with_the_token_before_the_agent_is_verified(pki, cluster):
    secret = "4b1d7c1e-0e6f-4f0a-9d7e-2a2f5d1c9e77"
    with StandInAgent(cluster, tls=pki.server, token=secret) as agent:
        tls_check(env=trusting(pki, agent, NOMAD_TOKEN=secret))
        seen = agent.requests

    health = [r for r in seen if r.path == "/v1/agent/health"]
    verified = [r for r in seen if r.path == "/v1/agent/self"]
    assert health and all("X-Nomad-Token" not in r.headers for r in health)
    assert verified and all(r.headers["X-Nomad-Token"] == secret for r in verified)


def test_a_token_without_agent_read_still_proves_the_connection(pki, cluster):
    with StandInAgent(cluster, tls=pki.server, token="right-token-0000") as agent:
        result = tls_check(env=trusting(pki, agent, NOMAD_TOKEN="wrong-token-0000"))

    assert result.exit_code == 0, result.output
    assert "needs a token with agent:read" in result.stdout


def test_help_names_the_connection_options(pki):
    result = CliRunner().invoke(app, ["tls", "check", "-h"])

    assert result.exit_code == 0
    assert "-tls-server-name" in result.stdout
    assert "verified" in result.stdout


# The probe ----------------------------------------------------------------------------

def settings_for(agent, pki, **given):
    return resolve(environ={}, address=https(agent), ca_cert=str(pki.ca_file), **given)


def test_look_reads_the_chain_the_version_and_the_cipher(pki, mtls_agent):
    handshake = probe.look(settings_for(mtls_agent, pki))

    leaf = handshake.chain[0]
    assert leaf.subject == "CN=server.global.nomad"
    assert set(leaf.dns_names) == {"server.global.nomad", "localhost"}
    assert set(leaf.ip_addresses) == {"127.0.0.1", "::1"}
    assert not leaf.is_ca
    assert handshake.tls_version == "TLSv1.3"
    assert handshake.cipher
    assert handshake.name_matched is True


def test_look_sees_a_certificate_that_verification_would_refuse(pki, expired_agent):
    handshake = probe.look(settings_for(expired_agent, pki))

    assert handshake.chain[0].days_left() < 0
    assert not handshake.chain[0].is_current()


class TLS12Agent(StandInAgent):
    """A stand-in agent that speaks TLS 1.2 at most: it refuses a missing client
    certificate during the handshake rather than on the first read."""

    def _make_context(self) -> ssl.SSLContext:
        context = super()._make_context()
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context


def test_a_tls12_agent_that_refuses_the_handshake_still_shows_its_certificate(pki, cluster):
    with TLS12Agent(cluster, tls=pki.server, client_ca=pki.ca) as agent:
        handshake = probe.look(settings_for(agent, pki))

    assert handshake.client_certificate == probe.REQUIRED
    assert handshake.tls_version is None and handshake.failure
    assert handshake.chain[0].subject == "CN=server.global.nomad"


def test_a_tls12_agent_shows_its_version_once_given_a_client_certificate(pki, cluster):
    with TLS12Agent(cluster, tls=pki.server, client_ca=pki.ca) as agent:
        handshake = probe.look(settings_for(agent, pki, client_cert=str(pki.cli_cert_file),
                                            client_key=str(pki.cli_key_file)))

    assert handshake.client_certificate == probe.REQUIRED
    assert handshake.tls_version == "TLSv1.2"


class AskingAgent(StandInAgent):
    """A stand-in agent that asks for a client certificate but answers without one."""

    def __init__(self, *args, asks_for_ca, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.asks_for_ca = asks_for_ca

    def _make_context(self) -> ssl.SSLContext:
        context = super()._make_context()
        context.load_verify_locations(cadata=self.asks_for_ca.cert_pem.decode("ascii"))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context


def test_an_agent_that_asks_for_a_client_certificate_without_requiring_it(pki, cluster):
    with AskingAgent(cluster, tls=pki.server, asks_for_ca=pki.ca) as agent:
        handshake = probe.look(settings_for(agent, pki))

    assert handshake.client_certificate == probe.OPTIONAL


def test_an_ipv6_agent_is_checked_by_its_bracketed_address(pki, cluster):
    with StandInAgent(cluster, tls=pki.server, host="::1") as agent:
        result = tls_check(env={"NOMAD_ADDR": f"https://[::1]:{agent.port}",
                                "NOMAD_CACERT": str(pki.ca_file)})

    assert result.exit_code == 0, result.output
    assert "::1 (the host in NOMAD_ADDR): in the certificate" in result.stdout


def test_a_closed_ipv6_port_is_named_with_its_brackets():
    with socket.socket(socket.AF_INET6) as placeholder:
        placeholder.bind(("::1", 0))
        port = placeholder.getsockname()[1]
    with pytest.raises(NomadError) as caught:
        probe.look(resolve({}, address=f"https://[::1]:{port}"), timeout=2)

    assert f"cannot connect to [::1]:{port}:" in caught.value.message


def test_an_agent_without_client_verification_is_reported_as_not_asking(pki, tls_agent):
    handshake = probe.look(settings_for(tls_agent, pki))

    assert handshake.client_certificate == probe.NOT_REQUESTED


def test_check_returns_the_clients_own_diagnosis(pki, tls_agent, other_ca_agent,
                                                 expired_agent, mtls_agent):
    wrong_name = probe.check(settings_for(tls_agent, pki, tls_server_name="x.example"))
    other_ca = probe.check(settings_for(other_ca_agent, pki))
    expired = probe.check(settings_for(expired_agent, pki))
    no_cert = probe.check(settings_for(mtls_agent, pki))

    assert isinstance(wrong_name.error, ServerNameMismatch)
    assert wrong_name.error.checked == "x.example"
    assert isinstance(other_ca.error, UnknownAuthority)
    assert isinstance(expired.error, CertificateExpired)
    assert isinstance(no_cert.error, ClientCertificateRequired)
    assert not any(r.ok for r in (wrong_name, other_ca, expired, no_cert))


def test_check_passes_with_the_agents_region_and_version(pki, tls_agent):
    result = probe.check(settings_for(tls_agent, pki))

    assert result.ok and result.error is None
    assert (result.agent.region, result.agent.version) == ("global", "1.9.3")


def test_check_of_a_closed_port_fails_without_raising(pki):
    settings = resolve(environ={}, address="https://127.0.0.1:1", ca_cert=str(pki.ca_file))

    result = probe.check(settings, timeout=2)

    assert result.handshake is None and result.look_error is not None
    assert isinstance(result.error, NomadError) and not result.ok


def test_check_of_http_at_a_tls_agent_is_a_protocol_mismatch(pki, tls_agent):
    settings = resolve(environ={}, address=f"http://127.0.0.1:{tls_agent.port}")

    assert isinstance(probe.check(settings).error, ProtocolMismatch)


@pytest.mark.parametrize("name, dns, ips, expected", [
    ("server.global.nomad", ["server.global.nomad", "localhost"], [], True),
    ("SERVER.global.nomad.", ["server.global.nomad"], [], True),
    ("server.eu.nomad", ["server.global.nomad"], [], False),
    ("a.nomad.example.com", ["*.nomad.example.com"], [], True),
    ("a.b.nomad.example.com", ["*.nomad.example.com"], [], False),
    ("nomad.example.com", ["*.nomad.example.com"], [], False),
    ("127.0.0.1", ["127.0.0.1"], [], False),  # an IP is matched against IP SANs only
    ("127.0.0.1", [], ["127.0.0.1"], True),
    ("::1", [], ["0:0:0:0:0:0:0:1"], True),
    ("[::1]", [], ["::1"], True),
    ("10.0.0.5", [], ["127.0.0.1"], False),
])
def test_name_matching_follows_the_san_rules(name, dns, ips, expected):
    assert probe.name_matches(name, dns, ips) is expected


def test_days_left_counts_whole_days_and_goes_negative_after_expiry():
    now = _dt.datetime(2030, 1, 1, tzinfo=_dt.timezone.utc)
    cert = probe.CertificateSummary("CN=a", "CN=b", (), (), now - _dt.timedelta(days=10),
                                    now + _dt.timedelta(days=2, hours=5), False)

    assert cert.days_left(now) == 2
    assert cert.days_left(now + _dt.timedelta(days=3)) == -1


@pytest.mark.parametrize("body, region, version", [
    ({"config": {"Region": "eu", "Version": {"Version": "1.9.3", "VersionPrerelease": ""}}},
     "eu", "1.9.3"),
    ({"config": {"Region": "eu", "Version": {"Version": "1.10.0", "VersionPrerelease": "beta.1"}}},
     "eu", "1.10.0-beta.1"),
    ({"config": {"Region": "global", "Version": "0.5.5"}}, "global", "0.5.5"),
    ({"config": {"Region": "ap"}, "member": {"Tags": {"build": "1.2.3"}}}, "ap", "1.2.3"),
    ({}, None, None),
    ("not an object", None, None),
])
def test_agent_facts_read_every_shape_of_agent_self(body, region, version):
    facts = probe.AgentFacts.from_self(body)

    assert (facts.region, facts.version) == (region, version)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_the_certificates_read_from_the_handshake_messages_are_the_chain(pki, mtls_agent,
                                                                         version):
    import socket

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.maximum_version = version
    context.load_cert_chain(pki.cli_cert_file, pki.cli_key_file)
    recorder = probe._Recorder()
    recorder.install(context)
    with socket.create_connection(("127.0.0.1", mtls_agent.port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            presented = probe._peer_chain(tls)

    assert recorder.asked is True
    assert len(presented) == 2  # the agent's certificate, then the CA it trusts for clients
    assert recorder.certificates == presented

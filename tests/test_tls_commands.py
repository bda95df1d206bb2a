"""`nomadtls tls ca create` and `nomadtls tls cert create`: the files they write, what the
certificates hold, and how the commands refuse what they should."""

from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from nomadtls import NomadClient
from nomadtls.errors import ClientCertificateRequired
from nomadtls.pki import load_credential
from nomadtls.testing import Cluster, StandInAgent
from nomadtls_cli.main import app

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not here")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory, since the commands write there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOMAD_REGION", raising=False)
    return tmp_path


def tls(*args: str):
    return CliRunner().invoke(app, ["tls", *args])


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def dns_names(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.DNSName)


def ip_addresses(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def common_name(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def openssl_verify(ca_file, cert_file) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, "verify", "-CAfile", str(ca_file), str(cert_file)],
                          capture_output=True, text=True)


# tls ca create

def test_ca_create_writes_a_p256_ca_and_a_private_key(workdir):
    result = tls("ca", "create")

    assert result.exit_code == 0, result.output
    ca = load(workdir / "nomad-agent-ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    assert mode(workdir / "nomad-agent-ca-key.pem") == 0o600
    assert "nomad-agent-ca.pem" in result.stdout
    assert "nomad-agent-ca-key.pem" in result.stdout


def test_ca_create_is_valid_five_years_unless_days_says_otherwise(workdir):
    tls("ca", "create")
    (workdir / "other").mkdir()
    os.chdir(workdir / "other")
    tls("ca", "create", "-days=30")

    five_years = load(workdir / "nomad-agent-ca.pem")
    thirty_days = load(workdir / "other" / "nomad-agent-ca.pem")
    assert (five_years.not_valid_after_utc - five_years.not_valid_before_utc).days in (
        1825, 1826)
    assert (thirty_days.not_valid_after_utc - thirty_days.not_valid_before_utc).days in (
        30, 31)


def test_ca_create_names_its_files_after_the_domain(workdir):
    result = tls("ca", "create", "--domain", "example")

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in workdir.iterdir()) == [
        "example-agent-ca-key.pem", "example-agent-ca.pem"]


def test_ca_create_refuses_to_overwrite_and_names_the_file(workdir):
    tls("ca", "create")
    before = (workdir / "nomad-agent-ca.pem").read_bytes()

    result = tls("ca", "create")

    assert result.exit_code == 1
    assert "nomad-agent-ca" in result.stderr and "already exists" in result.stderr
    assert "Traceback" not in result.output
    assert (workdir / "nomad-agent-ca.pem").read_bytes() == before


@pytest.mark.parametrize("args", [["-days", "0"], ["-days", "soon"], ["-domain", "a..b"]])
def test_ca_create_rejects_bad_values_as_usage_errors(workdir, args):
    result = tls("ca", "create", *args)

    assert result.exit_code == 2
    assert list(workdir.iterdir()) == []


@needs_openssl
def test_a_name_constrained_ca_cannot_vouch_for_names_outside_its_domain(workdir):
    tls("ca", "create", "-name-constraint")
    tls("cert", "create", "-server")
    tls("cert", "create", "-client", "-additional-dnsname", "nomad.example.com")

    assert openssl_verify("nomad-agent-ca.pem", "global-server-nomad.pem").returncode == 0
    outside = openssl_verify("nomad-agent-ca.pem", "global-client-nomad.pem")
    assert outside.returncode != 0
    assert "subtree" in outside.stdout + outside.stderr


# tls cert create

@pytest.fixture
def ca(workdir):
    assert tls("ca", "create").exit_code == 0
    return workdir / "nomad-agent-ca.pem"


@needs_openssl
@pytest.mark.parametrize("role", ["server", "client", "cli"])
def test_each_role_gets_a_certificate_that_openssl_verifies_against_the_ca(ca, role):
    result = tls("cert", "create", f"-{role}")

    assert result.exit_code == 0, result.output
    verified = openssl_verify(ca, f"global-{role}-nomad.pem")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert mode(f"global-{role}-nomad-key.pem") == 0o600


@pytest.mark.parametrize("role, ips", [("server", ["127.0.0.1"]), ("client", ["127.0.0.1"]),
                                       ("cli", [])])
def test_certificates_are_named_as_nomad_names_them(ca, workdir, role, ips):
    tls("cert", "create", f"-{role}")

    cert = load(workdir / f"global-{role}-nomad.pem")
    assert common_name(cert) == f"{role}.global.nomad"
    assert sorted(dns_names(cert)) == sorted([f"{role}.global.nomad", "localhost"])
    assert ip_addresses(cert) == ips
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


@needs_openssl
def test_a_certificate_for_another_region_with_extra_names_and_addresses(ca, workdir):
    result = tls("cert", "create", "-server", "-region=eu-west",
                 "-additional-dnsname", "nomad.example.com",
                 "--additional-dnsname", "servers.internal",
                 "-additional-ipaddress=10.0.0.5", "-additional-ipaddress", "::1")

    assert result.exit_code == 0, result.output
    cert = load(workdir / "eu-west-server-nomad.pem")
    assert common_name(cert) == "server.eu-west.nomad"
    assert set(dns_names(cert)) == {"server.eu-west.nomad", "localhost",
                                    "nomad.example.com", "servers.internal"}
    assert {ipaddress.ip_address(ip) for ip in ip_addresses(cert)} == {
        ipaddress.ip_address(ip) for ip in ("10.0.0.5", "::1", "127.0.0.1")}
    assert openssl_verify(ca, "eu-west-server-nomad.pem").returncode == 0
    assert openssl_verify(ca, "eu-west-server-nomad.pem").stdout.strip().endswith("OK")


def test_the_region_defaults_to_nomad_region_and_the_flag_beats_it(ca, workdir, monkeypatch):
    monkeypatch.setenv("NOMAD_REGION", "asia")

    tls("cert", "create", "-client")
    tls("cert", "create", "-client", "-region", "europe")

    assert common_name(load(workdir / "asia-client-nomad.pem")) == "client.asia.nomad"
    assert common_name(load(workdir / "europe-client-nomad.pem")) == "client.europe.nomad"


def test_an_empty_nomad_region_means_global(ca, workdir, monkeypatch):
    monkeypatch.setenv("NOMAD_REGION", "")

    assert tls("cert", "create", "-cli").exit_code == 0
    assert (workdir / "global-cli-nomad.pem").exists()


@needs_openssl
def test_the_domain_names_the_certificate_and_the_default_ca_files(workdir):
    tls("ca", "create", "-domain", "corp")

    result = tls("cert", "create", "-server", "-domain", "corp")

    assert result.exit_code == 0, result.output
    cert = load(workdir / "global-server-corp.pem")
    assert common_name(cert) == "server.global.corp"
    assert openssl_verify("corp-agent-ca.pem", "global-server-corp.pem").returncode == 0


@needs_openssl
def test_ca_and_key_options_pick_a_ca_kept_elsewhere(workdir):
    (workdir / "vault").mkdir()
    os.chdir(workdir / "vault")
    tls("ca", "create")
    os.chdir(workdir)

    result = tls("cert", "create", "-client", "-ca", "vault/nomad-agent-ca.pem",
                 "--key=vault/nomad-agent-ca-key.pem")

    assert result.exit_code == 0, result.output
    assert openssl_verify("vault/nomad-agent-ca.pem", "global-client-nomad.pem"
                          ).returncode == 0


def test_without_a_ca_the_error_says_to_create_one(workdir):
    result = tls("cert", "create", "-server")

    assert result.exit_code == 1
    assert "nomad-agent-ca.pem does not exist" in result.stderr
    assert "tls ca create" in result.stderr
    assert "Traceback" not in result.output


def test_a_key_that_does_not_belong_to_the_ca_is_refused(ca, workdir):
    tls("cert", "create", "-cli")

    result = tls("cert", "create", "-client", "-key", "global-cli-nomad-key.pem")

    assert result.exit_code == 1
    assert "does not belong" in result.stderr
    assert not (workdir / "global-client-nomad.pem").exists()


def test_cert_create_refuses_to_overwrite_and_names_the_file(ca, workdir):
    tls("cert", "create", "-client")
    before = (workdir / "global-client-nomad.pem").read_bytes()

    result = tls("cert", "create", "-client")

    assert result.exit_code == 1
    assert "global-client-nomad" in result.stderr and "already exists" in result.stderr
    assert (workdir / "global-client-nomad.pem").read_bytes() == before


def test_only_a_server_certificate_comes_with_the_warning(ca):
    server = tls("cert", "create", "-server")
    client = tls("cert", "create", "-client")

    assert "whole cluster" in server.stderr
    assert "global-server-nomad.pem" in server.stdout
    assert "whole cluster" not in client.output


@pytest.mark.parametrize("args", [
    [],
    ["-server", "-client"],
    ["-server", "-client", "-cli"],
    ["-cli", "-additional-ipaddress", "10.0.0.300"],
    ["-cli", "-additional-ipaddress", "server.global.nomad"],
    ["-cli", "-additional-dnsname", "bad name"],
    ["-cli", "-days", "-5"],
    ["-cli", "-region", "under_score"],
])
def test_cert_create_rejects_bad_values_as_usage_errors(ca, workdir, args):
    result = tls("cert", "create", *args)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in workdir.iterdir()) == [
        "nomad-agent-ca-key.pem", "nomad-agent-ca.pem"]


@pytest.mark.parametrize("option, value, what", [
    ("-region", "eu/west", "region"), ("-domain", "a b", "domain"),
    ("-additional-dnsname", "bad name", "name")])
def test_a_bad_name_is_called_by_what_it_is(ca, option, value, what):
    result = tls("cert", "create", "-cli", option, value)

    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': {what} {value!r} is not a valid DNS name")


def test_help_is_shown_with_dash_h(workdir):
    result = tls("cert", "create", "-h")

    assert result.exit_code == 0
    assert "-additional-ipaddress" in result.stdout
    assert "NOMAD_REGION" in result.stdout


# The certificates at work

def make_cluster_files(*extra: str) -> None:
    for args in (["ca", "create"], ["cert", "create", "-server", *extra],
                 ["cert", "create", "-cli"]):
        assert tls(*args).exit_code == 0


def serve(workdir, server_files=("global-server-nomad.pem", "global-server-nomad-key.pem")):
    """A stand-in agent with the commands' server certificate that demands a client
    certificate from their CA, as an agent with verify_https_client does."""
    ca = load_credential(workdir / "nomad-agent-ca.pem", workdir / "nomad-agent-ca-key.pem")
    server = load_credential(*(workdir / name for name in server_files))
    return StandInAgent(Cluster.sample(), tls=server, client_ca=ca)


def test_the_commands_certificates_carry_a_mutual_tls_request(workdir):
    make_cluster_files()

    with serve(workdir) as agent:
        client = NomadClient(agent.address, ca_cert="nomad-agent-ca.pem",
                             client_cert="global-cli-nomad.pem",
                             client_key="global-cli-nomad-key.pem", environ={})
        leader = client.get("/v1/status/leader")
        presented = agent.requests[-1].client_cert

    assert leader == "127.0.0.1:4647"
    assert dict(field[0] for field in presented["subject"])["commonName"] == (
        "cli.global.nomad")


def test_nomadtls_status_reaches_an_agent_over_mutual_tls_with_them(workdir, run_nomadtls):
    make_cluster_files("-region", "eu")

    with serve(workdir, ("eu-server-nomad.pem", "eu-server-nomad-key.pem")) as agent:
        done = run_nomadtls("status", cwd=workdir, NOMAD_ADDR=agent.address,
                            NOMAD_CACERT="nomad-agent-ca.pem",
                            NOMAD_CLIENT_CERT="global-cli-nomad.pem",
                            NOMAD_CLIENT_KEY="global-cli-nomad-key.pem",
                            NOMAD_TLS_SERVER_NAME="server.eu.nomad")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:2] == ["ID", "Type"]


def test_without_the_cli_certificate_the_same_agent_refuses(workdir):
    make_cluster_files()

    with serve(workdir) as agent:
        client = NomadClient(agent.address, ca_cert="nomad-agent-ca.pem", environ={},
                             retries=0)
        with pytest.raises(ClientCertificateRequired):
            client.get("/v1/status/leader")

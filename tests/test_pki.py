"""Specifications of nomadtls.pki: the certificates match what `nomad tls` makes, and a
real OpenSSL accepts them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from nomadtls import pki
from nomadtls.errors import ConfigError

OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def ca() -> pki.Credential:
    return pki.create_ca()


def _ext(cred: pki.Credential, kind):
    return cred.cert.extensions.get_extension_for_class(kind)


def _openssl_verify(ca_file, leaf_file, *extra: str) -> subprocess.CompletedProcess:
    if OPENSSL is None:
        pytest.skip("the openssl binary is not installed")
    return subprocess.run([OPENSSL, "verify", *extra, "-CAfile", str(ca_file), str(leaf_file)],
                          capture_output=True, text=True, timeout=30)


# --- file names ---------------------------------------------------------------------------

def test_ca_file_names_follow_nomad():
    assert pki.ca_filenames() == ("nomad-agent-ca.pem", "nomad-agent-ca-key.pem")
    assert pki.ca_filenames("consul") == ("consul-agent-ca.pem", "consul-agent-ca-key.pem")


def test_certificate_file_names_are_region_role_domain():
    assert pki.cert_filenames("server") == ("global-server-nomad.pem",
                                            "global-server-nomad-key.pem")
    assert pki.cert_filenames("cli", "eu-west", "corp") == ("eu-west-cli-corp.pem",
                                                            "eu-west-cli-corp-key.pem")


def test_unknown_role_is_a_value_error():
    with pytest.raises(ValueError, match="admin"):
        pki.cert_filenames("admin")
    with pytest.raises(ConfigError) as raised:
        pki.create_certificate(pki.create_ca(), "admin")
    assert "server, client, cli" in raised.value.hint


@pytest.mark.parametrize("domain", ["", "has space", "-lead", "a/b"])
def test_domain_that_is_no_dns_name_is_refused(domain):
    with pytest.raises(ConfigError, match="not a valid DNS name"):
        pki.create_ca(domain=domain)


@pytest.mark.parametrize("name", ["nomad", "server.global.nomad", "eu-west", "a1.b2"])
def test_check_dns_name_returns_a_name_a_certificate_can_hold(name):
    assert pki.check_dns_name(name) == name


@pytest.mark.parametrize("name", ["", "has space", "-lead", "trail-", "a..b", "a_b", "x" * 64])
def test_check_dns_name_refuses_the_rest_calling_it_what_it_is(name):
    with pytest.raises(ConfigError) as raised:
        pki.check_dns_name(name, "region")

    assert raised.value.message == f"region {name!r} is not a valid DNS name"


# --- the CA -------------------------------------------------------------------------------

def test_ca_is_p256_and_may_sign_certificates(ca):
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert ca.key.curve.name == "secp256r1"
    assert _ext(ca, x509.BasicConstraints).value.ca is True
    usage = _ext(ca, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert _ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert ca.is_ca


def test_ca_lasts_five_years_by_default(ca):
    lifetime = ca.not_after - ca.not_before
    assert dt.timedelta(days=1825) <= lifetime <= dt.timedelta(days=1825, minutes=2)


def test_ca_without_name_constraint_has_none(ca):
    with pytest.raises(x509.ExtensionNotFound):
        _ext(ca, x509.NameConstraints)


def test_name_constraint_limits_ca_to_domain_and_localhost():
    constrained = pki.create_ca(domain="corp", name_constraint=True)
    ext = _ext(constrained, x509.NameConstraints)
    assert ext.critical
    assert ext.value.permitted_subtrees == [x509.DNSName("corp"), x509.DNSName("localhost")]


def test_ca_common_name_may_be_chosen():
    assert pki.create_ca(common_name="Test CA").common_name == "Test CA"


# --- leaf certificates ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ["server", "client"])
def test_agent_certificate_names(ca, role):
    cred = pki.create_certificate(ca, role)
    assert cred.common_name == f"{role}.global.nomad"
    assert cred.dns_names == (f"{role}.global.nomad", "localhost")
    assert cred.ip_addresses == ("127.0.0.1",)


def test_cli_certificate_has_no_loopback_address(ca):
    cred = pki.create_certificate(ca, "cli", region="eu", domain="corp")
    assert cred.common_name == "cli.eu.corp"
    assert cred.dns_names == ("cli.eu.corp", "localhost")
    assert cred.ip_addresses == ()


def test_additional_names_come_first_and_are_not_repeated(ca):
    cred = pki.create_certificate(ca, "server", dns_names=["nomad.example", "localhost"],
                                  ip_addresses=["10.0.0.5", "::1", "127.0.0.1"])
    assert cred.dns_names == ("nomad.example", "localhost", "server.global.nomad")
    assert cred.ip_addresses == ("10.0.0.5", "::1", "127.0.0.1")


def test_bad_ip_address_is_refused(ca):
    with pytest.raises(ConfigError, match="not an IP address"):
        pki.create_certificate(ca, "server", ip_addresses=["10.0.0.999"])


def test_leaf_may_serve_and_act_as_client(ca):
    cred = pki.create_certificate(ca, "client")
    eku = _ext(cred, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = _ext(cred, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert _ext(cred, x509.BasicConstraints).value.ca is False
    assert not cred.is_ca


def test_leaf_is_p256_and_names_its_authority(ca):
    cred = pki.create_certificate(ca, "server")
    assert cred.key.curve.name == "secp256r1"
    assert cred.cert.issuer == ca.cert.subject
    aki = _ext(cred, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == _ext(ca, x509.SubjectKeyIdentifier).value.digest


def test_serial_numbers_are_random(ca):
    serials = {pki.create_certificate(ca, "cli").cert.serial_number for _ in range(3)}
    assert len(serials) == 3


def test_leaf_lasts_a_year_by_default(ca):
    cred = pki.create_certificate(ca, "server")
    now = dt.datetime.now(dt.timezone.utc)
    assert cred.not_before <= now
    assert cred.not_after - now <= dt.timedelta(days=365)
    assert cred.not_after - now > dt.timedelta(days=364)


def test_not_before_makes_an_expired_certificate(ca):
    now = dt.datetime.now(dt.timezone.utc)
    cred = pki.create_certificate(ca, "server", not_before=now - dt.timedelta(days=30), days=1)
    assert cred.not_after < now


def test_a_leaf_cannot_sign(ca):
    leaf = pki.create_certificate(ca, "server")
    with pytest.raises(ConfigError, match="not a certificate authority"):
        pki.create_certificate(leaf, "client")


@pytest.mark.parametrize("days", [0, -1, 1.5, True])
def test_days_must_be_a_positive_whole_number(ca, days):
    with pytest.raises(ConfigError, match="days"):
        pki.create_certificate(ca, "server", days=days)


# --- writing and reading ------------------------------------------------------------------

def test_written_key_is_private_and_certificate_readable(ca, tmp_path):
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "c-key.pem"
    ca.write(cert_file, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(cert_file.stat().st_mode) == 0o644 & ~umask
    assert cert_file.read_bytes() == ca.cert_pem
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_write_refuses_to_overwrite_either_file(ca, tmp_path):
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "c-key.pem"
    cert_file.write_text("keep me")
    with pytest.raises(FileExistsError) as raised:
        ca.write(cert_file, key_file)
    assert raised.value.filename == str(cert_file)
    assert cert_file.read_text() == "keep me"
    assert not key_file.exists(), "a half-written pair was left behind"


def test_write_with_overwrite_replaces_and_tightens_key_mode(ca, tmp_path):
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "c-key.pem"
    cert_file.write_text("old")
    key_file.write_text("old")
    key_file.chmod(0o644)
    ca.write(cert_file, key_file, overwrite=True)
    assert cert_file.read_bytes() == ca.cert_pem
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_failed_certificate_write_removes_the_new_key(ca, tmp_path):
    key_file = tmp_path / "k.pem"
    with pytest.raises(FileNotFoundError):
        ca.write(tmp_path / "missing-dir" / "c.pem", key_file)
    assert not key_file.exists()


def test_load_credential_round_trip(ca, tmp_path):
    leaf = pki.create_certificate(ca, "cli")
    leaf.write(tmp_path / "c.pem", tmp_path / "k.pem")
    loaded = pki.load_credential(tmp_path / "c.pem", tmp_path / "k.pem")
    assert loaded.cert == leaf.cert
    assert loaded.key_pem == leaf.key_pem


def test_load_credential_names_what_is_wrong(ca, tmp_path):
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    other = pki.create_ca()
    other.write(tmp_path / "o.pem", tmp_path / "o-key.pem")
    with pytest.raises(ConfigError, match="does not exist"):
        pki.load_credential(tmp_path / "nope.pem", tmp_path / "ca-key.pem")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        pki.load_credential(tmp_path / "ca-key.pem", tmp_path / "ca-key.pem")
    with pytest.raises(ConfigError, match="holds no PEM private key"):
        pki.load_credential(tmp_path / "ca.pem", tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match="does not belong"):
        pki.load_credential(tmp_path / "ca.pem", tmp_path / "o-key.pem")


def test_repr_shows_subject_never_key(ca):
    text = repr(pki.create_certificate(ca, "server"))
    assert "server.global.nomad" in text
    assert "PRIVATE" not in text and "BEGIN" not in text


# --- a real OpenSSL agrees ------------------------------------------------------------------

@pytest.mark.parametrize("role", pki.ROLES)
def test_openssl_verifies_leaf_against_ca(tmp_path, role):
    ca = pki.create_ca(name_constraint=True)
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    leaf = pki.create_certificate(ca, role, dns_names=["nomad.service.nomad"])
    leaf.write(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    result = _openssl_verify(tmp_path / "ca.pem", tmp_path / "leaf.pem", "-purpose", "sslserver")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaf.pem: OK" in result.stdout


def test_openssl_refuses_name_outside_constraint(tmp_path):
    ca = pki.create_ca(name_constraint=True)
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    leaf = pki.create_certificate(ca, "server", dns_names=["nomad.example.com"])
    leaf.write(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    result = _openssl_verify(tmp_path / "ca.pem", tmp_path / "leaf.pem")
    assert result.returncode != 0
    assert "permitted subtree violation" in result.stdout + result.stderr


def test_openssl_refuses_leaf_of_another_ca(ca, tmp_path):
    ca.write(tmp_path / "ca.pem", tmp_path / "ca-key.pem")
    stranger = pki.create_certificate(pki.create_ca(), "server")
    stranger.write(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    result = _openssl_verify(tmp_path / "ca.pem", tmp_path / "leaf.pem")
    assert result.returncode != 0

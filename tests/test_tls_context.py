"""The client's SSLContext: which roots it trusts, which client certificate it shows, and a
ConfigError naming the file and its variable, flag or keyword for every file that cannot
work, before any connection is tried."""

from __future__ import annotations

import os
import ssl

import pytest
from cryptography.hazmat.primitives import serialization

from nomadtls import pki as nomad_pki
from nomadtls._tls import build_context
from nomadtls.errors import ConfigError
from nomadtls.settings import resolve


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A cluster CA, a second CA, a CLI certificate, and broken variants, on disk."""
    root = tmp_path_factory.mktemp("tls-files")
    ca = nomad_pki.create_ca()
    other_ca = nomad_pki.create_ca()
    cli = nomad_pki.create_certificate(ca, "cli")
    server = nomad_pki.create_certificate(ca, "server")
    paths = {}

    def put(name, data):
        path = root / name
        path.write_bytes(data)
        paths[name] = str(path)

    put("ca.pem", ca.cert_pem)
    put("other-ca.pem", other_ca.cert_pem)
    put("cli.pem", cli.cert_pem)
    put("cli-key.pem", cli.key_pem)
    put("server.pem", server.cert_pem)
    put("server-key.pem", server.key_pem)
    put("empty.pem", b"")
    put("notes.txt", b"remember to rotate the CA\n")
    put("ca.der", ca.cert.public_bytes(serialization.Encoding.DER))
    put("encrypted-key.pem", cli.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    (root / "a-directory").mkdir()
    paths["a-directory"] = str(root / "a-directory")
    paths["missing"] = str(root / "missing.pem")
    return paths


def context_for(environ=None, **given):
    return build_context(resolve(environ or {}, **given))


def ca_count(context: ssl.SSLContext) -> int:
    return context.cert_store_stats()["x509_ca"]


def presented(context: ssl.SSLContext, files) -> str:
    """The common name of the certificate `context` shows an agent that demands one from
    the cluster's CA, found through a handshake between the two in memory."""
    agent_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    agent_context.load_cert_chain(files["server.pem"], files["server-key.pem"])
    agent_context.load_verify_locations(files["ca.pem"])
    agent_context.verify_mode = ssl.CERT_REQUIRED
    to_agent, to_client, from_agent, from_client = (ssl.MemoryBIO() for _ in range(4))
    client = context.wrap_bio(to_client, from_client, server_hostname="server.global.nomad")
    agent = agent_context.wrap_bio(to_agent, from_agent, server_side=True)
    waiting = [client, agent]
    for _ in range(10):
        for end in list(waiting):
            try:
                end.do_handshake()
                waiting.remove(end)
            except ssl.SSLWantReadError:
                pass
        to_agent.write(from_client.read())
        to_client.write(from_agent.read())
    subject = dict(pair for part in agent.getpeercert()["subject"] for pair in part)
    return subject["commonName"]


def test_the_context_refuses_anything_older_than_tls_1_2(files):
    context = context_for(ca_cert=files["ca.pem"])

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_without_a_ca_the_context_trusts_certifis_public_roots():
    assert ca_count(context_for()) > 50


def test_a_ca_file_replaces_the_default_roots(files):
    assert ca_count(context_for(ca_cert=files["ca.pem"])) == 1


def test_a_ca_directory_is_read_recursively(files, tmp_path):
    nested = tmp_path / "cas" / "older"
    nested.mkdir(parents=True)
    (tmp_path / "cas" / "cluster.pem").write_bytes(open(files["ca.pem"], "rb").read())
    (nested / "previous.crt").write_bytes(open(files["other-ca.pem"], "rb").read())

    context = context_for(ca_path=str(tmp_path / "cas"))

    assert ca_count(context) == 2


def test_a_file_that_is_not_pem_in_the_ca_directory_is_named(files, tmp_path):
    nested = tmp_path / "cas" / "deep"
    nested.mkdir(parents=True)
    (tmp_path / "cas" / "cluster.pem").write_bytes(open(files["ca.pem"], "rb").read())
    (nested / "README").write_text("not a certificate\n")

    with pytest.raises(ConfigError) as caught:
        context_for({"NOMAD_CAPATH": str(tmp_path / "cas")})

    assert str(nested / "README") in caught.value.message
    assert "NOMAD_CAPATH" in caught.value.message and "not PEM" in caught.value.message


def test_the_ca_file_wins_over_the_ca_directory(files, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "junk").write_text("junk")

    context = context_for(ca_cert=files["ca.pem"], ca_path=str(broken))

    assert ca_count(context) == 1


def test_skip_verify_turns_off_chain_and_name_checks_without_a_valueerror(files):
    context = context_for({"NOMAD_SKIP_VERIFY": "1"}, ca_cert=files["ca.pem"])

    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("name, problem", [
    ("missing", "does not exist"),
    ("empty.pem", "is empty"),
    ("a-directory", "is a directory"),
    ("cli-key.pem", "holds a private key, not a CA certificate"),
    ("notes.txt", "is not PEM"),
    ("ca.der", "is not PEM"),
])
def test_a_ca_file_that_cannot_work_is_named_with_its_variable(files, name, problem):
    with pytest.raises(ConfigError) as caught:
        context_for({"NOMAD_CACERT": files[name]})

    assert caught.value.message.startswith(f"the CA file {files[name]!r} (NOMAD_CACERT)")
    assert problem in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("origin, label", [("flag", "-ca-cert"), ("argument", "ca_cert=")])
def test_the_message_names_the_flag_or_keyword_that_set_the_file(files, origin, label):
    with pytest.raises(ConfigError, match=f"\\({label}\\) is empty"):
        build_context(resolve({}, origin=origin, ca_cert=files["empty.pem"]))


@pytest.mark.parametrize("origin, environ, given, hint", [
    ("argument", {}, {"ca_cert": "empty.pem"}, "check ca_cert="),
    ("flag", {}, {"ca_cert": "empty.pem"}, "check NOMAD_CACERT (-ca-cert)"),
    ("argument", {"NOMAD_CACERT": "empty.pem"}, {}, "check NOMAD_CACERT (-ca-cert)"),
])
def test_the_hint_speaks_the_way_the_file_was_set(files, origin, environ, given, hint):
    environ = {key: files[value] for key, value in environ.items()}
    given = {key: files[value] for key, value in given.items()}
    with pytest.raises(ConfigError) as caught:
        build_context(resolve(environ, origin=origin, **given))

    assert caught.value.hint == hint


def test_a_ca_directory_that_is_a_file_says_which_setting_takes_a_file(files):
    with pytest.raises(ConfigError) as caught:
        context_for(ca_path=files["ca.pem"])

    assert "is a file, not a directory" in caught.value.message
    assert "NOMAD_CACERT (-ca-cert)" in caught.value.hint


def test_a_client_certificate_and_key_are_loaded_together(files):
    context = context_for(ca_cert=files["ca.pem"], client_cert=files["cli.pem"],
                          client_key=files["cli-key.pem"])

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert presented(context, files) == "cli.global.nomad"


@pytest.mark.parametrize("cert, key, blamed, problem", [
    ("missing", "cli-key.pem", "NOMAD_CLIENT_CERT", "does not exist"),
    ("cli.pem", "missing", "NOMAD_CLIENT_KEY", "does not exist"),
    ("empty.pem", "cli-key.pem", "NOMAD_CLIENT_CERT", "is empty"),
    ("cli.pem", "empty.pem", "NOMAD_CLIENT_KEY", "is empty"),
    ("a-directory", "cli-key.pem", "NOMAD_CLIENT_CERT", "is a directory"),
    ("cli.pem", "a-directory", "NOMAD_CLIENT_KEY", "is a directory"),
    ("cli-key.pem", "cli.pem", "NOMAD_CLIENT_CERT", "holds a private key, not a certificate"),
    ("cli.pem", "ca.pem", "NOMAD_CLIENT_KEY", "holds a certificate, not a private key"),
    ("cli.pem", "notes.txt", "NOMAD_CLIENT_KEY", "is not PEM"),
    ("cli.pem", "encrypted-key.pem", "NOMAD_CLIENT_KEY", "must be unencrypted PEM"),
])
def test_a_client_pair_that_cannot_work_is_named(files, cert, key, blamed, problem):
    environ = {"NOMAD_CLIENT_CERT": files[cert], "NOMAD_CLIENT_KEY": files[key]}
    named = files[cert] if blamed == "NOMAD_CLIENT_CERT" else files[key]

    with pytest.raises(ConfigError) as caught:
        context_for(environ, ca_cert=files["ca.pem"])

    assert f"{named!r} ({blamed})" in caught.value.message
    assert problem in caught.value.message


def test_an_encrypted_key_never_prompts_for_a_passphrase(files, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("prompted"))

    with pytest.raises(ConfigError, match="unencrypted PEM"):
        context_for(client_cert=files["cli.pem"], client_key=files["encrypted-key.pem"])


def test_a_certificate_and_key_that_do_not_belong_together_name_both(files):
    with pytest.raises(ConfigError) as caught:
        build_context(resolve({}, origin="flag", client_cert=files["cli.pem"],
                              client_key=files["server-key.pem"]))

    message = caught.value.message
    assert files["cli.pem"] in message and files["server-key.pem"] in message
    assert "-client-cert" in message and "-client-key" in message
    assert "do not belong together" in message


def test_no_key_material_appears_in_any_message(files):
    key_text = open(files["cli-key.pem"]).read()
    body = key_text.splitlines()[1]

    for cert, key in [("cli-key.pem", "cli.pem"), ("cli.pem", "server-key.pem")]:
        with pytest.raises(ConfigError) as caught:
            context_for(client_cert=files[cert], client_key=files[key])
        assert body not in str(caught.value) and body not in repr(caught.value)


def test_files_are_checked_even_when_verification_is_skipped(files):
    with pytest.raises(ConfigError, match="does not exist"):
        context_for(skip_verify=True, ca_cert=files["missing"])


def test_an_unreadable_file_says_so(files, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    locked = tmp_path / "locked.pem"
    locked.write_bytes(open(files["ca.pem"], "rb").read())
    locked.chmod(0)

    with pytest.raises(ConfigError, match="cannot be read"):
        context_for(ca_cert=str(locked))

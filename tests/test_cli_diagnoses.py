"""Every failure a user can cause or meet, triggered for real (local agents, real files) and
reported alike by the client's exception and by `nomadtls status`: the error class, the
words that say what failed and what to change, exit 1, at most four plain lines that fit a
100-column terminal, no traceback, and never the token, the password or a line of a key."""

from __future__ import annotations

import base64
import contextlib
import socket
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from nomadtls import NomadClient, pki as nomad_pki
from nomadtls.errors import (APIError, CertificateExpired, ClientCertificateRejected,
                             ClientCertificateRequired, ConfigError, ConnectError,
                             ConnectTimeout, InvalidResponse, NomadError, NomadWarning,
                             NotFound, PermissionDenied, ProtocolMismatch, ReadTimeout,
                             ServerNameMismatch, UnknownAuthority)
from nomadtls.settings import setting_named
from nomadtls.testing import StandInAgent
from nomadtls_cli.main import app
from nomadtls_cli.options import print_error

# Every case carries both secrets, so that every report is checked for them.
TOKEN = "5ec12e7a-70ce-4e2d-b5a9-d1a6c0de70ce"
PASSWORD = "pa55-hunter2-w0rd"
SECRETS = {"NOMAD_TOKEN": TOKEN, "NOMAD_HTTP_AUTH": f"ops:{PASSWORD}"}

WIDTH = 100  # what stderr is wrapped to when it goes to no terminal


@dataclass
class Case:
    """How to meet one failure: variables (None unsets one), flags typed on the command line
    (given to the client as keywords with origin="flag"), and the phrases both reports hold."""

    env: dict[str, str | None]
    says: tuple[str, ...]
    flags: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        merged = {**SECRETS, **self.env}
        return {name: value for name, value in merged.items() if value is not None}

    def arguments(self) -> list[str]:
        return [f"{setting_named(name).flag}={value}" for name, value in self.flags.items()]


class Scene:
    """What a case is built from: the test PKI, files on disk (good and broken), and agents
    started on demand and stopped after the test."""

    def __init__(self, pki, files: dict[str, str], cluster, stack: contextlib.ExitStack):
        self.pki = pki
        self.files = files
        self._cluster = cluster
        self._stack = stack

    def agent(self, **options) -> StandInAgent:
        return self._stack.enter_context(StandInAgent(self._cluster, **options))

    def answering(self, status: int, body: str, headers: dict | None = None) -> StandInAgent:
        """A plain agent that answers GET /v1/jobs with `status` and `body`, every time."""
        agent = self.agent()
        agent.add_route("GET", "/v1/jobs", lambda request: (status, headers or {}, body))
        return agent


@pytest.fixture(scope="module")
def files(pki, tmp_path_factory) -> dict[str, str]:
    """Every file the cases name: the PKI's, and the broken ones users end up with."""
    root = tmp_path_factory.mktemp("diagnoses")
    (root / "empty.pem").write_bytes(b"")
    (root / "a-directory").mkdir()
    (root / "cas-with-a-key").mkdir()
    (root / "cas-with-a-key" / "cluster-key.pem").write_bytes(pki.cli.key_pem)
    (root / "cas-with-an-empty-file").mkdir()
    (root / "cas-with-an-empty-file" / "ca.pem").write_bytes(b"")
    (root / "encrypted-key.pem").write_bytes(pki.cli.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    stranger = nomad_pki.create_certificate(pki.other_ca, "cli")
    stranger.write(root / "stranger.pem", root / "stranger-key.pem")
    found = {path.name: str(path) for path in root.iterdir()}
    found["missing.pem"] = str(root / "missing.pem")
    return found


@pytest.fixture(scope="module")
def key_lines(pki, files) -> set[str]:
    """The lines of every private key a case can read, but the -----BEGIN/END----- armour."""
    keys = [*Path(pki.directory).glob("*key.pem"), Path(files["encrypted-key.pem"]),
            Path(files["stranger-key.pem"])]
    return {line for key in keys for line in key.read_text().splitlines()
            if line and not line.startswith("-----")}


@pytest.fixture
def scene(pki, files, cluster):
    with contextlib.ExitStack() as stack:
        yield Scene(pki, files, cluster, stack)


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def flat(text: str) -> str:
    """`text` with its line breaks and indentation folded to single spaces."""
    return " ".join(text.split())


def assert_no_secret(text: str, key_lines: set[str]) -> None:
    assert TOKEN not in text and PASSWORD not in text
    leaked = [line for line in key_lines if line in text]
    assert not leaked, "a line of a private key was shown"


def client_error(case: Case) -> NomadError:
    """What NomadClient raises for a GET of /v1/jobs, as `status` makes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NomadWarning)
        with pytest.raises(NomadError) as caught:
            with NomadClient(environ=case.environ(), origin="flag", **case.flags) as client:
                client.get("/v1/jobs")
    return caught.value


def status(case: Case, extra_env: dict | None = None):
    return CliRunner().invoke(app, ["status", *case.arguments()],
                              env={**SECRETS, **case.env, **(extra_env or {})})


def diagnose(case: Case, key_lines: set[str]) -> tuple[NomadError, str]:
    """Meet the failure through the client and through the CLI; check what every report
    must be; return the client's error and the CLI's stderr folded to one line."""
    error = client_error(case)
    for text in (error.message, error.hint or "", str(error), repr(error)):
        assert "\n" not in text
        assert_no_secret(text, key_lines)

    result = status(case)
    lines = result.stderr.splitlines()
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert 1 <= len(lines) <= 4, result.stderr
    assert lines[0].startswith("Error: ")
    assert all(len(line) <= WIDTH for line in lines), result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stdout + result.stderr, key_lines)

    shown = flat(result.stderr)
    said = flat(f"{error.message} {error.hint or ''}")
    for phrase in case.says:
        assert phrase in said, f"{phrase!r} not in the client's {said!r}"
        assert phrase in shown, f"{phrase!r} not in the CLI's {shown!r}"
    return error, shown


Builder = Callable[[Scene], Case]


def cases(*rows: tuple[str, type, Builder]) -> list:
    return [pytest.param(build, kind, id=name) for name, kind, build in rows]


# ------------------------------------------------------------------ addresses

def _nothing_listening(scene: Scene) -> Case:
    address = f"http://127.0.0.1:{closed_port()}"
    return Case({"NOMAD_ADDR": address},
                (f"nothing is listening at {address} (NOMAD_ADDR): connection refused",
                 "NOMAD_ADDR (-address)"))


def _nothing_listening_by_flag(scene: Scene) -> Case:
    address = f"http://127.0.0.1:{closed_port()}"
    return Case({"NOMAD_ADDR": "http://127.0.0.1:9"},
                (f"nothing is listening at {address} (-address)", "NOMAD_ADDR (-address)"),
                flags={"address": address})


def _missing_socket(scene: Scene) -> Case:
    path = f"/tmp/nomadtls-{uuid.uuid4().hex[:8]}/api.sock"
    return Case({"NOMAD_ADDR": f"unix://{path}"},
                (f"there is no unix socket at {path} (NOMAD_ADDR)", "NOMAD_ADDR (-address)"))


@pytest.mark.parametrize("build, kind", cases(
    ("no scheme", ConfigError, lambda scene: Case(
        {"NOMAD_ADDR": "10.0.0.5:4646"},
        ("NOMAD_ADDR '10.0.0.5:4646' has no scheme", "http://10.0.0.5:4646",
         "https://10.0.0.5:4646"))),
    ("unknown scheme", ConfigError, lambda scene: Case(
        {"NOMAD_ADDR": "tcp://10.0.0.5:4646"},
        ("NOMAD_ADDR 'tcp://10.0.0.5:4646' has the unknown scheme 'tcp'",
         "http://, https:// or unix://"))),
    ("unparseable, with a password", ConfigError, lambda scene: Case(
        {"NOMAD_ADDR": f"https://ops:{PASSWORD}@[::1:4646"},
        ("NOMAD_ADDR 'https://ops:***@[::1:4646' cannot be parsed",
         "https://host:port"))),
    ("unparseable flag", ConfigError, lambda scene: Case(
        {}, ("-address 'http://10.0.0.5:99999' cannot be parsed",),
        flags={"address": "http://10.0.0.5:99999"})),
    ("nothing listening", ConnectError, _nothing_listening),
    ("nothing listening, by flag", ConnectError, _nothing_listening_by_flag),
    ("missing unix socket", ConnectError, _missing_socket),
))
def test_an_address_that_leads_nowhere_names_nomad_addr_and_the_flag(scene, key_lines,
                                                                      build, kind):
    error, _ = diagnose(build(scene), key_lines)

    assert type(error) is kind


# ------------------------------------------------------------------ files

def _file(variable: str, name: str, problem: str, **others: str) -> Builder:
    """A case where `variable` names the file `name` (a key of `files`), which has
    `problem`; `others` set more variables to files, by their keys."""
    what = {"NOMAD_CACERT": "the CA file", "NOMAD_CAPATH": "the CA directory",
            "NOMAD_CLIENT_CERT": "the client certificate",
            "NOMAD_CLIENT_KEY": "the client key"}[variable]

    def build(scene: Scene) -> Case:
        path = scene.files.get(name) or str(getattr(scene.pki, name))
        env = {variable: path, "NOMAD_ADDR": "https://127.0.0.1:4646"}
        env.update({other: scene.files.get(key) or str(getattr(scene.pki, key))
                    for other, key in others.items()})
        return Case(env, (f"{what} '{path}' ({variable}) {problem}",))
    return build


def _in_ca_directory(directory: str, name: str, problem: str) -> Builder:
    def build(scene: Scene) -> Case:
        top = scene.files[directory]
        return Case({"NOMAD_CAPATH": top, "NOMAD_ADDR": "https://127.0.0.1:4646"},
                    (f"the file '{top}/{name}' in the CA directory (NOMAD_CAPATH) {problem}",))
    return build


PAIR = {"NOMAD_CLIENT_KEY": "cli_key_file"}
CERT = {"NOMAD_CLIENT_CERT": "cli_cert_file"}


@pytest.mark.parametrize("build, kind", cases(
    ("CA file missing", ConfigError, _file("NOMAD_CACERT", "missing.pem", "does not exist")),
    ("CA file empty", ConfigError, _file("NOMAD_CACERT", "empty.pem", "is empty")),
    ("CA file a directory", ConfigError,
     _file("NOMAD_CACERT", "a-directory", "is a directory, not a file")),
    ("CA file a key", ConfigError, _file("NOMAD_CACERT", "cli_key_file",
                                         "holds a private key, not a CA certificate")),
    ("CA directory missing", ConfigError,
     _file("NOMAD_CAPATH", "missing.pem", "does not exist")),
    ("CA directory empty", ConfigError,
     _file("NOMAD_CAPATH", "a-directory", "holds no CA files")),
    ("CA directory a file", ConfigError,
     _file("NOMAD_CAPATH", "ca_file", "is a file, not a directory")),
    ("CA directory with an empty file", ConfigError,
     _in_ca_directory("cas-with-an-empty-file", "ca.pem", "is empty")),
    ("CA directory with a key", ConfigError,
     _in_ca_directory("cas-with-a-key", "cluster-key.pem",
                      "holds a private key, not a CA certificate")),
    ("client certificate missing", ConfigError,
     _file("NOMAD_CLIENT_CERT", "missing.pem", "does not exist", **PAIR)),
    ("client certificate empty", ConfigError,
     _file("NOMAD_CLIENT_CERT", "empty.pem", "is empty", **PAIR)),
    ("client certificate a directory", ConfigError,
     _file("NOMAD_CLIENT_CERT", "a-directory", "is a directory, not a file", **PAIR)),
    ("client certificate a key", ConfigError,
     _file("NOMAD_CLIENT_CERT", "cli_key_file", "holds a private key, not a certificate",
           **PAIR)),
    ("client key missing", ConfigError,
     _file("NOMAD_CLIENT_KEY", "missing.pem", "does not exist", **CERT)),
    ("client key empty", ConfigError,
     _file("NOMAD_CLIENT_KEY", "empty.pem", "is empty", **CERT)),
    ("client key a directory", ConfigError,
     _file("NOMAD_CLIENT_KEY", "a-directory", "is a directory, not a file", **CERT)),
    ("client key a certificate", ConfigError,
     _file("NOMAD_CLIENT_KEY", "cli_cert_file", "holds a certificate, not a private key",
           **CERT)),
    ("client key encrypted", ConfigError,
     _file("NOMAD_CLIENT_KEY", "encrypted-key.pem", "is encrypted", **CERT)),
    ("certificate without its key", ConfigError,
     _file("NOMAD_CLIENT_CERT", "cli_cert_file", "was given without its key")),
    ("key without its certificate", ConfigError,
     _file("NOMAD_CLIENT_KEY", "cli_key_file", "was given without its certificate")),
))
def test_a_file_that_cannot_work_is_named_with_its_variable(scene, key_lines, build, kind):
    error, _ = diagnose(build(scene), key_lines)

    assert type(error) is kind


def test_a_certificate_and_key_that_do_not_match_name_both_files(scene, key_lines, pki):
    cert, key = str(pki.cli_cert_file), str(pki.server_key_file)
    case = Case({"NOMAD_ADDR": "https://127.0.0.1:4646", "NOMAD_CLIENT_CERT": cert},
                (f"the client certificate '{cert}' (NOMAD_CLIENT_CERT) and key '{key}' "
                 "(-client-key) do not belong together",),
                flags={"client_key": key})

    error, _ = diagnose(case, key_lines)

    assert type(error) is ConfigError


# ------------------------------------------------------------------ verification

def _by_ip(scene: Scene) -> Case:
    agent = scene.agent(tls=scene.pki.server, host="127.0.0.2")
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_CACERT": str(scene.pki.ca_file)},
                ("valid for server.global.nomad, localhost, ::1, 127.0.0.1, not '127.0.0.2' "
                 "(the host in NOMAD_ADDR)",
                 "NOMAD_TLS_SERVER_NAME=server.global.nomad "
                 "(-tls-server-name=server.global.nomad)"))


def _other_ca(scene: Scene) -> Case:
    agent = scene.agent(tls=scene.pki.other_server)
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_CACERT": str(scene.pki.ca_file)},
                ("(issued by 'Some Other CA') is not signed by a CA this client trusts",
                 f"the CA file {scene.pki.ca_file} from NOMAD_CACERT",
                 "NOMAD_CACERT (-ca-cert) to the PEM file of the CA that signed it"))


def _no_ca(scene: Scene) -> Case:
    agent = scene.agent(tls=scene.pki.server)
    return Case({"NOMAD_ADDR": agent.address},
                ("certifi's public roots", "NOMAD_CACERT (-ca-cert)"))


def _expired(scene: Scene) -> Case:
    agent = scene.agent(tls=scene.pki.expired_server)
    end = scene.pki.expired_server.cert.not_valid_after_utc
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_CACERT": str(scene.pki.ca_file)},
                (f"the agent's certificate expired on {end:%Y-%m-%d %H:%M:%S} UTC",))


@pytest.mark.parametrize("build, kind", cases(
    ("name mismatch", ServerNameMismatch, _by_ip),
    ("unknown authority", UnknownAuthority, _other_ca),
    ("public roots only", UnknownAuthority, _no_ca),
    ("expired", CertificateExpired, _expired),
))
def test_a_certificate_that_does_not_verify_says_what_to_set(scene, key_lines, build, kind):
    error, _ = diagnose(build(scene), key_lines)

    assert type(error) is kind


# ------------------------------------------------------------------ protocols

def _http_at_tls(go_reply: bool) -> Builder:
    def build(scene: Scene) -> Case:
        agent = scene.agent(tls=scene.pki.server, go_plaintext_reply=go_reply)
        plain = agent.address.replace("https://", "http://")
        return Case({"NOMAD_ADDR": plain},
                    (f"the agent at {plain} (NOMAD_ADDR) speaks TLS",
                     f"https://: set NOMAD_ADDR={agent.address} "
                     f"(-address={agent.address})"))
    return build


def _https_at_plain(scene: Scene) -> Case:
    agent = scene.agent()
    secure = agent.address.replace("http://", "https://")
    return Case({"NOMAD_ADDR": secure},
                (f"the agent at {secure} (NOMAD_ADDR) speaks plain HTTP, not TLS",
                 f"http://: set NOMAD_ADDR={agent.address}"))


@pytest.mark.parametrize("build, kind", cases(
    ("http at a Go agent's TLS port", ProtocolMismatch, _http_at_tls(go_reply=True)),
    ("http at a TLS port that resets", ProtocolMismatch, _http_at_tls(go_reply=False)),
    ("https at a plain port", ProtocolMismatch, _https_at_plain),
))
def test_the_wrong_scheme_for_the_port_says_which_to_use(scene, key_lines, build, kind):
    error, _ = diagnose(build(scene), key_lines)

    assert type(error) is kind


# ------------------------------------------------------------------ client certificates

def _demanded(scene: Scene) -> Case:
    agent = scene.agent(tls=scene.pki.server, client_ca=scene.pki.ca)
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_CACERT": str(scene.pki.ca_file)},
                ("demands a client certificate and none was given",
                 "NOMAD_CLIENT_CERT (-client-cert) and NOMAD_CLIENT_KEY (-client-key)"))


def _rejected(scene: Scene) -> Case:
    agent = scene.agent(tls=scene.pki.server, client_ca=scene.pki.ca)
    cert = scene.files["stranger.pem"]
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_CACERT": str(scene.pki.ca_file),
                 "NOMAD_CLIENT_CERT": cert, "NOMAD_CLIENT_KEY": scene.files["stranger-key.pem"]},
                (f"refused the client certificate '{cert}' (NOMAD_CLIENT_CERT)",
                 "a client certificate signed by the agent's CA"))


@pytest.mark.parametrize("build, kind", cases(
    ("demanded", ClientCertificateRequired, _demanded),
    ("signed by another CA", ClientCertificateRejected, _rejected),
))
def test_an_agent_that_wants_a_client_certificate_says_which(scene, key_lines, build, kind):
    error, _ = diagnose(build(scene), key_lines)

    assert type(error) is kind


# ------------------------------------------------------------------ answers

def _no_token(scene: Scene) -> Case:
    agent = scene.agent(token=TOKEN)
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_TOKEN": None},
                ("the agent refused GET /v1/jobs (403): Permission denied",
                 "ACL token was sent; set NOMAD_TOKEN (-token)"))


def _wrong_token(scene: Scene) -> Case:
    agent = scene.agent(token="another-token-altogether")
    return Case({"NOMAD_ADDR": agent.address},
                ("refused GET /v1/jobs (403): ACL token not found",
                 "token from NOMAD_TOKEN is unknown or expired"))


def _wrong_token_flag(scene: Scene) -> Case:
    agent = scene.agent(token="another-token-altogether")
    return Case({"NOMAD_ADDR": agent.address, "NOMAD_TOKEN": None},
                ("ACL token not found", "token from -token is unknown"),
                flags={"token": TOKEN})


def _basic_auth(scene: Scene) -> Case:
    agent = scene.answering(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="nomad"'})
    return Case({"NOMAD_ADDR": agent.address},
                ("refused GET /v1/jobs (401): Unauthorized", "NOMAD_HTTP_AUTH=user:password"))


def _no_route(scene: Scene) -> Case:
    agent = scene.agent()
    return Case({"NOMAD_ADDR": f"{agent.address}/nomad"},
                ("GET /v1/jobs found nothing (404): 404 page not found",
                 "the path '/nomad' in NOMAD_ADDR (-address)"))


def _server_error(scene: Scene) -> Case:
    agent = scene.answering(500, "rpc error: failed to get conn: dial tcp 10.0.0.9:4647: "
                                 "i/o timeout\n")
    return Case({"NOMAD_ADDR": agent.address},
                ("the agent answered GET /v1/jobs with 500: rpc error: failed to get conn: "
                 "dial tcp 10.0.0.9:4647: i/o timeout",))


def _unavailable(scene: Scene) -> Case:
    agent = scene.answering(503, "No cluster leader")
    return Case({"NOMAD_ADDR": agent.address},
                ("with 503: No cluster leader", "unavailable (tried 4 times)"))


def _login_page(scene: Scene) -> Case:
    agent = scene.answering(200, "<html><body>Sign in</body></html>",
                            {"Content-Type": "text/html"})
    return Case({"NOMAD_ADDR": agent.address},
                ("is not JSON, so this is not a Nomad agent's answer",
                 "it begins '<html><body>Sign in</body></html>'", "NOMAD_ADDR (-address)"))


@pytest.mark.parametrize("build, kind", cases(
    ("403 without a token", PermissionDenied, _no_token),
    ("403 with a wrong token", PermissionDenied, _wrong_token),
    ("403 with a wrong token flag", PermissionDenied, _wrong_token_flag),
    ("401 from a proxy", PermissionDenied, _basic_auth),
    ("404 for a path no route serves", NotFound, _no_route),
    ("500 with the agent's message", APIError, _server_error),
    ("503 after every try", APIError, _unavailable),
    ("a login page", InvalidResponse, _login_page),
))
def test_an_answer_that_is_no_success_quotes_the_agent(scene, key_lines, build, kind):
    error, _ = diagnose(build(scene), key_lines)

    assert type(error) is kind


def test_a_404_for_an_object_quotes_the_agent_without_a_hint(plain_agent):
    with NomadClient(plain_agent.address, environ={}) as client:
        with pytest.raises(NotFound) as caught:
            client.get("/v1/job/no-such-job")

    assert caught.value.message == "GET /v1/job/no-such-job found nothing (404): job not found"
    assert caught.value.hint is None


# ------------------------------------------------------------------ skipping verification

def test_an_unparseable_skip_verify_warns_once_and_verification_stays_on(scene, key_lines):
    agent = scene.agent(tls=scene.pki.other_server)
    case = Case({"NOMAD_ADDR": agent.address, "NOMAD_SKIP_VERIFY": "yes please"}, ())

    with pytest.warns(NomadWarning) as caught:
        client = NomadClient(environ=case.environ())
    with client, pytest.raises(UnknownAuthority):
        client.get("/v1/jobs")
    result = status(case)

    (warning,) = caught
    accepted = "use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"
    assert str(warning.message) == ("NOMAD_SKIP_VERIFY='yes please' is not a boolean, so "
                                     f"certificates are verified; {accepted}")
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) <= 4 and "Traceback" not in result.stderr
    assert lines[0].startswith("Warning: NOMAD_SKIP_VERIFY='yes please' is not a boolean")
    assert accepted in flat(result.stderr)
    assert "not signed by a CA this client trusts" in flat(result.stderr)
    assert_no_secret(result.stdout + result.stderr, key_lines)


def test_a_long_unparseable_skip_verify_is_shortened_in_the_warning(scene):
    case = Case({"NOMAD_ADDR": scene.agent().address, "NOMAD_SKIP_VERIFY": "x" * 500}, ())

    result = status(case)

    assert result.exit_code == 0
    assert result.stderr.startswith(f"Warning: NOMAD_SKIP_VERIFY='{'x' * 17}...' is not")
    assert len(result.stderr.splitlines()) == 2


@pytest.mark.parametrize("env, flags, label", [
    ({"NOMAD_SKIP_VERIFY": "true"}, {}, "NOMAD_SKIP_VERIFY"),
    ({}, {"skip_verify": "true"}, "-tls-skip-verify"),
])
def test_while_verification_is_skipped_one_warning_line_says_so(scene, key_lines, env, flags,
                                                                label):
    agent = scene.agent(tls=scene.pki.other_server)
    case = Case({"NOMAD_ADDR": agent.address, **env}, (), flags=flags)

    with pytest.warns(NomadWarning) as caught:
        client = NomadClient(environ=case.environ(), origin="flag", **flags)
    with client:
        assert client.get("/v1/jobs")
    arguments = ["-tls-skip-verify"] if flags else []
    result = CliRunner().invoke(app, ["status", *arguments], env={**SECRETS, **case.env})

    expected = (f"TLS verification is off ({label}): anyone on the path can pose as the "
                "agent")
    assert [str(w.message) for w in caught] == [expected]
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Warning: {expected}\n"
    assert result.stdout.startswith("ID ")
    assert_no_secret(result.stdout + result.stderr, key_lines)


# ------------------------------------------------------------------ the shape of the report

def test_in_an_80_column_terminal_every_line_fits_and_there_are_at_most_four(scene,
                                                                            key_lines):
    case = _by_ip(scene)

    result = status(case, extra_env={"COLUMNS": "80"})

    lines = result.stderr.splitlines()
    assert len(lines) <= 4 and all(len(line) <= 80 for line in lines), result.stderr
    assert lines[0].startswith("Error: ") and lines[1].startswith("  ")  # continued
    assert all(phrase in flat(result.stderr) for phrase in case.says)


def test_a_report_too_long_for_four_lines_keeps_every_word(capsys):
    words = " ".join(f"word{n}" for n in range(60))

    print_error(ConfigError(words, hint=words))

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    assert flat(" ".join(lines)) == f"Error: {words} {words[:1].upper()}{words[1:]}"


# ------------------------------------------------------------------ faults

def test_a_silent_agent_is_given_up_on_after_the_connect_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # accepts nothing, so the queue fills and later SYNs go unheard
        address = listener.getsockname()
        queued = []
        try:
            for _ in range(64):  # fill the queue until a connection is not taken
                waiting = socket.socket()
                queued.append(waiting)
                waiting.settimeout(0.2)
                waiting.connect(address)
            else:
                pytest.skip("this kernel takes every connection")
        except TimeoutError:
            pass
        try:
            with NomadClient(f"http://127.0.0.1:{address[1]}", environ={},
                             timeout=(0.3, 5)) as client:
                with pytest.raises(ConnectTimeout) as caught:
                    client.get("/v1/jobs")
        finally:
            for waiting in queued:
                waiting.close()

    assert caught.value.message == (f"no connection to http://127.0.0.1:{address[1]} "
                                    "(address=) within 0.3 s")
    assert caught.value.hint.startswith("check the address (address=) and that no firewall")


def test_a_blocking_query_to_a_silent_agent_ends_after_the_wait_and_a_margin(plain_agent):
    with NomadClient(plain_agent.address, environ={}, timeout=(2, 0.3)) as client:
        index = client.request("GET", "/v1/jobs").index
        plain_agent.stall_next(1, seconds=30)

        with pytest.raises(ReadTimeout) as caught:
            client.request("GET", "/v1/jobs", index=index, wait=0.5)

    # The read timeout, plus the wait and the sixteenth Nomad may add to it.
    assert f"within {0.3 + 0.5 * 17 / 16:g} s" in caught.value.message
    assert len(plain_agent.requests) == 2  # a timeout is not tried again


# ------------------------------------------------------------------ arbitrary input

@pytest.mark.parametrize("env, says", [
    ({"NOMAD_REGION": "eu\udcff"}, "NOMAD_REGION holds bytes that are not UTF-8 text"),
    ({"NOMAD_HTTP_AUTH": "ops:\udcff"}, "NOMAD_HTTP_AUTH holds bytes that are not UTF-8"),
    ({"NOMAD_ADDR": "https://ops:pa\udcffss@127.0.0.1:4646"},
     "NOMAD_ADDR holds bytes that are not UTF-8 text"),
    ({"NOMAD_TLS_SERVER_NAME": "server..nomad"},
     "NOMAD_TLS_SERVER_NAME 'server..nomad' is neither a DNS name nor an IP address"),
    ({"NOMAD_TLS_SERVER_NAME": "x" * 64 + ".nomad"}, "is neither a DNS name nor an IP"),
])
def test_a_value_no_request_can_carry_is_a_config_error(plain_agent, env, says):
    environ = {"NOMAD_ADDR": plain_agent.address.replace("http:", "https:"), **env}

    with pytest.raises(ConfigError) as caught:
        NomadClient(environ=environ)
    result = CliRunner().invoke(app, ["status"], env=environ)

    assert says in caught.value.message
    assert result.exit_code == 1 and says in flat(result.stderr)
    assert "\udcff" not in caught.value.message


def test_basic_auth_beyond_latin_1_is_sent_as_utf8_as_go_sends_it(plain_agent):
    with NomadClient(plain_agent.address, environ={}, http_auth="jörg:pässwörd€") as client:
        client.get("/v1/jobs")

    expected = base64.b64encode("jörg:pässwörd€".encode("utf-8")).decode("ascii")
    assert plain_agent.requests[-1].headers["Authorization"] == f"Basic {expected}"

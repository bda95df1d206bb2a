"""The connection options every agent command shares: both spellings of every flag, only
what was typed reaching the resolver (so a flag beats its variable and an untyped flag
never does), and failures and warnings as plain lines."""

from __future__ import annotations

import json
import warnings

import pytest
import typer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nomadtls.errors import ConfigError, NomadWarning, ServerNameMismatch
from nomadtls.settings import SETTINGS, parse_address
from nomadtls.testing import StandInAgent
from nomadtls_cli.help import NomadGroup
from nomadtls_cli.main import app
from nomadtls_cli.options import Connection, connection_options, make_client, print_error

VALUED = [s for s in SETTINGS if s.flag and s.kind not in ("bool", "flag")]
SWITCHES = [s for s in SETTINGS if s.flag and s.kind in ("bool", "flag")]

probe = typer.Typer(cls=NomadGroup, rich_markup_mode=None, add_completion=False)
failures: list[BaseException] = []


@probe.command()
@connection_options
def show(connection: Connection) -> None:
    """Print what the user typed, as JSON."""
    typer.echo(json.dumps({"typed": dict(connection.typed), "debug": connection.debug}))


@probe.command()
@connection_options
def fail(connection: Connection) -> None:
    """Raise the next prepared failure, after a library warning."""
    warnings.warn("verification is off, for the test", NomadWarning)
    raise failures.pop()


def typed(*args: str, env: dict | None = None) -> dict:
    result = CliRunner().invoke(probe, ["show", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["typed"]


@pytest.mark.parametrize("setting", VALUED, ids=lambda s: s.flag)
@pytest.mark.parametrize("style", ["-{}=X", "-{} X", "--{} X", "--{}=X"])
def test_every_valued_option_takes_both_spellings_and_both_separators(setting, style):
    words = style.format(setting.flag.lstrip("-")).split()
    words = [w.replace("X", "value/x") if "X" in w else w for w in words]

    assert typed(*words) == {setting.name: "value/x"}


@pytest.mark.parametrize("setting", SWITCHES, ids=lambda s: s.flag)
@pytest.mark.parametrize("dashes", ["-", "--"])
def test_every_switch_takes_both_spellings(setting, dashes):
    assert typed(dashes + setting.flag.lstrip("-")) == {setting.name: True}


@pytest.mark.parametrize("alias", ["-insecure", "--insecure"])
def test_insecure_is_a_hidden_alias_of_tls_skip_verify(alias):
    assert typed(alias) == {"skip_verify": True}


def test_nothing_typed_passes_nothing_on():
    assert typed() == {}


def test_a_variable_is_not_mistaken_for_a_typed_flag():
    assert typed(env={"NOMAD_ADDR": "https://10.0.0.5:4646", "NOMAD_SKIP_VERIFY": "1"}) == {}


def test_debug_is_recorded_but_is_no_setting():
    result = CliRunner().invoke(probe, ["show", "-debug"])

    assert json.loads(result.stdout) == {"typed": {}, "debug": True}


def test_the_settings_a_client_gets_take_the_flag_over_the_variable(monkeypatch):
    monkeypatch.setenv("NOMAD_ADDR", "https://from-variable.example:4646")
    monkeypatch.setenv("NOMAD_REGION", "eu")
    connection = Connection({"address": "https://from-flag.example:4646"})

    with make_client(connection) as client:
        resolved = client.settings

    assert resolved.address.url == "https://from-flag.example:4646"
    assert resolved.source("address") == "flag"
    assert resolved.region == "eu" and resolved.source("region") == "NOMAD_REGION"
    assert resolved.source("namespace") == "default"


def test_the_colour_flags_reach_the_resolved_settings(monkeypatch):
    monkeypatch.setenv("NOMAD_CLI_FORCE_COLOR", "1")
    with make_client(Connection({"no_color": True})) as client:
        assert client.settings.no_color and client.settings.source("no_color") == "flag"
        assert client.settings.force_color


def test_print_error_writes_the_message_then_the_hint(capsys):
    print_error(ConfigError("the CA file 'ca.pem' (-ca-cert) does not exist",
                            hint="check NOMAD_CACERT (-ca-cert)"))

    assert capsys.readouterr().err == ("Error: the CA file 'ca.pem' (-ca-cert) does not exist\n"
                                       "Check NOMAD_CACERT (-ca-cert)\n")


def test_print_error_keeps_each_part_to_one_line(capsys):
    print_error(ServerNameMismatch("the certificate is for\nother names", hint=None))

    assert capsys.readouterr().err == "Error: the certificate is for other names\n"


def test_a_nomad_error_is_two_plain_lines_and_exit_1():
    failures.append(ConfigError("NOMAD_ADDR 'x' has no scheme", hint="write http://x"))

    result = CliRunner().invoke(probe, ["fail"])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["Warning: verification is off, for the test",
                                          "Error: NOMAD_ADDR 'x' has no scheme",
                                          "Write http://x"]
    assert "Traceback" not in result.output


def test_an_unexpected_failure_is_one_line_and_exit_1_without_a_traceback():
    failures.append(KeyError("Matches"))

    result = CliRunner().invoke(probe, ["fail"])

    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "Error: unexpected KeyError: 'Matches'" in result.stderr
    assert "-debug" in result.stderr


def test_debug_shows_the_traceback_first():
    failures.append(ConfigError("bad setting"))

    result = CliRunner().invoke(probe, ["fail", "-debug"])

    assert result.exit_code == 1
    assert result.stderr.index("Traceback") < result.stderr.index("Error: bad setting")


@pytest.mark.parametrize("typo, message", [
    ("-adress=x", "No such option: -adress (did you mean -address?)"),
    ("--adress", "No such option: --adress (did you mean -address?)"),
    ("-bogus", "No such option: -bogus"),
])
def test_an_unknown_option_is_a_usage_error_naming_what_was_typed(typo, message):
    result = CliRunner().invoke(probe, ["show", typo])

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_a_missing_value_is_a_usage_error():
    result = CliRunner().invoke(probe, ["show", "-address"])

    assert result.exit_code == 2
    assert "requires an argument" in result.stderr


def test_a_command_without_a_connection_parameter_is_refused():
    def broken() -> None:
        """Has nowhere to put the options."""

    with pytest.raises(TypeError, match="connection"):
        connection_options(broken)


# -- arbitrary input ---------------------------------------------------------------------

# Every option of `status` but -address, whose arbitrary values could name real hosts (the
# variable NOMAD_ADDR is drawn from `addresses` instead).
WORDS = ["-verbose", "-json", "--json", "-debug", "-region", "-namespace", "-token",
         "-ca-cert", "-ca-path", "-client-cert", "-client-key", "-tls-server-name",
         "-tls-skip-verify", "-insecure", "-no-color", "-force-color", "--", "-h"]


@pytest.fixture(scope="module")
def shared_agent():
    with StandInAgent() as agent:
        yield agent


# What a process can receive as an argument or a variable's value: text without NUL, and
# without lone surrogates, which os.environ cannot store.
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
               max_size=10)


VARIABLES = [s.env for s in SETTINGS if s.env != "NOMAD_ADDR"]


def addresses(agent: StandInAgent) -> st.SearchStrategy[str]:
    """The stand-in agent's address (half the time, so that the other variables reach it),
    arbitrary text, and text around schemes and loopback hosts: most addresses parse, and
    none leads off this machine."""
    hosts = st.sampled_from(["127.0.0.1", "[::1]", "localhost", "127.0.0.1:1",
                             agent.address.split("://")[1], ""])
    schemes = st.sampled_from(["http://", "https://", "unix://", "unix:", "HTTP://", "ftp://",
                               ""])
    built = st.builds(lambda *parts: "".join(parts), schemes, hosts, TEXT)
    return st.one_of(st.just(agent.address), st.just(agent.address.replace("http", "https")),
                     TEXT, built)


def stays_here(address: str) -> bool:
    """Whether the address fails to parse, or names a socket or a loopback host."""
    try:
        parsed = parse_address(address)
    except ConfigError:
        return True
    return parsed.host is None or parsed.host in ("127.0.0.1", "::1", "localhost")


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(data=st.data(), words=st.lists(st.one_of(st.sampled_from(WORDS), TEXT), max_size=6),
       variables=st.dictionaries(st.sampled_from(VARIABLES), TEXT, max_size=3))
def test_arbitrary_arguments_and_variables_end_in_an_exit_code_never_a_traceback(
        shared_agent, data, words, variables):
    address = data.draw(addresses(shared_agent), label="NOMAD_ADDR")
    assume(stays_here(address))

    result = CliRunner().invoke(app, ["status", *words],
                                env={**variables, "NOMAD_ADDR": address})

    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert "Traceback" not in result.stderr or "-debug" in words
    assert "Error: unexpected" not in result.stderr  # every failure has its diagnosis

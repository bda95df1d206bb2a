"""The resolver: an explicit value beats the NOMAD_* variable, which beats the default;
an empty variable is unset; whatever the environment holds, only ConfigError comes out."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from nomadtls.errors import ConfigError
from nomadtls.settings import BOOL_WORDS, SETTINGS, resolve, setting_named


def test_defaults_apply_when_nothing_is_set():
    settings = resolve({})

    assert settings.address.url == "http://127.0.0.1:4646"
    assert settings.region is None and settings.token is None
    assert settings.skip_verify is False
    assert all(source == "default" for source in settings.sources.values())


def test_every_variable_is_read_and_its_source_remembered():
    environ = {
        "NOMAD_ADDR": "https://10.0.0.5:4646", "NOMAD_REGION": "eu",
        "NOMAD_NAMESPACE": "web", "NOMAD_TOKEN": "secret-token-1",
        "NOMAD_HTTP_AUTH": "ops:pa:ss", "NOMAD_CACERT": "/etc/nomad/ca.pem",
        "NOMAD_CAPATH": "/etc/nomad/cas", "NOMAD_CLIENT_CERT": "/etc/nomad/cli.pem",
        "NOMAD_CLIENT_KEY": "/etc/nomad/cli-key.pem",
        "NOMAD_TLS_SERVER_NAME": "server.eu.nomad", "NOMAD_SKIP_VERIFY": "false",
        "NOMAD_CLI_NO_COLOR": "1", "NOMAD_CLI_FORCE_COLOR": "yes",
    }

    settings = resolve(environ)

    assert settings.address.host == "10.0.0.5" and settings.address.is_tls
    assert (settings.region, settings.namespace) == ("eu", "web")
    assert settings.http_auth == ("ops", "pa:ss")  # split on the first colon only
    assert settings.tls_server_name == "server.eu.nomad"
    assert settings.no_color and settings.force_color and not settings.skip_verify
    assert {s.env for s in SETTINGS} == set(environ)
    for setting in SETTINGS:
        assert settings.source(setting.name) == setting.env


def test_an_argument_beats_the_variable_and_is_labelled_by_origin():
    environ = {"NOMAD_ADDR": "http://from-env:4646", "NOMAD_CACERT": "/env/ca.pem"}

    by_flag = resolve(environ, origin="flag", address="https://from-flag:4646")
    by_argument = resolve(environ, ca_cert="/arg/ca.pem")

    assert by_flag.address.host == "from-flag"
    assert by_flag.label("address") == "-address"
    assert by_flag.label("ca_cert") == "NOMAD_CACERT"
    assert by_argument.ca_cert == "/arg/ca.pem"
    assert by_argument.label("ca_cert") == "ca_cert="


def test_an_explicit_false_beats_a_true_variable():
    settings = resolve({"NOMAD_SKIP_VERIFY": "true"}, skip_verify=False)

    assert settings.skip_verify is False
    assert settings.source("skip_verify") == "argument"


@pytest.mark.parametrize("name", [s.name for s in SETTINGS if s.name != "address"])
def test_an_empty_variable_counts_as_unset(name):
    setting = setting_named(name)

    settings = resolve({setting.env: ""})

    assert settings.source(name) == "default"


def test_an_empty_argument_falls_back_to_the_variable():
    settings = resolve({"NOMAD_REGION": "eu"}, region="")

    assert settings.region == "eu" and settings.source("region") == "NOMAD_REGION"


@pytest.mark.parametrize("word", sorted(BOOL_WORDS))
def test_skip_verify_reads_go_parsebool_spellings(word):
    settings = resolve({"NOMAD_SKIP_VERIFY": word})

    assert settings.skip_verify is BOOL_WORDS[word]
    assert settings.warnings == ()


@pytest.mark.parametrize("value", ["yes", "on", "2", "TRUE!", "ja"])
def test_an_unparseable_skip_verify_keeps_verification_on_and_warns(value):
    settings = resolve({"NOMAD_SKIP_VERIFY": value})

    assert settings.skip_verify is False
    (warning,) = settings.warnings
    assert "NOMAD_SKIP_VERIFY" in warning and "verified" in warning
    assert "true" in warning and "false" in warning  # names the accepted values


def test_an_unparseable_skip_verify_argument_is_an_error():
    with pytest.raises(ConfigError, match="skip_verify= 'nope' is not a boolean"):
        resolve({}, skip_verify="nope")
    assert resolve({}, skip_verify="false").skip_verify is False


@pytest.mark.parametrize("address, url, socket_path", [
    ("http://127.0.0.1:4646", "http://127.0.0.1:4646", None),
    ("https://nomad.example.com", "https://nomad.example.com:443", None),
    ("https://[::1]:4646/", "https://[::1]:4646", None),
    ("unix:/run/nomad/api.sock", "http://localhost", "/run/nomad/api.sock"),
    ("unix:///run/nomad/api.sock", "http://localhost", "/run/nomad/api.sock"),
])
def test_addresses_nomad_accepts(address, url, socket_path):
    parsed = resolve({"NOMAD_ADDR": address}).address

    assert parsed.url == url
    assert parsed.socket_path == socket_path


@pytest.mark.parametrize("address", ["http://exa mple:4646", "http://a..b:4646",
                                     "https://-agent-:4646", "http://[::1:4646"])
def test_an_address_whose_host_cannot_be_reached_is_a_config_error(address):
    with pytest.raises(ConfigError, match="NOMAD_ADDR"):
        resolve({"NOMAD_ADDR": address})


def test_an_address_without_scheme_shows_both_forms():
    with pytest.raises(ConfigError) as caught:
        resolve({"NOMAD_ADDR": "10.0.0.5:4646"})

    assert "NOMAD_ADDR" in caught.value.message
    assert "http://10.0.0.5:4646" in caught.value.hint
    assert "https://10.0.0.5:4646" in caught.value.hint


def test_credentials_in_the_address_become_basic_auth_and_stay_out_of_sight():
    settings = resolve({"NOMAD_ADDR": "https://ops:hunter2@nomad.example:4646"})

    assert settings.http_auth == ("ops", "hunter2")
    assert "hunter2" not in settings.address.url
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.describe())


def test_http_auth_accepts_a_pair_from_a_script():
    assert resolve({}, http_auth=("ops", "pw")).http_auth == ("ops", "pw")
    assert resolve({}, http_auth="ops").http_auth == ("ops", "")


def test_a_client_certificate_needs_its_key():
    with pytest.raises(ConfigError) as caught:
        resolve({"NOMAD_CLIENT_CERT": "/etc/nomad/cli.pem"})

    assert caught.value.message == ("the client certificate '/etc/nomad/cli.pem' "
                                    "(NOMAD_CLIENT_CERT) was given without its key")
    assert "NOMAD_CLIENT_KEY" in caught.value.hint and "-client-key" in caught.value.hint


def test_a_client_key_needs_its_certificate():
    with pytest.raises(ConfigError) as caught:
        resolve({}, origin="flag", client_key="/etc/nomad/cli-key.pem")

    assert "'/etc/nomad/cli-key.pem' (-client-key)" in caught.value.message
    assert "NOMAD_CLIENT_CERT (-client-cert)" in caught.value.hint


def test_a_script_missing_the_key_is_told_the_keyword():
    with pytest.raises(ConfigError) as caught:
        resolve({"NOMAD_ADDR": "https://10.0.0.5:4646"}, client_cert="/etc/nomad/cli.pem")

    assert caught.value.hint == "set client_key= too, or neither"


def test_a_token_read_with_its_newline_is_trimmed():
    assert resolve({"NOMAD_TOKEN": "  a1b2-c3d4\n"}).token == "a1b2-c3d4"


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as caught:
        resolve({"NOMAD_TOKEN": "abc\r\nX-Evil: yes"})

    assert "NOMAD_TOKEN" in caught.value.message
    assert "abc" not in str(caught.value) and "Evil" not in str(caught.value)


def test_settings_spell_the_variable_and_the_flag_for_hints():
    assert setting_named("ca_cert").spelled() == "NOMAD_CACERT (-ca-cert)"
    assert setting_named("tls_server_name").spelled("server.global.nomad") == (
        "NOMAD_TLS_SERVER_NAME=server.global.nomad (-tls-server-name=server.global.nomad)")
    assert setting_named("http_auth").spelled() == "NOMAD_HTTP_AUTH"



def test_hints_spell_a_setting_the_way_the_user_sets_things_up():
    script = resolve({}, address="https://10.0.0.5:4646")
    shell = resolve({"NOMAD_ADDR": "https://10.0.0.5:4646"})
    typed = resolve({}, origin="flag", address="https://10.0.0.5:4646")

    assert script.spelled("address") == "address="
    assert script.spelled("tls_server_name", "server.global.nomad") == (
        "tls_server_name='server.global.nomad'")
    assert shell.spelled("tls_server_name", "server.global.nomad") == (
        "NOMAD_TLS_SERVER_NAME=server.global.nomad "
        "(-tls-server-name=server.global.nomad)")
    assert typed.spelled("ca_cert") == "NOMAD_CACERT (-ca-cert)"


@pytest.mark.parametrize("address, url_host", [
    ("https://10.0.0.5:4646", "10.0.0.5"),
    ("https://[::1]:4646", "[::1]"),
    ("unix:///run/nomad/api.sock", None),
])
def test_the_url_host_brackets_an_ipv6_address(address, url_host):
    assert resolve({}, address=address).address.url_host == url_host


def test_resolved_settings_are_frozen_values():
    settings = resolve({"NOMAD_ADDR": "https://10.0.0.5:4646", "NOMAD_TOKEN": "t-1"})

    with pytest.raises(AttributeError):
        settings.skip_verify = True
    with pytest.raises(AttributeError):
        settings.address.port = 80
    assert settings == resolve({"NOMAD_ADDR": "https://10.0.0.5:4646", "NOMAD_TOKEN": "t-1"})
    assert settings != resolve({"NOMAD_ADDR": "https://10.0.0.5:4646", "NOMAD_TOKEN": "t-2"})
    assert hash(settings.address) == hash(resolve({"NOMAD_ADDR": "https://10.0.0.5:4646/"}).address)
    assert copy.deepcopy(settings) == settings
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_replace_makes_a_copy_with_other_values():
    settings = resolve({"NOMAD_REGION": "eu"})

    changed = settings.replace(skip_verify=True, region="us")

    assert (changed.skip_verify, changed.region) == (True, "us")
    assert (settings.skip_verify, settings.region) == (False, "eu")
    assert changed.sources is settings.sources
    with pytest.raises(TypeError, match="no field"):
        settings.replace(regions="us")


def test_the_repr_names_the_fields_but_no_secret():
    settings = resolve({"NOMAD_ADDR": "https://ops:hunter2@nomad.example:4646",
                        "NOMAD_TOKEN": "secret-token-1", "NOMAD_REGION": "eu"})

    assert repr(settings).startswith(
        "Settings(address=Address(scheme='https', url='https://nomad.example:4646', "
        "host='nomad.example', port=4646, socket_path=None), region='eu', ")
    assert "secret-token-1" not in repr(settings) and "ops" not in repr(settings)
    assert repr(setting_named("region")) == (
        "Setting(name='region', env='NOMAD_REGION', flag='-region', kind='text', "
        "help='Region to send requests to; the agent forwards them there.', "
        "default=\"the agent's own region\")")

# Arbitrary text, as a shell can put it in a variable (no NUL byte).
_env_text = st.text(st.characters(exclude_characters="\x00"), max_size=40)


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([s.env for s in SETTINGS]), _env_text))
def test_any_environment_resolves_or_raises_config_error(environ):
    try:
        settings = resolve(environ)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert settings.address.scheme in ("http", "https", "unix")
    for setting in SETTINGS:
        raw = environ.get(setting.env, "")
        if raw == "":
            assert settings.source(setting.name) != setting.env


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.sampled_from([s for s in SETTINGS if s.kind in ("text", "path")]),
       st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
               min_size=1, max_size=20).filter(str.strip),
       st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
               min_size=1, max_size=20).filter(str.strip))
def test_a_flag_beats_the_variable_whatever_their_values(setting, flag_value, env_value):
    if setting.name == "address":
        flag_value, env_value = f"http://flag{len(flag_value)}", f"http://env{len(env_value)}"
    elif setting.name == "tls_server_name":  # a name a certificate can hold
        flag_value, env_value = f"flag{len(flag_value)}.nomad", f"env{len(env_value)}.nomad"

    environ = {setting.env: env_value}
    if setting.name in ("client_cert", "client_key"):  # one needs the other
        environ.update(NOMAD_CLIENT_CERT="/c.pem", NOMAD_CLIENT_KEY="/k.pem")
        environ[setting.env] = env_value

    settings = resolve(environ, origin="flag", **{setting.name: flag_value})

    assert settings.source(setting.name) == "flag"
    value = getattr(settings, setting.name)
    if setting.name == "address":
        assert value.host.startswith("flag")
    elif setting.kind == "text":
        assert value == flag_value

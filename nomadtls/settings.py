"""The connection settings: one registry describing each of them, and the resolver that
reads an explicit value, then the NOMAD_* environment variable, then the default.

This module imports nothing heavier than the standard library: the CLI builds its help
text from `SETTINGS` without paying for requests or cryptography.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

__all__ = ["Setting", "SETTINGS", "Address", "Settings", "resolve", "parse_bool", "BOOL_WORDS",
           "setting_named"]

# The spellings Go's strconv.ParseBool accepts, which is how Nomad reads NOMAD_SKIP_VERIFY.
BOOL_WORDS: dict[str, bool] = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}

DEFAULT_ADDRESS = "http://127.0.0.1:4646"


class _Record:
    """A frozen record: its fields are its `__slots__`, in the order `__init__` takes them;
    records of one class are equal when every field is, and hash alike.

    The three records below are plain classes rather than frozen dataclasses because this
    module loads on every start of the CLI, help included, and generating a dataclass's
    methods costs each start about two milliseconds per class.
    """

    __slots__ = ()
    _hidden: frozenset[str] = frozenset()  # fields left out of the repr: secrets

    def _assign(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def replace(self, **changes: Any) -> Any:
        """A copy of this record with the fields named in `changes` set to new values."""
        fields = dict(zip(self.__slots__, self._fields()))
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) "
                            f"{', '.join(sorted(unknown))}")
        return type(self)(**{**fields, **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is "
                             "frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is "
                             "frozen")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle, despite __setattr__
        return type(self), self._fields()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                          if name not in self._hidden)
        return f"{type(self).__name__}({shown})"


class Setting(_Record):
    """One connection setting as a script, a shell and the command line each name it.

    `kind` is "text", "path", "secret" (never shown), "bool" (Go's ParseBool spellings)
    or "flag" (any non-empty value means on). `default` is what applies when nothing is
    set, in words for the help text.
    """

    __slots__ = ("name", "env", "flag", "kind", "help", "default")
    name: str
    env: str
    flag: str | None
    kind: str
    help: str
    default: str | None

    def __init__(self, name: str, env: str, flag: str | None, kind: str, help: str,
                 default: str | None = None) -> None:
        self._assign(name=name, env=env, flag=flag, kind=kind, help=help, default=default)

    def spelled(self, value: str | None = None) -> str:
        """How a user sets this: the variable and the flag, with `value` when given.

        "NOMAD_CACERT (-ca-cert)", or "NOMAD_TLS_SERVER_NAME=server.global.nomad
        (-tls-server-name=server.global.nomad)". Hints use it so that a shell user and a
        CLI user each read their own spelling.
        """
        if value is None:
            return f"{self.env} ({self.flag})" if self.flag else self.env
        if self.flag:
            return f"{self.env}={value} ({self.flag}={value})"
        return f"{self.env}={value}"


SETTINGS: tuple[Setting, ...] = (
    Setting("address", "NOMAD_ADDR", "-address", "text",
            "Address of the Nomad agent: http://host:port, https://host:port, or "
            "unix:///path/to/api.sock.", DEFAULT_ADDRESS),
    Setting("region", "NOMAD_REGION", "-region", "text",
            "Region to send requests to; the agent forwards them there.",
            "the agent's own region"),
    Setting("namespace", "NOMAD_NAMESPACE", "-namespace", "text",
            "Namespace to act in; '*' lists every namespace.", "default"),
    Setting("token", "NOMAD_TOKEN", "-token", "secret",
            "ACL token (its SecretID), sent as the X-Nomad-Token header.", "none"),
    Setting("http_auth", "NOMAD_HTTP_AUTH", None, "secret",
            "Basic auth for a proxy in front of the agent: user:password, or user alone.",
            "none"),
    Setting("ca_cert", "NOMAD_CACERT", "-ca-cert", "path",
            "PEM file of CA certificates that signed the agent's certificate; it replaces "
            "the default roots.", "certifi's public roots"),
    Setting("ca_path", "NOMAD_CAPATH", "-ca-path", "path",
            "Directory of PEM CA files, read recursively; ignored when a CA file is set.",
            "none"),
    Setting("client_cert", "NOMAD_CLIENT_CERT", "-client-cert", "path",
            "PEM client certificate, for agents that verify clients "
            "(verify_https_client); needs the client key.", "none"),
    Setting("client_key", "NOMAD_CLIENT_KEY", "-client-key", "path",
            "Unencrypted PEM key of the client certificate.", "none"),
    Setting("tls_server_name", "NOMAD_TLS_SERVER_NAME", "-tls-server-name", "text",
            "Name sent as SNI and checked against the agent's certificate, such as "
            "server.global.nomad when the address is an IP.", "the address's host"),
    Setting("skip_verify", "NOMAD_SKIP_VERIFY", "-tls-skip-verify", "bool",
            "Skip verification of the agent's certificate (unsafe): true or false.",
            "false"),
    Setting("no_color", "NOMAD_CLI_NO_COLOR", "-no-color", "flag",
            "Disable colour in the output; wins over forcing it.", "off"),
    Setting("force_color", "NOMAD_CLI_FORCE_COLOR", "-force-color", "flag",
            "Use colour even when the output is not a terminal.", "off"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def setting_named(name: str) -> Setting:
    """The registry entry for the keyword `name` ("ca_cert"); KeyError for an unknown one."""
    return _BY_NAME[name]


def parse_bool(text: str) -> bool | None:
    """Read `text` as Go's ParseBool does; None for anything it would refuse."""
    return BOOL_WORDS.get(text)


class Address(_Record):
    """A parsed agent address. Credentials found in it are kept apart, never in `url`, and
    out of the repr."""

    __slots__ = ("scheme", "url", "host", "port", "socket_path", "username", "password")
    _hidden = frozenset({"username", "password"})
    scheme: str  # "http", "https" or "unix"
    url: str  # the base URL requests go to: "https://10.0.0.5:4646"; "http://localhost" for unix
    host: str | None  # the host as written (an IP or a name), None for unix
    port: int | None
    socket_path: str | None
    username: str | None
    password: str | None

    def __init__(self, scheme: str, url: str, host: str | None = None, port: int | None = None,
                 socket_path: str | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self._assign(scheme=scheme, url=url, host=host, port=port, socket_path=socket_path,
                     username=username, password=password)

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    @property
    def url_host(self) -> str | None:
        """The host as a URL writes it, an IPv6 address in brackets; None for unix."""
        if self.host is None:
            return None
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.socket_path}"
        return self.url


def parse_address(text: str, origin: str = "the address") -> Address:
    """Parse an agent address as Nomad accepts it, with errors that show the fix.

    `origin` names where the text came from (NOMAD_ADDR, -address) for the messages.
    """
    text = text.strip()
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise ConfigError(
                f"{origin} {text!r} does not name a socket by its absolute path",
                hint="write unix:///path/to/api.sock")
        return Address("unix", "http://localhost", socket_path=path)

    if "://" not in text:
        shown = text or "host:4646"
        raise ConfigError(
            f"{origin} {_mask(text)!r} has no scheme",
            hint=f"write http://{_mask(shown)} for a plain agent or https://{_mask(shown)} "
                 "for one with TLS")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{origin} {_mask(text)!r} cannot be parsed: {exc}",
                          hint="write it as http://host:port or https://host:port") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"{origin} {_mask(text)!r} has the unknown scheme {parts.scheme!r}",
            hint="use http://, https:// or unix://")
    host = parts.hostname
    if not host:
        raise ConfigError(f"{origin} {_mask(text)!r} names no host",
                          hint="write it as http://host:port or https://host:port")
    if not _is_host(host):
        raise ConfigError(f"{origin} {_mask(text)!r} names the host {host!r}, which is "
                          "neither an IP address nor a DNS name",
                          hint="write it as http://host:port or https://host:port")
    if port is None:
        port = 443 if scheme == "https" else 80
    shown_host = f"[{host}]" if ":" in host else host
    base = f"{scheme}://{shown_host}:{port}{parts.path.rstrip('/')}"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Address(scheme, base, host=host, port=port,
                   username=username, password=password)


def _is_host(host: str) -> bool:
    """Whether `host` can be connected to: an IP address, or a name whose labels are
    1 to 63 letters, digits, hyphens or underscores (after IDNA for a non-ASCII name)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return all(_LABEL.fullmatch(label) for label in labels)


_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _mask(text: str) -> str:
    """The address with any password replaced, fit for a message."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return text
    user = userinfo.split(":", 1)[0]
    masked = f"{user}:***@{hostpart}" if ":" in userinfo else f"{user}@{hostpart}"
    return f"{scheme}{sep}{masked}"


class Settings(_Record):
    """Resolved settings. `sources` maps each setting's name to where its value came from:
    "argument", "flag", a variable's name such as "NOMAD_ADDR", or "default".

    Secrets (`token`, `http_auth`, the address's password) stay out of the repr, and so do
    `sources` and `warnings`. `replace(**changes)` makes a copy with other values.
    """

    __slots__ = ("address", "region", "namespace", "token", "http_auth", "ca_cert",
                 "ca_path", "client_cert", "client_key", "tls_server_name", "skip_verify",
                 "no_color", "force_color", "sources", "warnings")
    _hidden = frozenset({"token", "http_auth", "sources", "warnings"})
    address: Address
    region: str | None
    namespace: str | None
    token: str | None
    http_auth: tuple[str, str] | None
    ca_cert: str | None
    ca_path: str | None
    client_cert: str | None
    client_key: str | None
    tls_server_name: str | None
    skip_verify: bool
    no_color: bool
    force_color: bool
    sources: Mapping[str, str]
    warnings: tuple[str, ...]

    def __init__(self, address: Address, region: str | None = None,
                 namespace: str | None = None, token: str | None = None,
                 http_auth: tuple[str, str] | None = None, ca_cert: str | None = None,
                 ca_path: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None, tls_server_name: str | None = None,
                 skip_verify: bool = False, no_color: bool = False, force_color: bool = False,
                 sources: Mapping[str, str] | None = None, warnings: tuple[str, ...] = ()
                 ) -> None:
        self._assign(address=address, region=region, namespace=namespace, token=token,
                     http_auth=http_auth, ca_cert=ca_cert, ca_path=ca_path,
                     client_cert=client_cert, client_key=client_key,
                     tls_server_name=tls_server_name, skip_verify=skip_verify,
                     no_color=no_color, force_color=force_color,
                     sources={} if sources is None else sources, warnings=warnings)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def label(self, name: str) -> str:
        """Where the value of `name` came from, as a message names it: "NOMAD_CACERT",
        "-ca-cert" (a CLI flag), "ca_cert=" (a keyword argument) or "the default ca_cert".
        """
        return _origin_label(name, self.source(name))

    def spelled(self, name: str, value: str | None = None) -> str:
        """How a hint tells the user to change `name`, in the way they set things up.

        A script that passed the setting (or, for a setting left at its default, the
        address) as a keyword argument reads "ca_cert=" or "tls_server_name='x'"; anyone
        else reads the variable and the flag, as `Setting.spelled` gives them.
        """
        source = self.source(name)
        if source == "default":
            source = self.source("address")
        return _spelled(name, source, value)

    def describe(self) -> list[tuple[Setting, str, str]]:
        """Each setting with its value as it may be shown, and where it came from.

        Secrets are shown only as "set" or "unset".
        """
        rows = []
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.kind == "secret":
                shown = "set" if value else "unset"
            elif isinstance(value, bool):
                shown = "true" if value else "false"
            elif value is None:
                shown = f"(unset: {setting.default})" if setting.default else "(unset)"
            else:
                shown = str(value)
            rows.append((setting, shown, self.source(setting.name)))
        return rows


def _split_auth(value: str | tuple[str, str]) -> tuple[str, str]:
    """Basic-auth credentials from "user:password" (split on the first colon), "user", or
    an already split (user, password) pair."""
    if isinstance(value, tuple):
        user, password = value
        return str(user), str(password)
    user, _, password = value.partition(":")
    return user, password


def resolve(environ: Mapping[str, str] | None = None, *, origin: str = "argument",
            **given: Any) -> Settings:
    """Resolve every setting: a value in `given` (not None, not empty), then the
    environment variable (`environ`, by default os.environ, read now), then the default.

    `origin` is recorded as the source of the given values: "argument" for a script,
    "flag" for the CLI. Raises ConfigError for a setting that cannot work.
    """
    unknown = set(given) - set(_BY_NAME)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    warnings: list[str] = []

    for setting in SETTINGS:
        value = given.get(setting.name)
        if value is not None and value != "":
            if setting.kind == "bool" and isinstance(value, str):
                value = _given_bool(setting, value, origin)
            elif setting.kind in ("bool", "flag"):
                value = bool(value)
            elif setting.kind == "path":
                value = os.path.expanduser(os.fspath(value))
            values[setting.name] = value
            sources[setting.name] = origin
            continue
        raw = env.get(setting.env, "")
        if raw == "":
            sources[setting.name] = "default"
            continue
        if setting.kind == "bool":
            parsed = parse_bool(raw.strip())
            if parsed is None:
                shown = raw if len(raw) <= 20 else raw[:17] + "..."
                warnings.append(
                    f"{setting.env}={shown!r} is not a boolean, so certificates are "
                    f"verified; use one of {', '.join(BOOL_WORDS)}")
                sources[setting.name] = "default"
                continue
            value = parsed
        elif setting.kind == "flag":
            value = True
        elif setting.kind == "path":
            value = os.path.expanduser(raw)
        else:
            value = raw
        values[setting.name] = value
        sources[setting.name] = setting.env

    if "token" in values:
        values["token"] = _check_token(values["token"], sources["token"])
    for name in ("region", "namespace", "tls_server_name"):
        if name in values:
            _check_utf8(name, values[name], sources[name])
    server_name = values.get("tls_server_name")
    if server_name is not None and not _is_host(server_name):
        raise ConfigError(
            f"{_origin_label('tls_server_name', sources['tls_server_name'])} "
            f"{server_name!r} is neither a DNS name nor an IP address",
            hint="give a name the agent's certificate holds, such as server.global.nomad")

    address_origin = _origin_label("address", sources["address"])
    address = parse_address(values.get("address", DEFAULT_ADDRESS), address_origin)
    http_auth = _split_auth(values["http_auth"]) if "http_auth" in values else None
    if address.username is not None:
        http_auth = (address.username, address.password or "")
        sources["http_auth"] = sources["address"]
    if http_auth is not None:
        _check_utf8("http_auth", http_auth, sources["http_auth"])

    cert, key = values.get("client_cert"), values.get("client_key")
    if bool(cert) != bool(key):
        have, missing = ("client_cert", "client_key") if cert else ("client_key", "client_cert")
        raise ConfigError(
            f"the client {'certificate' if cert else 'key'} {cert or key!r} "
            f"({_origin_label(have, sources[have])}) was given without its "
            f"{'key' if cert else 'certificate'}",
            hint=f"set {_spelled(missing, sources[have])} too, or neither")

    return Settings(address=address,
                    region=values.get("region"),
                    namespace=values.get("namespace"),
                    token=values.get("token"),
                    http_auth=http_auth,
                    ca_cert=values.get("ca_cert"),
                    ca_path=values.get("ca_path"),
                    client_cert=cert,
                    client_key=key,
                    tls_server_name=values.get("tls_server_name"),
                    skip_verify=values.get("skip_verify", False),
                    no_color=values.get("no_color", False),
                    force_color=values.get("force_color", False),
                    sources=sources,
                    warnings=tuple(warnings))


def _check_token(token: str, source: str) -> str:
    """The token without surrounding whitespace (a file read with its newline); one that
    could not travel in a header is an error that does not show it."""
    token = str(token).strip()
    if not token or not all("!" <= char <= "~" for char in token):
        raise ConfigError(
            f"the ACL token from {_origin_label('token', source)} holds a space, a line "
            "break or a character outside printable ASCII",
            hint="a token is its SecretID, such as 3f0c2f9e-...: check what was copied")
    return token


def _check_utf8(name: str, value: Any, source: str) -> None:
    """Refuse a value that holds bytes which are not UTF-8 (a variable set from such bytes
    reaches Python as lone surrogates): no header, query or server name can carry it.
    The value is not shown, as it may be a password."""
    texts = value if isinstance(value, tuple) else (value,)
    try:
        for text in texts:
            str(text).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{_origin_label(name, source)} holds bytes that are not UTF-8 "
                          "text", hint="set it again as plain text") from None


def _given_bool(setting: Setting, text: str, origin: str) -> bool:
    """A boolean given as text (skip_verify="false"): Go's spellings, else ConfigError.

    Unlike the variable, which is ignored with a warning as Nomad ignores it, a value given
    on purpose that means nothing is an error: guessing could switch verification off.
    """
    parsed = parse_bool(text.strip())
    if parsed is None:
        raise ConfigError(
            f"{_origin_label(setting.name, origin)} {text!r} is not a boolean",
            hint=f"use one of {', '.join(BOOL_WORDS)}")
    return parsed


def _spelled(name: str, source: str, value: str | None = None) -> str:
    """`name` as a hint spells it for a user who sets things through `source`: the
    keyword for a script ("argument"), else the variable and the flag."""
    if source == "argument":
        return f"{name}=" if value is None else f"{name}={value!r}"
    return _BY_NAME[name].spelled(value)


def _origin_label(name: str, source: str) -> str:
    """How to name the origin of a setting in a message: "NOMAD_ADDR", "-address"..."""
    setting = _BY_NAME[name]
    if source == "flag":
        return setting.flag or setting.env
    if source == "argument":
        return f"{name}="
    if source == "default":
        return f"the default {name}"
    return source

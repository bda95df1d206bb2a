"""Turn what requests, urllib3 and ssl raise, and the agent's error answers, into the
errors of `nomadtls.errors`: one line saying what failed, and a hint naming the variable
and flag to change.

When the first error leaves the cause open (a reset, an EOF, a failed name check) the
diagnosis takes a second, unverified look at the agent: a TLS handshake with the same
server name, or a plain HTTP request, and reads the certificate it is shown.
"""

from __future__ import annotations

import datetime as _dt
import errno
import http.client
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Iterator, Mapping
from urllib.parse import urlsplit

import requests

from . import errors
from ._peer import (CertificateSummary, connect, handshake, server_name, server_name_origin,
                    unverified_context)
from .settings import Settings

__all__ = ["Call", "translate", "api_error", "not_json", "retryable", "nothing_sent",
           "refused", "suggest_server_name", "scrub"]

log = logging.getLogger(__name__)

# What Go's TLS listener answers to plain HTTP.
GO_PLAINTEXT_REPLY = "Client sent an HTTP request to an HTTPS server."
# What Go's HTTP server answers for a path that no route serves.
GO_NO_ROUTE = "404 page not found"

# OpenSSL reasons when the other end does not speak TLS at all.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
            "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "RECORD_TOO_LARGE")

# Alerts an agent sends when it wants a client certificate or refuses the one it got.
_CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "HANDSHAKE_FAILURE",
                       "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "CERTIFICATE_EXPIRED",
                       "CERTIFICATE_REVOKED", "ACCESS_DENIED", "DECRYPT_ERROR",
                       "UNSUPPORTED_CERTIFICATE")

# OpenSSL's X509_V_ERR codes that the diagnosis tells apart.
_NOT_YET_VALID, _EXPIRED = 9, 10
_NAME_MISMATCH = (62, 64)  # hostname, IP address
_UNKNOWN_ISSUER = (2, 18, 19, 20, 21)

# The longest piece of an agent's answer quoted in a message.
_QUOTE = 200


@dataclass(frozen=True)
class Call:
    """The request that failed, as the diagnosis needs it: never with query or body."""

    settings: Settings
    method: str
    path: str
    timeout: tuple[float, float]
    attempts: int = 1

    @property
    def where(self) -> str:
        """The agent's address and where it came from: "https://10.0.0.5:4646 (NOMAD_ADDR)"."""
        return f"{self.settings.address} ({self.settings.label('address')})"

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}"

    def retried(self) -> str:
        if self.attempts <= 1:
            return ""
        return f" (tried {self.attempts} times)"


def _address_hint(settings: Settings, url: str | None = None, verb: str = "check"
                  ) -> str:
    return f"{verb} {settings.spelled('address', url)}"


# ---------------------------------------------------------------- the exception chain

def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps: arguments, urllib3's `reason`, causes."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            inner.append(reason)
        inner += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo.extend(inner)


def _first(exc: BaseException, kind: type) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else str(exc).upper().replace(" ", "_")


def _is_ssl_failure(error: BaseException) -> bool:
    """Whether `error` is one of ssl's own failures, not the connection closing under it."""
    return isinstance(error, ssl.SSLError) and not isinstance(
        error, (ssl.SSLEOFError, ssl.SSLZeroReturnError))


def _is_not_tls(error: BaseException) -> bool:
    return any(marker in _ssl_reason(error) for marker in _NOT_TLS)


def _client_cert_alert(error: BaseException) -> str | None:
    """The alert's name in words when `error` is a remote alert about client certificates."""
    reason = _ssl_reason(error)
    if "ALERT" not in reason:
        return None
    for alert in _CLIENT_CERT_ALERTS:
        if alert in reason:
            return alert.lower().replace("_", " ")
    return None


def _is_eof(exc: BaseException) -> bool:
    for error in _chain(exc):
        if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                              http.client.RemoteDisconnected, ConnectionResetError,
                              ConnectionAbortedError, BrokenPipeError,
                              http.client.IncompleteRead)):
            return True
        if isinstance(error, ssl.SSLError) and "UNEXPECTED_EOF" in _ssl_reason(error):
            return True
    return False


def _definite_tls_failure(exc: BaseException) -> bool:
    """True when trying again cannot help: verification failed, an alert, not TLS."""
    if _first(exc, ssl.SSLCertVerificationError) is not None:
        return True
    return any(_is_ssl_failure(error) and ("ALERT" in _ssl_reason(error) or _is_not_tls(error))
               for error in _chain(exc))


def nothing_sent(exc: BaseException) -> bool:
    """True when the connection was never made, so the agent cannot have seen the request:
    even a write may then be tried again."""
    from urllib3.exceptions import NewConnectionError

    return _first(exc, NewConnectionError) is not None


def _os_error(exc: BaseException) -> OSError | None:
    """The operating system's own error in the chain (not ssl's), or None."""
    return next((e for e in _chain(exc) if isinstance(e, OSError)
                 and not isinstance(e, ssl.SSLError) and e.errno is not None), None)


def refused(exc: BaseException) -> bool:
    """True when nothing accepted the connection: the port or the socket file is there,
    but no agent listens on it."""
    error = _os_error(exc) if nothing_sent(exc) else None
    return getattr(error, "errno", None) == errno.ECONNREFUSED


def retryable(exc: BaseException) -> bool:
    """Whether a failed read is worth another try: a refused, reset or dropped connection.

    Timeouts are not retried (each try would wait the full time again), nor failures that
    the next try would meet the same way: a missing socket file, an unknown host name, a
    certificate that does not verify, a TLS alert.
    """
    if isinstance(exc, requests.Timeout) or not isinstance(exc, requests.ConnectionError):
        return False
    if _definite_tls_failure(exc):
        return False
    if _first(exc, FileNotFoundError) is not None or _first(exc, socket.gaierror) is not None:
        return False
    return True


# ---------------------------------------------------------------- transport failures

def translate(exc: BaseException, call: Call) -> errors.NomadError:
    """The NomadError for an exception raised while `call` was made."""
    settings = call.settings
    address = settings.address
    verify_error = _first(exc, ssl.SSLCertVerificationError)
    if verify_error is not None:
        return _verification_failure(verify_error, call)

    for error in _chain(exc):
        if _is_ssl_failure(error):
            if _is_not_tls(error):
                return _https_at_plain_port(call)
            alert = _client_cert_alert(error)
            if alert is not None:
                return _client_certificate(call, alert)
            if "PROTOCOL_VERSION" in _ssl_reason(error):
                return errors.TLSError(
                    f"the agent at {call.where} offers no TLS version this client accepts "
                    "(1.2 or later)", hint="configure the agent for TLS 1.2 or 1.3")
            return errors.TLSError(
                f"the TLS connection to {call.where} failed: {_words(error)}",
                hint="check the agent's TLS settings and "
                     f"{settings.spelled('ca_cert')}")

    if address.scheme == "http" and _first(exc, http.client.BadStatusLine) is not None:
        # A TLS alert record (\x15\x03...) where a status line should be.
        if "\\x15\\x03" in str(exc) or _speaks_tls(call):
            return _http_at_tls_port(call)

    if any("handshake operation timed out" in str(e) for e in _chain(exc)):
        if _answers_plain_http(call):
            return _https_at_plain_port(call)
        return errors.ConnectTimeout(
            f"the agent at {call.where} did not complete the TLS handshake within "
            f"{call.timeout[0]:g} s", hint=_address_hint(settings))

    if isinstance(exc, requests.ConnectTimeout):
        return errors.ConnectTimeout(
            f"no connection to {call.where} within {call.timeout[0]:g} s",
            hint=f"check the address ({settings.spelled('address')}) and that no "
                 "firewall drops the port, or allow a longer connect timeout")
    if isinstance(exc, requests.ReadTimeout):
        return errors.ReadTimeout(
            f"the agent at {call.where} did not answer {call.what} within "
            f"{call.timeout[1]:g} s",
            hint="the agent may be overloaded or stuck; try again, or allow a longer "
                 "read timeout")

    unconnected = _connect_failure(exc, call)
    if unconnected is not None:
        return unconnected

    if _is_eof(exc):
        return _dropped(exc, call)
    return errors.TransportError(
        f"{call.what} to {call.where} failed: {scrub(_words(exc), settings)}",
        hint=_address_hint(settings) if address.scheme != "unix" else None)


def _connect_failure(exc: BaseException, call: Call) -> errors.NomadError | None:
    """The error for a connection that could not be made at all, or None."""
    settings = call.settings
    address = settings.address
    if not nothing_sent(exc):
        return None
    os_error = _os_error(exc)
    code = getattr(os_error, "errno", None)
    hint = _address_hint(settings)

    if address.scheme == "unix":
        path = address.socket_path
        if code == errno.ENOENT:
            return errors.ConnectError(
                f"there is no unix socket at {path} ({call.settings.label('address')})",
                hint=f"check the path in {settings.spelled('address')}")
        if code in (errno.EACCES, errno.EPERM):
            return errors.ConnectError(
                f"no permission to use the unix socket {path}",
                hint="run as a user that may open the socket")
        return errors.ConnectError(
            f"nothing is listening on the unix socket {path} "
            f"({call.settings.label('address')})",
            hint="start the agent; the socket file may be left over from a stopped one")

    if isinstance(os_error, socket.gaierror):
        return errors.ConnectError(
            f"the host {address.host!r} of {call.where} cannot be resolved", hint=hint)
    if code == errno.ECONNREFUSED:
        return errors.ConnectError(
            f"nothing is listening at {call.where}: connection refused{call.retried()}",
            hint=f"start the agent, or point {settings.spelled('address')} at one "
                 "that runs")
    reason = os_error.strerror if os_error is not None and os_error.strerror else "failed"
    return errors.ConnectError(
        f"cannot connect to {call.where}: {reason.lower()}{call.retried()}", hint=hint)


def _dropped(exc: BaseException, call: Call) -> errors.NomadError:
    """A connection closed without an answer: a drop, or a protocol the client did not
    expect. A second look tells them apart."""
    settings = call.settings
    if settings.address.scheme == "http":
        if _speaks_tls(call):
            return _http_at_tls_port(call)
    elif settings.address.scheme == "https":
        _, probe_error = _handshake(call, tls12_only=True)
        if probe_error is not None:
            if _is_not_tls(probe_error):
                return _https_at_plain_port(call)
            alert = _client_cert_alert(probe_error)
            if alert is not None:
                return _client_certificate(call, alert)
    return errors.ConnectError(
        f"the agent at {call.where} closed the connection without answering "
        f"{call.what}{call.retried()}",
        hint="the agent may be restarting or overloaded; check its log")


# ---------------------------------------------------------------- TLS failures

def _verification_failure(error: ssl.SSLCertVerificationError, call: Call) -> errors.TLSError:
    settings = call.settings
    code = getattr(error, "verify_code", None)
    der, _ = _handshake(call)
    leaf = _summary(der)

    if code in _NAME_MISMATCH:
        return _name_mismatch(call, leaf)
    if code in (_EXPIRED, _NOT_YET_VALID):
        return _expired(call, leaf, code)
    if code in _UNKNOWN_ISSUER:
        issuer = leaf and (leaf.issuer_common_name or leaf.issuer)
        issuer = f" (issued by {issuer!r})" if issuer else ""
        return errors.UnknownAuthority(
            f"the agent's certificate{issuer} is not signed by a CA this client trusts "
            f"({_trusted(settings)})",
            hint=f"set {settings.spelled('ca_cert')} to the PEM file of the CA that "
                 "signed it (nomad-agent-ca.pem)")
    message = getattr(error, "verify_message", None) or _words(error)
    return errors.TLSError(
        f"the agent's certificate at {call.where} failed verification: {message}",
        hint=f"check {settings.spelled('ca_cert')}")


def _trusted(settings: Settings) -> str:
    if settings.ca_cert:
        return f"the CA file {settings.ca_cert} from {settings.label('ca_cert')}"
    if settings.ca_path:
        return f"the CA directory {settings.ca_path} from {settings.label('ca_path')}"
    return "certifi's public roots, as no CA file is set"


def _name_mismatch(call: Call, leaf: CertificateSummary | None
                   ) -> errors.ServerNameMismatch:
    settings = call.settings
    checked = server_name(settings) or "localhost"
    origin = server_name_origin(settings)
    if leaf is None or not leaf.names:
        return errors.ServerNameMismatch(
            f"the agent's certificate is not valid for {checked!r} ({origin})",
            hint=f"set {settings.spelled('tls_server_name')} to a name the certificate holds",
            checked=checked)
    suggestion = suggest_server_name(leaf.names, settings.region)
    if suggestion is not None and suggestion != checked:
        hint = f"set {settings.spelled('tls_server_name', suggestion)}"
    else:
        hint = f"connect with a name or address the certificate holds: {', '.join(leaf.names)}"
    return errors.ServerNameMismatch(
        f"the agent's certificate is valid for {', '.join(leaf.names)}, "
        f"not {checked!r} ({origin})",
        hint=hint, names=tuple(leaf.names), checked=checked)


def suggest_server_name(names: list[str] | tuple[str, ...],
                        region: str | None = None) -> str | None:
    """The name to check when connecting by address: server.<region>.nomad when the
    certificate holds it, else another server.* name, else its first DNS name other
    than localhost."""
    dns = [name for name in names if not _is_ip(name)]
    preferred = f"server.{region or 'global'}.nomad"
    if preferred in dns:
        return preferred
    servers = [name for name in dns if name.startswith("server.")]
    if servers:
        return servers[0]
    others = [name for name in dns if name != "localhost" and "*" not in name]
    return others[0] if others else None


def _expired(call: Call, leaf: CertificateSummary | None, code: int
             ) -> errors.CertificateExpired:
    now = _dt.datetime.now(_dt.timezone.utc)
    if leaf is not None and code == _EXPIRED and leaf.not_after < now:
        return errors.CertificateExpired(
            f"the agent's certificate expired on {_when(leaf.not_after)}",
            hint="the agent needs a renewed certificate; if it is new, check this "
                 "machine's clock")
    if leaf is not None and code == _NOT_YET_VALID and leaf.not_before > now:
        return errors.CertificateExpired(
            f"the agent's certificate is not valid before {_when(leaf.not_before)}",
            hint="check this machine's clock")
    late = "has expired" if code == _EXPIRED else "is not valid yet"
    return errors.CertificateExpired(
        f"a CA certificate in the agent's chain {late}",
        hint=f"renew the CA, then {call.settings.spelled('ca_cert')}")


def _when(moment: _dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _client_certificate(call: Call, alert: str) -> errors.TLSError:
    settings = call.settings
    if settings.client_cert:
        return errors.ClientCertificateRejected(
            f"the agent at {call.where} refused the client certificate "
            f"{settings.client_cert!r} ({settings.label('client_cert')}): {alert}",
            hint=f"use a client certificate signed by the agent's CA, in "
                 f"{settings.spelled('client_cert')} with its key in "
                 f"{settings.spelled('client_key')}")
    return errors.ClientCertificateRequired(
        f"the agent at {call.where} demands a client certificate and none was given",
        hint=f"set {settings.spelled('client_cert')} and {settings.spelled('client_key')} "
             "to a certificate and key signed by the agent's CA; skipping verification "
             "does not replace them")


def _https_at_plain_port(call: Call) -> errors.ProtocolMismatch:
    return _wrong_scheme(call, "https", "http", "speaks plain HTTP, not TLS")


def _http_at_tls_port(call: Call) -> errors.ProtocolMismatch:
    return _wrong_scheme(call, "http", "https", "speaks TLS, so http:// cannot reach it")


def _wrong_scheme(call: Call, used: str, right: str, finding: str) -> errors.ProtocolMismatch:
    fixed = call.settings.address.url.replace(f"{used}://", f"{right}://", 1)
    return errors.ProtocolMismatch(
        f"the agent at {call.where} {finding}",
        hint=_address_hint(call.settings, fixed, verb=f"use {right}://: set"))


# ---------------------------------------------------------------- second looks

def _summary(der: bytes | None) -> CertificateSummary | None:
    """The agent's certificate, read from a second look; None when there is none to read."""
    try:
        return CertificateSummary.from_der(der) if der else None
    except ValueError:
        return None


def _probe_timeout(call: Call) -> float:
    return min(call.timeout[0], 5.0)


def _handshake(call: Call, *, tls12_only: bool = False
               ) -> tuple[bytes | None, BaseException | None]:
    """An unverified TLS handshake with the agent, with the same server name and client
    certificate: the agent's certificate (DER), or the error the handshake met."""
    settings = call.settings
    if settings.address.host is None:
        return None, None
    try:
        context = unverified_context(settings, tls12_only=tls12_only)
        with connect(settings, _probe_timeout(call)) as raw:
            with handshake(settings, raw, context) as tls:
                return tls.getpeercert(binary_form=True), None
    except (OSError, ValueError) as exc:
        log.debug("second TLS handshake with %s: %s", settings.address, exc)
        return None, exc


def _speaks_tls(call: Call) -> bool:
    der, error = _handshake(call)
    if der is not None:
        return True
    return _is_ssl_failure(error) and not _is_not_tls(error)


def _answers_plain_http(call: Call) -> bool:
    address = call.settings.address
    if address.host is None:
        return False
    try:
        with connect(call.settings, _probe_timeout(call)) as sock:
            request = f"HEAD / HTTP/1.0\r\nHost: {address.url_host}\r\n\r\n"
            sock.sendall(request.encode("ascii"))
            return sock.recv(8).startswith(b"HTTP/")
    except OSError as exc:
        log.debug("plain HTTP look at %s: %s", address, exc)
        return False


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- answers

def api_error(status: int, headers: Mapping[str, str], body: str,
              call: Call) -> errors.NomadError:
    """The error for an answer outside 2xx, quoting the agent's own message."""
    settings = call.settings
    body = scrub(body, settings)
    said = _first_line(body)
    quoted = f": {said}" if said else ""
    if status == 400 and GO_PLAINTEXT_REPLY in body:
        return _http_at_tls_port(call)
    if status in (401, 403):
        challenge = headers.get("WWW-Authenticate", "")
        if status == 401 and challenge.lower().startswith("basic"):
            hint = (f"a proxy in front of the agent wants basic auth: set "
                    f"{settings.spelled('http_auth', 'user:password')} or put "
                    "user:password@ in the address")
        elif settings.token:
            hint = (f"the token from {settings.label('token')} is unknown or expired, or "
                    "lacks a policy that allows this call")
        else:
            hint = f"no ACL token was sent; set {settings.spelled('token')}"
        return errors.PermissionDenied(
            f"the agent refused {call.what} ({status}){quoted}",
            status=status, body=body, hint=hint)
    if status == 404:
        return errors.NotFound(f"{call.what} found nothing (404){quoted}",
                               status=status, body=body, hint=_no_route(said, settings))
    hint = None
    if status == 429:
        hint = f"the agent limits the request rate{call.retried()}; try again later"
    elif status in (502, 503, 504):
        hint = (f"the agent, or a proxy in front of it, is unavailable{call.retried()}; "
                "try again later")
    return errors.APIError(f"the agent answered {call.what} with {status}{quoted}",
                           status=status, body=body, hint=hint)


def _no_route(said: str, settings: Settings) -> str | None:
    """The hint for a 404: none for an object that is not there, but when the agent knows
    no such path (Go's own answer), the address's path or the agent's age is to blame."""
    if said != GO_NO_ROUTE:
        return None
    prefix = urlsplit(settings.address.url).path
    if prefix:
        return (f"the agent serves no such path: check the path {prefix!r} in "
                f"{settings.spelled('address')}")
    return "the agent serves no such path; it may be older than this call needs"


def not_json(content: bytes, call: Call) -> errors.InvalidResponse:
    """The error for a 2xx answer that is not JSON: a proxy's page, another service."""
    begins = scrub(content[:60].decode("utf-8", "replace"), call.settings)
    return errors.InvalidResponse(
        f"the answer to {call.what} from {call.where} is not JSON, so this is not a Nomad "
        f"agent's answer (it begins {begins!r})",
        hint=f"check {call.settings.spelled('address')}: a proxy or another service may "
             "be answering there")


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= _QUOTE else line[:_QUOTE] + "..."


def scrub(text: str, settings: Settings) -> str:
    """`text` with every secret the settings hold replaced by ***."""
    secrets = [settings.token, settings.address.password]
    if settings.http_auth:
        secrets.append(settings.http_auth[1])
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def _words(exc: BaseException) -> str:
    """The innermost useful description of an exception, without urllib3's object reprs."""
    for error in reversed(list(_chain(exc))):
        if isinstance(error, ssl.SSLError) and isinstance(getattr(error, "reason", None), str):
            return error.reason.lower().replace("_", " ")
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
    return str(exc)

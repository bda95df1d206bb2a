"""Look at an agent's TLS from the outside, as `nomadtls tls check` reports it: the
certificates it presents, the protocol it speaks, and whether it demands a client
certificate, read even when verification would fail."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass

from ._diagnose import _client_cert_alert, _is_eof, _words
from ._peer import CertificateSummary, connect, handshake, server_name, unverified_context
from .errors import (ConfigError, ConnectError, ConnectTimeout, NomadError,
                     PermissionDenied, TLSError)
from .settings import Settings

__all__ = [
    "check",
    "CheckResult",
    "AgentFacts",
    "CertificateSummary",
    "Handshake",
    "look",
    "name_matches",
    "REQUIRED",
    "OPTIONAL",
    "NOT_REQUESTED",
    "NOT_REQUIRED",
]

log = logging.getLogger(__name__)

# What an agent wants of the caller's certificate (Handshake.client_certificate).
REQUIRED = "required"  # verify_https_client: no certificate, no answer
OPTIONAL = "optional"  # asked for one, but answered without it
NOT_REQUESTED = "not requested"
NOT_REQUIRED = "not required"  # answered without one; whether it asked is not known

_HANDSHAKE = 22
_CERTIFICATE = 11
_CERTIFICATE_REQUEST = 13


@dataclass(frozen=True)
class Handshake:
    """One unverified TLS handshake with an agent, and what it showed.

    `chain` starts with the agent's own certificate; it is empty when the agent sent
    none that could be read. `checked_name` is the name a verified request checks
    (the server name, else the address's host); `name_matched` says whether the agent's
    certificate holds it. `client_certificate` is REQUIRED, OPTIONAL, NOT_REQUESTED or
    NOT_REQUIRED. `tls_version` and `cipher` are None when the handshake did not complete.
    """

    checked_name: str
    tls_version: str | None
    cipher: str | None
    chain: tuple[CertificateSummary, ...]
    client_certificate: str
    failure: str | None = None  # why the handshake without a certificate failed

    @property
    def name_matched(self) -> bool | None:
        if not self.chain:
            return None
        leaf = self.chain[0]
        return name_matches(self.checked_name, leaf.dns_names, leaf.ip_addresses)


def name_matches(name: str, dns_names: tuple[str, ...] | list[str],
                 ip_addresses: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether a certificate with these SANs is valid for `name`, as Go and OpenSSL decide:
    an IP address against the IP SANs, a host name against the DNS SANs, where `*` may
    stand for the whole leftmost label. The common name is not consulted."""
    try:
        wanted_ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        wanted_ip = None
    if wanted_ip is not None:
        return any(ipaddress.ip_address(ip) == wanted_ip for ip in ip_addresses)

    host = name.rstrip(".").lower()
    for pattern in dns_names:
        pattern = pattern.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            first, _, rest = host.partition(".")
            if first and rest == pattern[2:]:
                return True
    return False


class _Recorder:
    """Notes the handshake messages the agent sends: whether it asked for a client
    certificate, and the certificates it presented (kept even if the handshake fails)."""

    def __init__(self) -> None:
        self.asked: bool | None = None
        self.certificates: list[bytes] = []

    def install(self, context: ssl.SSLContext) -> None:
        # `_msg_callback` is CPython's debugging hook on OpenSSL's message callback;
        # without it the report says only whether a certificate was demanded.
        if hasattr(context, "_msg_callback"):
            self.asked = False
            context._msg_callback = self._on_message

    def _on_message(self, conn, direction, version, content_type, msg_type, data) -> None:
        if direction != "read" or content_type != _HANDSHAKE:
            return
        if msg_type == _CERTIFICATE_REQUEST:
            self.asked = True
        elif msg_type == _CERTIFICATE and not self.certificates:
            tls13 = version == ssl.TLSVersion.TLSv1_3
            self.certificates = _certificate_list(bytes(data), tls13)


def _certificate_list(message: bytes, tls13: bool) -> list[bytes]:
    """The DER certificates of a TLS Certificate handshake message (RFC 5246 7.4.2,
    RFC 8446 4.4.2); an empty list when the message cannot be read."""
    try:
        at = 4  # message type and length
        if tls13:
            at += 1 + message[at]  # certificate_request_context
        end = at + 3 + int.from_bytes(message[at:at + 3], "big")
        at += 3
        found = []
        while at < end:
            size = int.from_bytes(message[at:at + 3], "big")
            found.append(message[at + 3:at + 3 + size])
            at += 3 + size
            if tls13:
                at += 2 + int.from_bytes(message[at:at + 2], "big")  # extensions
        return found
    except IndexError:  # pragma: no cover - a malformed message
        return []


def _peer_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The chain the agent presented, leaf first; the leaf alone where Python offers only
    that (before 3.13, without the private accessor)."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is not None:  # Python 3.13 and later
        return [bytes(c) for c in getter()]
    inner = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if inner is not None:
        return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in inner() or ()]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _refused_for_certificate(error: BaseException) -> bool:
    """Whether a failure without a client certificate is the agent refusing the caller:
    an alert about certificates (TLS 1.2 sends it in the handshake, TLS 1.3 on the first
    read), or a connection closed without a word."""
    return _client_cert_alert(error) is not None or _is_eof(error)


def look(settings: Settings, *, timeout: float = 10.0) -> Handshake:
    """Shake hands with the agent at the settings' https:// address without verifying
    it, and report what it showed.

    The server name setting is sent as SNI and is the name checked, as in a verified
    request. The first handshake carries no client certificate, so that a demand for one
    shows; when the agent refuses it and a client certificate is set, a second handshake
    with it reads what the first could not. Nothing secret is sent: the one request made
    is an anonymous GET of /v1/agent/health.

    Raises ConnectError (or ConnectTimeout) when no connection is made, and TLSError
    when the agent does not speak TLS. Their messages say what happened; saying what to
    change is the job of a verified request's diagnosis.
    """
    address = settings.address
    host, port = address.url_host, address.port
    if not address.is_tls or host is None or port is None:
        raise ValueError(f"{address} is not an https:// address")
    name = server_name(settings)
    recorder = _Recorder()
    context = unverified_context(settings, client_certificate=False)
    recorder.install(context)
    tls_version = cipher = failure = None
    chain: list[bytes] = []
    demanded = False

    raw = _connect(settings, timeout)
    try:
        try:
            tls = handshake(settings, raw, context)
        except (ssl.SSLError, OSError) as exc:
            if not (recorder.certificates or recorder.asked or _client_cert_alert(exc)):
                raise _not_tls(host, port, exc) from None
            demanded, failure = _refused_for_certificate(exc), _words(exc)
        else:
            tls_version, cipher = tls.version(), tls.cipher()[0]
            chain = _peer_chain(tls)
            demanded, failure = _first_read(tls, host)
            tls.close()
    finally:
        raw.close()
    chain = chain or recorder.certificates
    log.debug("unverified handshake with %s as %r: %s; client certificate demanded: %s",
              address, name, tls_version or failure, demanded)

    if demanded and settings.client_cert and settings.client_key:
        presented = _look_presenting_certificate(settings, timeout)
        if presented is not None:
            tls_version, cipher, second_chain = presented
            chain = chain or second_chain

    if demanded:
        wants = REQUIRED
    elif recorder.asked is None:
        wants = NOT_REQUIRED
    else:
        wants = OPTIONAL if recorder.asked else NOT_REQUESTED
    summaries = tuple(CertificateSummary.from_der(der) for der in chain)
    return Handshake(checked_name=name, tls_version=tls_version, cipher=cipher,
                     chain=summaries, client_certificate=wants, failure=failure)


def _look_presenting_certificate(settings: Settings, timeout: float
                                 ) -> tuple[str, str, list[bytes]] | None:
    """A second, unverified handshake that presents the client certificate: the TLS
    version, cipher and chain, or None when the agent refuses this one too."""
    try:
        context = unverified_context(settings)
    except ConfigError as exc:
        log.debug("the client certificate cannot be loaded: %s", exc)
        return None
    raw = _connect(settings, timeout)
    try:
        with handshake(settings, raw, context) as tls:
            return tls.version(), tls.cipher()[0], _peer_chain(tls)
    except (ssl.SSLError, OSError) as exc:
        log.debug("the agent refused the client certificate too: %s", exc)
        return None
    finally:
        raw.close()


def _connect(settings: Settings, timeout: float) -> socket.socket:
    host, port = settings.address.url_host, settings.address.port
    try:
        return connect(settings, timeout)
    except socket.timeout:
        raise ConnectTimeout(f"no connection to {host}:{port} within {timeout:g} s"
                             ) from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}"
                           ) from None


def _first_read(tls: ssl.SSLSocket, host: str) -> tuple[bool, str | None]:
    """Send an anonymous request and read the first bytes of the answer: a TLS 1.3 agent
    that demands a client certificate refuses only now. `host` is as a URL writes it.
    Returns (demanded, failure)."""
    request = (f"GET /v1/agent/health HTTP/1.1\r\nHost: {host}\r\n"
               "Connection: close\r\n\r\n").encode("ascii", "replace")
    try:
        tls.sendall(request)
        answer = tls.recv(16)
    except (ssl.SSLError, OSError) as exc:
        return _refused_for_certificate(exc), _words(exc)
    if not answer:  # closed without a word: how some servers refuse
        return True, "the agent closed the connection"
    return False, None


def _not_tls(host: str, port: int, exc: BaseException) -> TLSError:
    return TLSError(f"{host}:{port} did not complete a TLS handshake ({_words(exc)})")


# ---------------------------------------------------------------- the whole check

@dataclass(frozen=True)
class AgentFacts:
    """Who answered the verified request, from /v1/agent/self (None where it was not
    readable, such as with a token that lacks agent:read)."""

    region: str | None = None
    version: str | None = None
    name: str | None = None
    datacenter: str | None = None

    @classmethod
    def from_self(cls, body: object) -> "AgentFacts":
        config = body.get("config") if isinstance(body, dict) else None
        member = body.get("member") if isinstance(body, dict) else None
        config = config if isinstance(config, dict) else {}
        member = member if isinstance(member, dict) else {}
        version = config.get("Version")
        if isinstance(version, dict):  # Nomad 0.9 and later: the parts of the version
            prerelease = version.get("VersionPrerelease")
            version = version.get("Version")
            if version and prerelease:
                version = f"{version}-{prerelease}"
        if not version:
            version = (member.get("Tags") or {}).get("build")
        return cls(region=config.get("Region"), version=str(version) if version else None,
                   name=config.get("NodeName") or member.get("Name"),
                   datacenter=config.get("Datacenter"))


@dataclass(frozen=True)
class CheckResult:
    """What `check` found. `handshake` is the unverified look (None for an address
    without TLS or when it failed, `look_error` then says why); `agent` who answered the
    verified request; `error` the diagnosis when the check fails, None when it passed."""

    settings: Settings
    handshake: Handshake | None
    look_error: NomadError | None
    agent: AgentFacts | None
    error: NomadError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def check(settings: Settings, *, timeout: float = 10.0) -> CheckResult:
    """Check the TLS connection `settings` describe: an unverified look at the agent's
    certificates, then a verified request of /v1/agent/self through `NomadClient`.

    The check passes only when that request succeeds over verified TLS, so verification
    stays on even when the settings skip it; its failure is the client's own diagnosis,
    with the same hint as any other call. An address without TLS fails the check after
    the request, since nothing is encrypted or verified. Nothing is raised for the agent's
    faults: they are in the result.
    """
    from .client import NomadClient

    handshake = look_error = None
    if settings.address.is_tls:
        try:
            handshake = look(settings, timeout=timeout)
        except NomadError as exc:
            look_error = exc

    verifying = settings.replace(skip_verify=False)
    agent = error = None
    try:
        with NomadClient.from_settings(verifying, timeout=timeout, retries=0) as client:
            agent = _agent_facts(client)
    except NomadError as exc:
        error = exc
    if error is None and not settings.address.is_tls:
        error = _no_tls(settings)
    log.debug("TLS check of %s: %s", settings.address, error or "verified")
    return CheckResult(settings, handshake, look_error, agent, error)


def _agent_facts(client) -> AgentFacts:
    """Ask the agent who it is; when the token may not read that, any answer of the
    leader's address still proves the verified connection."""
    try:
        return AgentFacts.from_self(client.get("/v1/agent/self"))
    except PermissionDenied:
        client.get("/v1/status/leader")
        return AgentFacts()


def _no_tls(settings: Settings) -> NomadError:
    address = settings.address
    label = settings.label("address")
    if address.scheme == "unix":
        return NomadError(f"{address} ({label}) is a unix socket, which carries no TLS to "
                          "check", hint="give the agent's https:// address to check TLS")
    fixed = address.url.replace("http://", "https://", 1)
    return NomadError(
        f"the agent answered over plain HTTP at {address} ({label}): nothing is encrypted "
        "and the agent is not verified",
        hint=f"if its tls stanza has http = true, set "
             f"{settings.spelled('address', fixed)}")

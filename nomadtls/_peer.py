"""The agent's side of TLS, seen without verifying it: an unverified handshake with the server
name and client certificate a request would use, and a summary of each certificate the agent
presents. The diagnosis of a failed request and `nomadtls.probe` both look through it.
"""

from __future__ import annotations

import datetime as _dt
import socket
import ssl
from dataclasses import dataclass

from . import _certificate
from ._tls import build_context
from .settings import Settings

__all__ = ["CertificateSummary", "server_name", "server_name_origin", "unverified_context",
           "connect", "handshake"]


@dataclass(frozen=True)
class CertificateSummary:
    """What a reader needs to know about one certificate of the agent's chain. `subject`
    and `issuer` are whole distinguished names; `issuer_common_name` is the issuer's common
    name alone (None when it has none), as a one-line message names a CA."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: _dt.datetime
    not_after: _dt.datetime
    is_ca: bool
    issuer_common_name: str | None = None

    @classmethod
    def from_der(cls, der: bytes) -> "CertificateSummary":
        """The summary of a DER certificate; ValueError when the bytes are not one."""
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        dns, ips = _certificate.alt_names(cert)
        return cls(subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
                   dns_names=dns, ip_addresses=ips, not_before=cert.not_valid_before_utc,
                   not_after=cert.not_valid_after_utc, is_ca=_certificate.is_ca(cert),
                   issuer_common_name=_certificate.common_name(cert.issuer))

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the certificate is valid for: its DNS names, then its IP addresses."""
        return (*self.dns_names, *self.ip_addresses)

    def days_left(self, now: _dt.datetime | None = None) -> int:
        """Whole days until the certificate expires; negative once it has."""
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return (self.not_after - now) // _dt.timedelta(days=1)

    def is_current(self, now: _dt.datetime | None = None) -> bool:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return self.not_before <= now <= self.not_after


def server_name(settings: Settings) -> str | None:
    """The name a verified request sends as SNI and checks against the certificate: the
    server name setting, else the address's host (None for a unix socket)."""
    return settings.tls_server_name or settings.address.host


def server_name_origin(settings: Settings, *, lead: str = "") -> str:
    """Where `server_name` took its name from, as a message says it in brackets: the label
    of the server name setting after `lead` (lead "from " reads "from
    NOMAD_TLS_SERVER_NAME"), else "the host in NOMAD_ADDR"."""
    if settings.tls_server_name:
        return lead + settings.label("tls_server_name")
    return f"the host in {settings.label('address')}"


def unverified_context(settings: Settings, *, client_certificate: bool = True,
                       tls12_only: bool = False) -> ssl.SSLContext:
    """A context that checks nothing and trusts nothing, so that any agent's handshake
    completes and shows its certificates.

    It presents the settings' client certificate unless `client_certificate` is false, so
    that an agent's demand for one shows. `tls12_only` caps it at TLS 1.2, where such a
    demand fails the handshake itself rather than the first read. Raises ConfigError when
    the client certificate cannot be loaded.
    """
    if not client_certificate:
        settings = settings.replace(client_cert=None, client_key=None)
    context = build_context(settings, verify=False, roots=False)
    if tls12_only:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def connect(settings: Settings, timeout: float) -> socket.socket:
    """A TCP connection to the agent's host and port; OSError (a timeout among them) when
    none is made within `timeout` seconds."""
    address = settings.address
    return socket.create_connection((address.host, address.port), timeout=timeout)


def handshake(settings: Settings, raw: socket.socket, context: ssl.SSLContext
              ) -> ssl.SSLSocket:
    """The TLS session over `raw` after a handshake with `context` that sends the server
    name as SNI; ssl.SSLError or OSError when the handshake fails."""
    return context.wrap_socket(raw, server_hostname=server_name(settings))

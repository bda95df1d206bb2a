"""Mint the certificates of a Nomad cluster's private CA, as `nomad tls ca create` and
`nomad tls cert create` do: an ECDSA P-256 CA, and server, client and CLI certificates
named `<role>.<region>.<domain>`.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Iterable, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import _certificate
from .errors import ConfigError

__all__ = [
    "ROLES",
    "Credential",
    "create_ca",
    "create_certificate",
    "ca_filenames",
    "cert_filenames",
    "check_dns_name",
    "load_credential",
]

log = logging.getLogger(__name__)

ROLES = ("server", "client", "cli")

# The leeway given to clocks that run a little behind the one that signed.
_CLOCK_SKEW = _dt.timedelta(minutes=1)

_DNS_NAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")

PathLike = Union[str, "os.PathLike[str]"]


class Credential:
    """A certificate and its private key, as one agent, CLI or CA holds them.

    The repr names the subject and the expiry, never key material.
    """

    def __init__(self, cert: x509.Certificate, key) -> None:
        self.cert = cert
        self.key = key

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, the form Nomad's agents read."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def common_name(self) -> str | None:
        return _certificate.common_name(self.cert.subject)

    @property
    def dns_names(self) -> tuple[str, ...]:
        return _certificate.alt_names(self.cert)[0]

    @property
    def ip_addresses(self) -> tuple[str, ...]:
        return _certificate.alt_names(self.cert)[1]

    @property
    def not_before(self) -> _dt.datetime:
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> _dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def is_ca(self) -> bool:
        return _certificate.is_ca(self.cert)

    def write(self, cert_path: PathLike, key_path: PathLike, *, overwrite: bool = False
              ) -> None:
        """Write the certificate (mode 0644) and the key (mode 0600) to two files.

        Unless `overwrite`, an existing file at either path raises FileExistsError before
        anything is written, and files are created exclusively so that a file appearing
        in the meantime is not clobbered. A failure while writing the second file removes
        the first, so a half-written pair is never left behind.
        """
        cert_path, key_path = Path(cert_path), Path(key_path)
        if os.path.abspath(cert_path) == os.path.abspath(key_path):
            raise ValueError(f"certificate and key would both be written to {cert_path}")
        if not overwrite:
            for path in (key_path, cert_path):
                if path.exists() or path.is_symlink():
                    raise FileExistsError(17, "refusing to overwrite an existing file",
                                          str(path))

        _write_file(key_path, self.key_pem, 0o600, overwrite, exact_mode=True)
        try:
            _write_file(cert_path, self.cert_pem, 0o644, overwrite, exact_mode=False)
        except BaseException:
            if not overwrite:
                key_path.unlink(missing_ok=True)
            raise
        log.debug("wrote certificate %s and key %s", cert_path, key_path)

    def __repr__(self) -> str:
        subject = self.cert.subject.rfc4514_string()
        return f"Credential(subject={subject!r}, not_after={self.not_after.isoformat()!r})"


def _write_file(path: Path, data: bytes, mode: int, overwrite: bool, *,
                exact_mode: bool) -> None:
    """Write `data` to `path`, created with `mode`; `exact_mode` also lifts the umask's
    say on an existing file (a key file must end up 0600 whatever was there before)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    flags |= getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    try:
        if exact_mode:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def check_dns_name(value: str, what: str = "name") -> str:
    """`value`, when it is a DNS name that a certificate can hold and a file name can carry:
    labels of 1 to 63 letters, digits and hyphens (none at either end), joined by dots.
    Otherwise a ConfigError that calls the value `what` ("domain", "region")."""
    if not isinstance(value, str) or not _DNS_NAME.match(value):
        raise ConfigError(f"{what} {value!r} is not a valid DNS name",
                          hint="use letters, digits, hyphens and dots, such as 'nomad'")
    return value


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"unknown certificate role {role!r}",
                          hint="choose one of: " + ", ".join(ROLES))
    return role


def _check_days(days: int) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ConfigError(f"days must be a whole number of at least 1, not {days!r}")
    return days


def _validity(not_before: _dt.datetime | None, days: int) -> tuple[_dt.datetime, _dt.datetime]:
    """The validity window: from `not_before` (by default now, less a minute for clock
    skew) to `days` days after it (by default after now)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    if not_before is None:
        return now - _CLOCK_SKEW, now + _dt.timedelta(days=days)
    if not_before.tzinfo is None:
        not_before = not_before.replace(tzinfo=_dt.timezone.utc)
    return not_before, not_before + _dt.timedelta(days=days)


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signature for every certificate; certificate and CRL signing for a CA."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=signs_certificates,
        crl_sign=signs_certificates, encipher_only=False, decipher_only=False,
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def create_ca(*, domain: str = "nomad", days: int = 1825, name_constraint: bool = False,
              common_name: str | None = None,
              not_before: _dt.datetime | None = None) -> Credential:
    """Create a self-signed certificate authority for a cluster whose names end in
    `domain`, valid `days` days (five years by default, as Nomad does).

    With `name_constraint`, the CA can vouch only for DNS names under `domain` and for
    `localhost`; a leaf signed for any other DNS name then fails verification.
    """
    check_dns_name(domain, "domain")
    _check_days(days)
    key = _new_key()
    serial = x509.random_serial_number()
    if common_name is None:
        common_name = f"Nomad Agent CA {serial:x}"[:64]
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Nomad cluster ({domain})"[:64]),
    ])
    start, end = _validity(not_before, days)
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key),
                       critical=False)
    )
    if name_constraint:
        permitted = [x509.DNSName(domain), x509.DNSName("localhost")]
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
            critical=True,
        )
    cert = builder.sign(key, hashes.SHA256())
    log.debug("created CA %r for domain %s, valid until %s", common_name, domain, end)
    return Credential(cert, key)


def _unique(values: Iterable) -> list:
    """The values in their first order, each once."""
    return list(dict.fromkeys(values))


def _parse_ips(values: Iterable[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    parsed = []
    for value in values:
        try:
            parsed.append(ipaddress.ip_address(str(value).strip("[]")))
        except ValueError:
            raise ConfigError(f"{value!r} is not an IP address",
                              hint="give an IPv4 or IPv6 address such as 10.0.0.5") from None
    return _unique(parsed)


def create_certificate(ca: Credential, role: str, *, region: str = "global",
                       domain: str = "nomad", days: int = 365,
                       dns_names: Iterable[str] = (), ip_addresses: Iterable[str] = (),
                       not_before: _dt.datetime | None = None) -> Credential:
    """Create a certificate for a `role` ("server", "client" or "cli") in `region`,
    signed by `ca`.

    Its common name is `<role>.<region>.<domain>`. The DNS names are `dns_names`, that
    name and `localhost`; the IP addresses are `ip_addresses`, plus 127.0.0.1 for server
    and client. Every role may both serve and present itself as a TLS client, as Nomad's
    agents do. `not_before` (with a small `days`) makes certificates that have expired.
    """
    _check_role(role)
    check_dns_name(region, "region")
    check_dns_name(domain, "domain")
    _check_days(days)
    if not ca.is_ca:
        raise ConfigError(f"{ca.common_name!r} is not a certificate authority",
                          hint="pass the CA certificate and key that nomad tls ca create wrote")
    role_name = f"{role}.{region}.{domain}"
    names = _unique([*dns_names, role_name, "localhost"])
    ips = _parse_ips([*ip_addresses, *(["127.0.0.1"] if role != "cli" else [])])

    key = _new_key()
    start, end = _validity(not_before, days)
    ca_ski = _subject_key_id(ca)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    log.debug("created %s certificate %s, valid until %s", role, role_name, end)
    return Credential(cert, key)


def _subject_key_id(ca: Credential) -> x509.SubjectKeyIdentifier:
    """The CA's own subject key identifier, or one computed from its key when a CA made
    elsewhere carries none."""
    try:
        return ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(ca.cert.public_key())


def ca_filenames(domain: str = "nomad") -> tuple[str, str]:
    """The file names `nomad tls ca create` writes: ("nomad-agent-ca.pem",
    "nomad-agent-ca-key.pem") for the default domain."""
    check_dns_name(domain, "domain")
    return f"{domain}-agent-ca.pem", f"{domain}-agent-ca-key.pem"


def cert_filenames(role: str, region: str = "global", domain: str = "nomad"
                   ) -> tuple[str, str]:
    """The file names `nomad tls cert create` writes, such as ("global-server-nomad.pem",
    "global-server-nomad-key.pem")."""
    _check_role(role)
    check_dns_name(region, "region")
    check_dns_name(domain, "domain")
    stem = f"{region}-{role}-{domain}"
    return f"{stem}.pem", f"{stem}-key.pem"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None


def load_credential(cert_path: PathLike, key_path: PathLike) -> Credential:
    """Read a certificate and its unencrypted private key back from PEM files.

    Raises ConfigError (a ValueError) when a file is missing, is not the PEM it should
    be, or when the key does not belong to the certificate.
    """
    cert_path, key_path = Path(cert_path), Path(key_path)
    cert_data, key_data = _read(cert_path, "certificate"), _read(key_path, "key")
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError:
        raise ConfigError(f"certificate file {cert_path} holds no PEM certificate",
                          hint="pass the .pem file, not the -key.pem file") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise ConfigError(f"key file {key_path} is encrypted",
                          hint="give the unencrypted key that nomad tls wrote") from None
    except ValueError:
        raise ConfigError(f"key file {key_path} holds no PEM private key",
                          hint="pass the -key.pem file, not the certificate") from None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError(f"key file {key_path} does not belong to certificate {cert_path}")
    return Credential(cert, key)

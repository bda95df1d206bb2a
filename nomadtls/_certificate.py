"""The facts nomadtls reads from an X.509 certificate, in one place for the certificates it
makes (`nomadtls.pki`) and the ones an agent presents (`nomadtls._peer`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

# cryptography.x509 is imported where it is used: importing this module costs nothing, and
# whichever caller loads a certificate has already paid for it.


def common_name(name: x509.Name) -> str | None:
    """The first common name of a distinguished name; None when it has none."""
    from cryptography.x509.oid import NameOID

    names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def is_ca(cert: x509.Certificate) -> bool:
    """Whether the certificate's basic constraints make it a CA (False without them)."""
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def alt_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DNS names and the IP addresses, as text, among the certificate's subject
    alternative names; two empty tuples when it has none."""
    from cryptography import x509

    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return (tuple(sans.get_values_for_type(x509.DNSName)),
            tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)))

"""The one SSLContext a client uses, built from its settings as Nomad builds its TLS config:
trust roots, the client certificate, TLS 1.2 at least, and a check of every file first.

Every file problem is a ConfigError that names the file and the variable, flag or keyword
it came from, raised while the client is made and before any connection.
"""

from __future__ import annotations

import logging
import os
import re
import ssl

from .errors import ConfigError
from .settings import Settings

__all__ = ["build_context", "pem_labels"]

log = logging.getLogger(__name__)

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)

# What each file setting is called in a message.
_WHAT = {
    "ca_cert": "CA file",
    "ca_path": "CA directory",
    "client_cert": "client certificate",
    "client_key": "client key",
}


class _KeyIsEncrypted(Exception):
    """Raised by the password callback: the key asked for a passphrase."""


def build_context(settings: Settings, *, verify: bool | None = None,
                  roots: bool = True) -> ssl.SSLContext:
    """A client-side SSLContext for `settings`.

    `verify` defaults to the opposite of `skip_verify`; when off, the context checks
    neither the chain nor the name (and never raises the ValueError that a context with
    hostname checks left on does). `roots=False` leaves the trust store empty, for the
    unverified looks at an agent's certificates (`nomadtls._peer`).
    """
    if verify is None:
        verify = not settings.skip_verify
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.hostname_checks_common_name = False  # Go looks only at the SANs
    context.set_alpn_protocols(["http/1.1"])
    if roots:
        _load_roots(context, settings)
    if settings.client_cert and settings.client_key:
        _load_client_certificate(context, settings)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def pem_labels(text: str) -> list[str]:
    """The labels of the PEM blocks in `text`: ["CERTIFICATE", "EC PRIVATE KEY", ...]."""
    return [match.group(1) for match in _PEM_BLOCK.finditer(text)]


def _load_roots(context: ssl.SSLContext, settings: Settings) -> None:
    """Trust exactly one source, as Nomad does: the CA file, else every file of the CA
    directory, else certifi's public bundle."""
    if settings.ca_cert:
        if settings.ca_path:
            log.debug("CA file %s is set, so CA directory %s is ignored",
                      settings.ca_cert, settings.ca_path)
        _load_ca_file(context, settings, "ca_cert", settings.ca_cert)
    elif settings.ca_path:
        _load_ca_directory(context, settings)
    else:
        import certifi

        context.load_verify_locations(cafile=certifi.where())


def _load_ca_directory(context: ssl.SSLContext, settings: Settings) -> None:
    top = settings.ca_path
    if not os.path.exists(top):
        raise _file_error(settings, "ca_path", top, "does not exist")
    if not os.path.isdir(top):
        raise _file_error(settings, "ca_path", top, "is a file, not a directory",
                          hint=f"name a single CA file with "
                               f"{settings.spelled('ca_cert')} instead")
    loaded = 0
    for folder, subfolders, files in os.walk(top):
        subfolders.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            _load_ca_file(context, settings, "ca_path", path)
            loaded += 1
    if not loaded:
        raise _file_error(settings, "ca_path", top, "holds no CA files")
    log.debug("loaded %d CA file(s) from %s", loaded, top)


def _load_ca_file(context: ssl.SSLContext, settings: Settings, name: str, path: str
                  ) -> None:
    """Trust every CA certificate in the PEM file at `path`, found through setting `name`."""
    text = _read_pem_file(settings, name, path)
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text) if m.group(1) == "CERTIFICATE"]
    if not blocks:
        labels = pem_labels(text)
        if any("PRIVATE KEY" in label for label in labels):
            problem = "holds a private key, not a CA certificate"
        elif labels:
            problem = f"holds a {labels[0]}, not a CA certificate"
        else:
            problem = "is not PEM: it has no -----BEGIN CERTIFICATE----- block"
        raise _file_error(settings, name, path, problem,
                          hint="give the PEM file of the CA that signed the agent's "
                               "certificate (nomad-agent-ca.pem)")
    try:
        context.load_verify_locations(cadata="\n".join(blocks))
    except ssl.SSLError as exc:
        raise _file_error(settings, name, path,
                          f"holds a certificate that cannot be read ({_reason(exc)})") from None


def _load_client_certificate(context: ssl.SSLContext, settings: Settings) -> None:
    cert_text = _read_pem_file(settings, "client_cert", settings.client_cert)
    key_text = _read_pem_file(settings, "client_key", settings.client_key)
    cert_labels, key_labels = pem_labels(cert_text), pem_labels(key_text)

    if "CERTIFICATE" not in cert_labels:
        swapped = any("PRIVATE KEY" in label for label in cert_labels)
        raise _file_error(
            settings, "client_cert", settings.client_cert,
            "holds a private key, not a certificate" if swapped
            else "is not PEM: it has no -----BEGIN CERTIFICATE----- block",
            hint="were the certificate and the key swapped?" if swapped else None)
    if _is_encrypted(key_text, key_labels):
        raise _encrypted_key(settings)
    if not any("PRIVATE KEY" in label for label in key_labels):
        raise _file_error(
            settings, "client_key", settings.client_key,
            "holds a certificate, not a private key" if "CERTIFICATE" in key_labels
            else "is not PEM: it has no -----BEGIN PRIVATE KEY----- block",
            hint="the key must be unencrypted PEM")

    try:
        context.load_cert_chain(settings.client_cert, settings.client_key,
                                password=_refuse_passphrase)
    except _KeyIsEncrypted:
        raise _encrypted_key(settings) from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            cert_label, key_label = settings.label("client_cert"), settings.label("client_key")
            raise ConfigError(
                f"the client certificate {settings.client_cert!r} ({cert_label}) and key "
                f"{settings.client_key!r} ({key_label}) do not belong together",
                hint="give the key that was made with this certificate") from None
        raise _file_error(settings, "client_key", settings.client_key,
                          f"cannot be loaded with its certificate ({_reason(exc)})") from None


def _refuse_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for the passphrase.
    raise _KeyIsEncrypted()


def _is_encrypted(text: str, labels: list[str]) -> bool:
    return "ENCRYPTED PRIVATE KEY" in labels or "Proc-Type: 4,ENCRYPTED" in text


def _encrypted_key(settings: Settings) -> ConfigError:
    return _file_error(settings, "client_key", settings.client_key,
                       "is encrypted; the key must be unencrypted PEM",
                       hint=f"decrypt it (openssl pkey -in {settings.client_key} -out "
                            "key.pem) and keep the result readable only by you")


def _read_pem_file(settings: Settings, name: str, path: str) -> str:
    """The text of a file a setting names, or a ConfigError saying why it cannot be used."""
    if not os.path.exists(path):
        raise _file_error(settings, name, path, "does not exist")
    if os.path.isdir(path):
        hint = None
        if name == "ca_cert":
            hint = f"name a directory of CA files with {settings.spelled('ca_path')}"
        raise _file_error(settings, name, path, "is a directory, not a file", hint=hint)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise _file_error(settings, name, path,
                          f"cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise _file_error(settings, name, path, "is empty")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise _file_error(settings, name, path,
                          "is not PEM: it is binary (DER?), not text",
                          hint="convert it with openssl x509 -inform der -in FILE -out "
                               "FILE.pem") from None


def _file_error(settings: Settings, name: str, path: str, problem: str, *,
                hint: str | None = None) -> ConfigError:
    """A ConfigError such as "the CA file 'ca.pem' (NOMAD_CACERT) does not exist", with a
    hint naming the variable and the flag that set it."""
    label = settings.label(name)
    if name == "ca_path" and path != settings.ca_path:
        message = f"the file {path!r} in the CA directory ({label}) {problem}"
    else:
        message = f"the {_WHAT[name]} {path!r} ({label}) {problem}"
    if hint is None:
        hint = f"check {settings.spelled(name)}"
    return ConfigError(message, hint=hint)


def _reason(exc: ssl.SSLError) -> str:
    return (exc.reason or str(exc)).lower().replace("_", " ")

"""Every failure nomadtls raises, under one root so that a caller can catch them all.

    NomadError
    ├── ConfigError (ValueError)         bad settings, raised before any network I/O
    ├── TransportError                   the request never got an answer
    │   ├── ConnectError (ConnectionError)   refused, unreachable, reset, no socket
    │   │   └── ConnectTimeout (TimeoutError)
    │   ├── ReadTimeout (TimeoutError)       connected, but the agent did not answer in time
    │   └── TLSError                         the TLS handshake or session failed
    │       ├── ServerNameMismatch           the certificate is for other names
    │       ├── UnknownAuthority             no trusted CA signed the agent's certificate
    │       ├── CertificateExpired           the agent's certificate is out of date
    │       ├── ClientCertificateRequired    the agent wants a client certificate
    │       ├── ClientCertificateRejected    the agent refused the one given
    │       └── ProtocolMismatch             http:// at a TLS port, or https:// at a plain one
    ├── APIError(status, body)           the agent answered with a non-2xx status
    │   ├── PermissionDenied                 401 or 403: token missing or lacking a policy
    │   └── NotFound                         404
    └── InvalidResponse                  a 2xx answer that is not a Nomad agent's JSON

Each message is one line that says what failed; `hint`, when set, says what to change.
No message, hint or repr ever holds a token, password or key.
"""

from __future__ import annotations

__all__ = [
    "NomadError",
    "ConfigError",
    "TransportError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "TLSError",
    "ServerNameMismatch",
    "UnknownAuthority",
    "CertificateExpired",
    "ClientCertificateRequired",
    "ClientCertificateRejected",
    "ProtocolMismatch",
    "APIError",
    "PermissionDenied",
    "NotFound",
    "InvalidResponse",
    "NomadWarning",
]


class NomadError(Exception):
    """The root of every error nomadtls raises.

    `message` says what failed, `hint` (possibly None) what to change. `str()` joins them
    with "; " so that a log line or a bare traceback still carries the fix.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, hint={self.hint!r})"


class ConfigError(NomadError, ValueError):
    """A setting is wrong: raised while a client is made, before any connection."""


class TransportError(NomadError):
    """The request reached no answer from the agent."""


class ConnectError(TransportError, ConnectionError):
    """No connection: refused, unreachable, reset, or a unix socket that is not there."""


class ConnectTimeout(ConnectError, TimeoutError):
    """The connection was not established within the timeout."""


class ReadTimeout(TransportError, TimeoutError):
    """The agent accepted the connection but did not answer within the timeout."""


class TLSError(TransportError):
    """The TLS handshake or session with the agent failed."""


class ServerNameMismatch(TLSError):
    """The agent's certificate does not hold the name that was checked.

    `names` lists the DNS names and IP addresses the certificate holds; `checked` is the
    name that was looked for.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 names: tuple[str, ...] = (), checked: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.names = names
        self.checked = checked


class UnknownAuthority(TLSError):
    """No trusted certificate authority signed the agent's certificate."""


class CertificateExpired(TLSError):
    """The agent's certificate (or one in its chain) is out of date."""


class ClientCertificateRequired(TLSError):
    """The agent demands a client certificate and none was given."""


class ClientCertificateRejected(TLSError):
    """The agent refused the client certificate that was given."""


class ProtocolMismatch(TLSError):
    """The scheme does not match the port: http:// at a TLS port, or https:// at a plain one."""


class APIError(NomadError):
    """The agent answered with a status outside 2xx. `body` is its (plain-text) answer."""

    def __init__(self, message: str, *, status: int, body: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, {self.message!r})"


class PermissionDenied(APIError):
    """401 or 403: the token is missing, unknown, or lacks the policy for this call."""


class NotFound(APIError):
    """404: no such object, or no such endpoint on this agent."""


class InvalidResponse(NomadError):
    """A 2xx answer whose body is not JSON: something other than a Nomad agent replied."""


class NomadWarning(UserWarning):
    """A setting was accepted but deserves attention (an unparseable boolean, verification off)."""

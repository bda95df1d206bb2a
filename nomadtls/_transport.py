"""How bytes reach the agent: requests' adapters using the client's own SSLContext and
server name over TCP, or an AF_UNIX socket, with redirects followed without ever handing
the token or basic-auth credentials to another host.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

__all__ = ["AgentTransport", "TLSAdapter", "UnixAdapter", "TOKEN_HEADER", "MAX_REDIRECTS",
           "proxies_for"]

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Nomad-Token"

# Enough idle connections for one client shared by a few dozen threads.
_POOL_SIZE = 32
# Origins (the agent, and any that redirects lead to) with a pool kept open.
_POOLS = 4


class _HTTPSPool(HTTPSConnectionPool):
    """An HTTPS pool without urllib3's per-request InsecureRequestWarning: when the user
    turns verification off the client warns once, in its own words."""

    def _validate_conn(self, conn) -> None:
        HTTPConnectionPool._validate_conn(self, conn)
        if conn.is_closed:
            conn.connect()


class _AgentAdapter(HTTPAdapter):
    """What the client's adapters share: the least per-request work requests allows."""

    def request_url(self, request, proxies) -> str:
        # Without a proxy urllib3 needs only the path, which requests would find only after
        # parsing the URL twice more to rule a proxy out.
        if not proxies:
            return request.path_url
        return super().request_url(request, proxies)


class TLSAdapter(_AgentAdapter):
    """The adapter for http:// and https:// URLs.

    Every HTTPS connection uses the client's one SSLContext, and `server_name` (when set)
    becomes urllib3's `server_hostname`: the name sent as SNI and the name checked against
    the certificate, like Go's tls.Config.ServerName. requests' own `verify` and `cert`
    are ignored: the context already holds the trust roots and the client certificate,
    and letting requests add certifi's bundle to a cluster-CA context would make it trust
    every public CA as well.

    `context` is a callable returning the SSLContext, so that a client for a plain
    http:// agent pays for one only if a redirect ever leads to https://.
    """

    def __init__(self, context: Callable[[], ssl.SSLContext], *,
                 server_name: str | None = None, verify: bool = True) -> None:
        self._context = context
        self._server_name = server_name
        self._cert_reqs = "CERT_REQUIRED" if verify else "CERT_NONE"
        self._pools: dict[tuple[str, str], HTTPConnectionPool] = {}
        super().__init__(pool_connections=_POOLS, pool_maxsize=_POOL_SIZE, max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme, "https": _HTTPSPool}

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        # requests builds and normalises a pool key for every request; instead the pool of
        # each origin reached without a proxy is remembered, for _POOLS origins at most,
        # and looked up afresh once it has been closed.
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        parts = urlsplit(request.url)
        key = (parts.scheme, parts.netloc)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if len(self._pools) >= _POOLS:
                self._pools.clear()
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        """Close the idle connections; like requests' own adapter, stay usable."""
        self._pools.clear()
        super().close()

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, True, None)
        if host_params["scheme"] == "https":
            pool_kwargs["ssl_context"] = self._context()
            pool_kwargs["cert_reqs"] = self._cert_reqs
            if self._server_name:
                pool_kwargs["server_hostname"] = self._server_name
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert) -> None:
        # requests would set ca_certs to certifi's bundle (or REQUESTS_CA_BUNDLE) here,
        # which urllib3 then loads into the shared context.
        if url.lower().startswith("https"):
            conn.cert_reqs = self._cert_reqs
            conn.ca_certs = None
            conn.ca_cert_dir = None


class _UnixConnection(HTTPConnection):
    """An HTTP connection over an AF_UNIX stream socket, such as the task API socket."""

    def __init__(self, *args, socket_path: str, **kwargs) -> None:
        self.socket_path = socket_path
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise NewConnectionError(
                self, f"cannot connect to unix socket {self.socket_path}: {exc}") from exc
        return sock


class _UnixPool(HTTPConnectionPool):
    ConnectionCls = _UnixConnection


class UnixAdapter(_AgentAdapter):
    """The adapter for an agent reached through a unix socket: one keep-alive pool of
    connections to `socket_path`, whatever the URL's host."""

    def __init__(self, socket_path: str) -> None:
        super().__init__(max_retries=0)
        self.socket_path = socket_path
        self._pool = self._new_pool()

    def _new_pool(self) -> _UnixPool:
        return _UnixPool("localhost", maxsize=_POOL_SIZE, socket_path=self.socket_path)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        return self._pool

    def close(self) -> None:
        """Close the idle connections; like requests' own adapter, stay usable."""
        super().close()
        pool, self._pool = self._pool, self._new_pool()
        pool.close()


def proxies_for(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The proxies to reach the agent at `url` through, read as Go reads them: HTTPS_PROXY
    and HTTP_PROXY (either case), except for hosts in NO_PROXY (names, domain suffixes,
    IP networks, `*`) and for loopback addresses and localhost, which never go through
    a proxy."""
    found = {name.lower(): value.strip() for name, value in environ.items()
             if name.lower() in _PROXY_VARIABLES and value.strip()}
    host = (urlsplit(url).hostname or "").lower()
    if not host or _is_loopback(host) or _bypassed(host, found.get("no_proxy", "")):
        return {}
    return {scheme: found[f"{scheme}_proxy"] for scheme in ("http", "https")
            if f"{scheme}_proxy" in found}


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, no_proxy: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (part.strip().lower() for part in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.strip("[]").lstrip("*").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class AgentTransport:
    """Sends the client's requests to one agent through its adapters (a TLSAdapter, and
    a UnixAdapter for a socket agent), following redirects as Go's client does.

    Up to MAX_REDIRECTS redirects are followed: 301, 302 and 303 turn any method but GET
    and HEAD into a GET without a body, 307 and 308 repeat the method and the body.
    requests drops the Authorization header when a redirect changes host but forwards
    any other, X-Nomad-Token included, and so does Go. Here both are dropped as soon as a
    redirect leaves the agent's own scheme, host and port, and are not sent again on that
    chain. Each request is built once and handed to the adapter: requests' Session layer
    (settings merged on every call, cookies, hooks) is never involved.
    """

    def __init__(self, agent_url: str, context: Callable[[], ssl.SSLContext], *,
                 server_name: str | None = None, verify: bool = True,
                 socket_path: str | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self._agent = _origin(agent_url)
        self._tls = TLSAdapter(context, server_name=server_name, verify=verify)
        self._unix = UnixAdapter(socket_path) if socket_path is not None else None
        self._home = self._unix or self._tls  # the adapter for the agent's own URLs
        # Only the proxy variables are kept, to choose proxies for a redirect elsewhere.
        self._environ = {name: value for name, value in (environ or {}).items()
                         if name.lower() in _PROXY_VARIABLES}
        self._proxies = proxies_for(agent_url if socket_path is None else "", self._environ)

    def adapter_for(self, url: str) -> HTTPAdapter:
        """The adapter that carries requests to `url`: the socket's for the agent's own
        URLs when it listens on one, else the TCP one."""
        return self._home if _origin(url) == self._agent else self._tls

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> requests.Response:
        """Send one request to the agent's `url` (a URL of the agent's own) and return the
        final answer, its body read, after any redirects. Raises what the adapter raises,
        and requests.TooManyRedirects past MAX_REDIRECTS."""
        adapter, proxies = self._home, self._proxies
        at_agent = True
        redirects = 0
        while True:
            request = requests.PreparedRequest()
            request.method, request.url, request.headers, request.body = (
                method, url, headers, body)
            response = adapter.send(request, stream=False, timeout=timeout, verify=True,
                                    cert=None, proxies=proxies)
            response.content  # read it all: the connection goes back to the pool
            if response.status_code not in _REDIRECTS:
                return response
            location = response.headers.get("Location")
            if not location:
                return response
            response.close()
            if redirects == MAX_REDIRECTS:
                raise requests.TooManyRedirects(f"stopped after {MAX_REDIRECTS} redirects",
                                                response=response)
            redirects += 1

            url = urljoin(url, requote_uri(_as_text(location)))
            if response.status_code in (301, 302, 303):
                # As Go does: the body is not sent again, and only HEAD stays itself.
                if method != "HEAD":
                    method = "GET"
                if body is not None or any(name in headers for name in _BODY_HEADERS):
                    body = None
                    headers = _without(headers, _BODY_HEADERS)
            origin = _origin(url)
            if origin == self._agent:
                adapter, proxies = self._home, self._proxies
            else:
                adapter, proxies = self._tls, proxies_for(url, self._environ)
                if at_agent:
                    at_agent = False
                    dropped = [name for name in _CREDENTIALS if name in headers]
                    if dropped:
                        headers = _without(headers, _CREDENTIALS)
                        log.debug("redirect leaves the agent for %s://%s:%s; not sending %s",
                                  *origin, " or ".join(dropped))
            log.debug("following a %d redirect to %s://%s:%s", response.status_code, *origin)

    def close(self) -> None:
        """Close the idle connections; the transport stays usable."""
        self._tls.close()
        if self._unix is not None:
            self._unix.close()


# Answers that redirect when they carry a Location.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Go's http.Client stops after this many.
MAX_REDIRECTS = 10
# Headers that carry credentials for the agent alone.
_CREDENTIALS = (TOKEN_HEADER, "Authorization")
# Headers that describe a body, dropped with it.
_BODY_HEADERS = ("Content-Length", "Content-Type", "Transfer-Encoding")
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy")


def _without(headers: Mapping[str, str], names: tuple[str, ...]) -> CaseInsensitiveDict:
    kept = CaseInsensitiveDict(headers)
    for name in names:
        kept.pop(name, None)
    return kept


def _as_text(location: str) -> str:
    """A Location header as the agent wrote it: http.client reads header bytes as Latin-1,
    and redirects are UTF-8 in practice."""
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location

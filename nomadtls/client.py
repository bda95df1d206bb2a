"""`NomadClient`, a reusable client for one Nomad agent, and the `Response` it returns
with the agent's metadata (index, leader, last contact, next page token).
"""

from __future__ import annotations

import base64
import datetime as _dt
import email.utils
import json as _json
import logging
import os
import random
import re
import ssl
import threading
import time
import warnings
from typing import Any, Iterator, Mapping, Sequence, Union
from urllib.parse import urlencode

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers, requote_uri

from . import __version__
from ._tls import build_context
from ._transport import TOKEN_HEADER, AgentTransport
from .errors import ConfigError, InvalidResponse, NomadWarning
from .settings import Settings, resolve

__all__ = ["NomadClient", "Response", "DEFAULT_TIMEOUT"]

log = logging.getLogger(__name__)

# Seconds to wait for a connection, and for the agent's answer once connected.
DEFAULT_TIMEOUT = (10.0, 60.0)

# Answers worth another try for a read: rate limiting and an unavailable agent or proxy.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Methods the agent treats as reads, so that sending them twice changes nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The longest pause between two tries, whatever the backoff or Retry-After says.
MAX_PAUSE = 10.0

Timeout = Union[float, "tuple[float, float]", None]
Params = Union[Mapping[str, Any], Sequence["tuple[str, Any]"], None]


class Response:
    """One answer of the agent: `status`, `headers`, the raw `content`, the decoded JSON
    `data`, and the blocking-query and pagination metadata Nomad sends in headers.

    `data` is decoded once, on first use; a body that is not JSON raises InvalidResponse
    then.
    """

    def __init__(self, raw: requests.Response, call: tuple) -> None:
        self.status: int = raw.status_code
        self.headers = raw.headers
        self.content: bytes = raw.content
        self.method = call[1]
        self.path = call[2]
        self._call = call
        self._data: Any = _UNREAD

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def data(self) -> Any:
        """The body as JSON; None for an empty body."""
        if self._data is _UNREAD:
            content = self.content
            if not content or content.isspace():
                self._data = None
            else:
                try:
                    self._data = _json.loads(content)
                except ValueError:
                    from ._diagnose import not_json

                    raise not_json(content, _diagnosed(self._call)) from None
        return self._data

    @property
    def index(self) -> int | None:
        """X-Nomad-Index: pass it back as `index=` to wait for a change."""
        return _int_header(self.headers, "X-Nomad-Index")

    @property
    def known_leader(self) -> bool | None:
        value = self.headers.get("X-Nomad-KnownLeader")
        return None if value is None else value.lower() == "true"

    @property
    def last_contact(self) -> int | None:
        """Milliseconds since the answering server last heard from the leader."""
        return _int_header(self.headers, "X-Nomad-LastContact")

    @property
    def next_token(self) -> str | None:
        """X-Nomad-NextToken: present while a paginated list has more pages."""
        return self.headers.get("X-Nomad-NextToken") or None

    def __repr__(self) -> str:
        index = f" index={self.index}" if self.index is not None else ""
        return f"<Response {self.method} {self.path} {self.status}{index}>"


_UNREAD = object()


def _diagnosed(call: tuple):
    """The diagnosis' `Call` for a request known as (settings, method, path, (connect,
    read) timeout, tries): nomadtls._diagnose is imported only once a failure needs it."""
    from ._diagnose import Call

    return Call(*call)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class NomadClient:
    """A client for one Nomad agent, safe to share between threads.

    Every setting is a keyword named as in `nomadtls.settings.SETTINGS`; one not given is
    read from its NOMAD_* variable in `environ` (os.environ by default, read now), else
    its default. `timeout` is seconds, for connecting and for the answer alike, or a
    (connect, read) pair; by default 10 s and 60 s. Reads (GET, HEAD) are tried
    `retries` more times after a dropped or refused connection or a 429, 502, 503 or
    504 answer, pausing `backoff` seconds, doubled each time (or as Retry-After asks, up
    to 10 s); writes only when the connection was refused before anything was sent. A
    refused connection is tried again only after the agent has answered this client once
    (a restart); before that it is reported at once, as Nomad's client does.

    get, put, post and delete return the decoded JSON. `request` returns a `Response`
    with the status, headers and Nomad's metadata as well. Every failure is a NomadError.

    HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read from `environ` as Go reads them (an
    agent on a loopback address is never proxied); nothing else from requests' view of
    the environment (REQUESTS_CA_BUNDLE, ~/.netrc) changes what the client trusts or
    sends. Timeouts are not retried, so a silent agent costs one timeout, not several.
    """

    def __init__(self, address: str | None = None, *, region: str | None = None,
                 namespace: str | None = None, token: str | None = None,
                 http_auth: str | tuple[str, str] | None = None,
                 ca_cert: str | None = None, ca_path: str | None = None,
                 client_cert: str | None = None, client_key: str | None = None,
                 tls_server_name: str | None = None, skip_verify: bool | str | None = None,
                 timeout: Timeout = None, retries: int = 3, backoff: float = 0.2,
                 environ: Mapping[str, str] | None = None,
                 origin: str = "argument") -> None:
        settings = resolve(environ, origin=origin, address=address, region=region,
                           namespace=namespace, token=token, http_auth=http_auth,
                           ca_cert=ca_cert, ca_path=ca_path, client_cert=client_cert,
                           client_key=client_key, tls_server_name=tls_server_name,
                           skip_verify=skip_verify)
        self._start(settings, timeout, retries, backoff, environ)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: Timeout = None, retries: int = 3,
                      backoff: float = 0.2,
                      environ: Mapping[str, str] | None = None) -> "NomadClient":
        """A client for settings already resolved, such as the CLI's. `environ` (by
        default os.environ) is read only for the proxy variables."""
        client = cls.__new__(cls)
        client._start(settings, timeout, retries, backoff, environ)
        return client

    def _start(self, settings: Settings, timeout: Timeout, retries: int, backoff: float,
               environ: Mapping[str, str] | None) -> None:
        self.settings = settings
        self.timeout = _timeout_pair(timeout)
        if retries < 0 or backoff < 0:
            raise ConfigError("retries and backoff cannot be negative")
        self._retries = int(retries)
        self._backoff = float(backoff)
        self._reached = False  # whether the agent has answered this client yet

        for text in settings.warnings:
            warnings.warn(text, NomadWarning, stacklevel=3)
        address = settings.address
        if settings.skip_verify and address.scheme != "unix":
            warnings.warn(
                f"TLS verification is off ({settings.label('skip_verify')}): anyone on the "
                "path can pose as the agent", NomadWarning, stacklevel=3)

        self._context: ssl.SSLContext | None = None
        self._context_lock = threading.Lock()
        uses_tls_files = any((settings.ca_cert, settings.ca_path, settings.client_cert))
        if address.is_tls or (uses_tls_files and address.scheme != "unix"):
            self._context = build_context(settings)

        # The agent's base URL as requests would send it (a non-ASCII name as IDNA).
        base = requests.PreparedRequest()
        base.prepare_url(address.url, None)
        self._base_url = base.url.rstrip("/")
        self._defaults = [(name, value) for name in ("region", "namespace")
                          if (value := getattr(settings, name))]

        # The headers every request carries, made once; a request that adds none sends
        # this very mapping, which nothing changes after this point.
        headers = default_headers()  # requests' Accept-Encoding and Connection
        headers["User-Agent"] = f"nomadtls/{__version__}"
        headers["Accept"] = "application/json"
        if settings.token:
            headers[TOKEN_HEADER] = settings.token
        if settings.http_auth:
            # As UTF-8, as Go sends it: requests would encode text as Latin-1 and fail.
            pair = b":".join(part.encode("utf-8") for part in settings.http_auth)
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self._headers = headers

        self._transport = AgentTransport(
            self._base_url, self._ssl_context, server_name=settings.tls_server_name,
            verify=not settings.skip_verify,
            socket_path=address.socket_path if address.scheme == "unix" else None,
            environ=os.environ if environ is None else environ)

    def _ssl_context(self) -> ssl.SSLContext:
        """The client's one SSLContext, made on first use for a plain http:// agent."""
        if self._context is None:
            with self._context_lock:
                if self._context is None:
                    self._context = build_context(self.settings)
        return self._context

    # ------------------------------------------------------------ requests

    def request(self, method: str, path: str, params: Params = None, json: Any = None, *,
                data: bytes | str | None = None, headers: Mapping[str, str] | None = None,
                index: int | None = None, wait: float | _dt.timedelta | None = None,
                timeout: Timeout = None) -> Response:
        """Send one request and return the agent's `Response`.

        `path` is the API path ("/v1/jobs"); `params` are query parameters (the region
        and namespace settings are added unless given here); `json` is a body to encode.
        `index` and `wait` make a blocking query: the agent answers once its index
        passes `index`, or after `wait` seconds, and the read timeout grows by the wait.
        Raises the NomadError that says what went wrong.
        """
        method = method.upper()
        shown_path = path.split("?", 1)[0]
        url = self._url(path, self._query(params, index, wait))
        sent, body = self._message(method, json, data, headers)
        timeouts = self.timeout if timeout is None else _timeout_pair(timeout)
        if wait is not None:
            # The agent adds up to a sixteenth of the wait, to spread out the answers.
            timeouts = (timeouts[0], timeouts[1] + _seconds(wait) * 17 / 16)

        attempt = 0
        while True:
            attempt += 1
            try:
                raw = self._transport.send(method, url, sent, body, timeouts)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                from ._diagnose import nothing_sent, refused, retryable, translate

                # A refused connection is tried again only once the agent has answered
                # this client: then it is most likely restarting, and the few tries (within
                # `retries` and MAX_PAUSE) ride that out. Before that, nothing listening is
                # the likelier cause, and Nomad's own client reports it at once.
                again = (retryable(exc) and (method in SAFE_METHODS or nothing_sent(exc))
                         and (self._reached or not refused(exc)))
                if again and attempt <= self._retries:
                    pause = self._pause(attempt)
                    log.debug("%s %s%s failed (%s); trying again in %.2f s",
                              method, self.settings.address, shown_path,
                              type(exc).__name__, pause)
                    time.sleep(pause)
                    continue
                log.debug("%s %s%s failed: %s", method, self.settings.address, shown_path,
                          type(exc).__name__)
                call = (self.settings, method, shown_path, timeouts, attempt)
                raise translate(exc, _diagnosed(call)) from exc

            self._reached = True
            log.debug("%s %s%s -> %d", method, self.settings.address, shown_path,
                      raw.status_code)
            if (raw.status_code in RETRY_STATUSES and method in SAFE_METHODS
                    and attempt <= self._retries):
                pause = self._pause(attempt, raw.headers.get("Retry-After"))
                if pause is not None:
                    log.debug("%s %s%s answered %d; trying again in %.2f s", method,
                              self.settings.address, shown_path, raw.status_code, pause)
                    raw.close()
                    time.sleep(pause)
                    continue
            call = (self.settings, method, shown_path, timeouts, attempt)
            if not 200 <= raw.status_code < 300:
                from ._diagnose import api_error

                raise api_error(raw.status_code, raw.headers, raw.text, _diagnosed(call))
            return Response(raw, call)

    def get(self, path: str, params: Params = None, *, index: int | None = None,
            wait: float | _dt.timedelta | None = None, timeout: Timeout = None) -> Any:
        """GET `path` and return the decoded JSON (see `request` for the arguments and
        for the metadata)."""
        return self.request("GET", path, params, index=index, wait=wait,
                            timeout=timeout).data

    def put(self, path: str, json: Any = None, params: Params = None, *,
            timeout: Timeout = None) -> Any:
        """PUT `json` to `path` and return the decoded answer."""
        return self.request("PUT", path, params, json, timeout=timeout).data

    def post(self, path: str, json: Any = None, params: Params = None, *,
             timeout: Timeout = None) -> Any:
        """POST `json` to `path` and return the decoded answer."""
        return self.request("POST", path, params, json, timeout=timeout).data

    def delete(self, path: str, params: Params = None, *, timeout: Timeout = None) -> Any:
        """DELETE `path` and return the decoded answer (None when it is empty)."""
        return self.request("DELETE", path, params, timeout=timeout).data

    def paginate(self, path: str, *, per_page: int | None = None,
                 params: Params = None) -> Iterator[Any]:
        """Yield every item of a paginated list, asking for `per_page` items at a time
        and following X-Nomad-NextToken until the agent sends none."""
        base = _pairs(params)
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = list(base)
            if per_page is not None:
                query.append(("per_page", int(per_page)))
            if token is not None:
                query.append(("next_token", token))
            response = self.request("GET", path, query)
            page = response.data
            if not isinstance(page, list):
                raise InvalidResponse(
                    f"GET {response.path} answered with a {type(page).__name__}, not a list, "
                    "so it cannot be paged through")
            yield from page
            token = response.next_token
            if token is None:
                return
            if token in seen:
                raise InvalidResponse(
                    f"GET {response.path} sent the page token {token!r} twice")
            seen.add(token)

    def watch(self, path: str, *, index: int = 0, wait: float | _dt.timedelta = 300,
              params: Params = None) -> Iterator[Response]:
        """Yield the answer to a blocking query each time the agent's index moves on.

        Each request waits up to `wait` seconds for a change past `index`; an answer
        with the same index (the wait ran out) is not yielded. An index that goes
        backwards (a restored snapshot) restarts from the new one.
        """
        while True:
            response = self.request("GET", path, params, index=index or None, wait=wait)
            current = response.index
            if current is None:
                raise InvalidResponse(
                    f"GET {response.path} sent no X-Nomad-Index, so it cannot be watched")
            if current != index:
                yield response
            index = current

    # ------------------------------------------------------------ helpers

    def _url(self, path: str, query: list[tuple[str, str]]) -> str:
        """The agent's URL for `path` with `query` added, quoted as requests quotes it."""
        if "://" in path and "://" in path.split("?", 1)[0]:
            raise ValueError(f"give an API path such as /v1/jobs, not a URL: {path!r}")
        if not _PLAIN_PATH.fullmatch(path):
            path = requote_uri(path.split("#", 1)[0])
        url = self._base_url + "/" + path.lstrip("/")
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        return url

    def _message(self, method: str, json: Any, data: bytes | str | None,
                 headers: Mapping[str, str] | None) -> tuple[Mapping[str, str], bytes | None]:
        """The headers and the body of a request: the client's headers, then the call's
        (None removes one), and `json` encoded unless `data` is given."""
        body: bytes | None = None
        if not data and json is not None:
            try:
                body = _json.dumps(json, allow_nan=False).encode("utf-8")
            except ValueError as exc:
                raise ValueError(f"the JSON body cannot be sent: {exc}") from None
        elif data:
            if not isinstance(data, (bytes, bytearray, str)):
                raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
            body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if not headers and body is None and method in ("GET", "HEAD"):
            return self._headers, None

        sent = CaseInsensitiveDict(self._headers)
        for name, value in (headers or {}).items():
            if value is None:
                sent.pop(name, None)
            else:
                sent[name] = value
        if body is not None:
            if json is not None and not data:
                sent.setdefault("Content-Type", "application/json")
            sent["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD") and sent.get("Content-Length") is None:
            sent["Content-Length"] = "0"
        return sent, body

    def _query(self, params: Params, index: int | None,
               wait: float | _dt.timedelta | None) -> list[tuple[str, str]]:
        if params is None and index is None and wait is None:
            return self._defaults
        pairs = _pairs(params)
        given = {key for key, _ in pairs}
        added: list[tuple[str, Any]] = [(name, value) for name, value in self._defaults
                                        if name not in given]
        if index is not None:
            added.append(("index", int(index)))
        if wait is not None:
            added.append(("wait", f"{round(_seconds(wait) * 1000)}ms"))
        return [(key, _query_value(value)) for key, value in added + pairs]

    def _pause(self, attempt: int, retry_after: str | None = None) -> float | None:
        """Seconds to wait before the next try: Retry-After when the agent sent one (None
        when it asks for longer than MAX_PAUSE: better to report than hang), else an
        exponential backoff with jitter."""
        if retry_after:
            asked = _retry_after_seconds(retry_after)
            if asked is not None:
                return asked if asked <= MAX_PAUSE else None
        pause = min(self._backoff * 2 ** (attempt - 1), MAX_PAUSE)
        return pause * random.uniform(0.5, 1.0)

    def close(self) -> None:
        """Close the idle connections. The client can still be used afterwards."""
        self._transport.close()

    def __enter__(self) -> "NomadClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        region = self.settings.region or "default"
        return f"<NomadClient address={str(self.settings.address)!r} region={region!r}>"


# A path that requests would send exactly as written: nothing to quote, no fragment.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/?&=:@!$'()*+,;]*")


def _pairs(params: Params) -> list[tuple[str, Any]]:
    """Query parameters as (key, value) pairs; a list value gives one pair per item,
    None drops the key."""
    items = params.items() if isinstance(params, Mapping) else (params or ())
    pairs = []
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        pairs.extend((key, item) for item in values if item is not None)
    return pairs


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _seconds(wait: float | _dt.timedelta) -> float:
    seconds = wait.total_seconds() if isinstance(wait, _dt.timedelta) else float(wait)
    if seconds < 0:
        raise ValueError(f"wait cannot be negative: {wait!r}")
    return seconds


def _timeout_pair(timeout: Timeout) -> tuple[float, float]:
    """(connect, read) seconds from None (the defaults), a number, or a pair."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    pair = timeout if isinstance(timeout, (tuple, list)) else (timeout, timeout)
    try:
        connect, read = (float(value) for value in pair)
    except (TypeError, ValueError):
        raise ConfigError(f"timeout {timeout!r} is neither a number of seconds nor a "
                          "(connect, read) pair") from None
    if not (connect > 0 and read > 0):
        raise ConfigError(f"timeout {timeout!r} must be more than 0 seconds")
    return connect, read


def _retry_after_seconds(value: str) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds())

"""What every request to Execlave shares: the base URL, the key (held redacted), the headers
(built once), bounded timeouts, the ``{"data": ...}`` envelope, and URL redaction for messages.

Pure httpx: no OpenTelemetry, no AutoGen.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._version import __version__

USER_AGENT = f"execlave-sdk-python/{__version__}"
_log = logging.getLogger("execlave.connection")


class Secret:
    """Holds the API key; its repr and str never show it (so ``vars()``, debuggers and tracebacks
    with locals don't either)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


def parse_api_key(value: object) -> tuple[Secret | None, str | None]:
    """``(key, problem)``: the key as a :class:`Secret` (surrounding whitespace stripped: keys read
    from files or Kubernetes secrets often end in a newline), ``None`` when empty; or a problem to
    raise. Never raises itself, so the raw key is in no frame of a traceback; the problem text never
    echoes the key."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, f"api_key must be a string; got {type(value).__name__}"
    value = value.strip()
    if not value:
        return None, None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        value = ""
        return None, (
            "api_key contains whitespace or control characters inside it (the key is not shown); "
            "copy the key again from the Execlave dashboard or fix EXECLAVE_API_KEY"
        )
    secret = Secret(value)
    value = ""
    return secret, None


def redact_url(url: str) -> str:
    """``url`` without credentials (``https://user:pass@host`` -> ``https://***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def normalise_base_url(url: str) -> str:
    """Validate ``base_url`` (http or https with a host); credentials in it are refused (the
    key is the only credential Execlave takes, and URLs end up in messages). ``http://`` to
    Execlave's own host becomes ``https://`` (as the published client does); plain http to any
    other host that is not loopback is logged at WARNING: the key would travel unencrypted."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise ValueError(f"base_url is not a URL: {redact_url(url)!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url must be an http(s) URL such as 'https://api.execlave.com'; got {redact_url(url)!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"base_url must not carry credentials ({redact_url(url)!r}); pass the API key as api_key= "
            "or EXECLAVE_API_KEY"
        )
    host = parts.hostname.lower()
    if parts.scheme == "http" and host == "api.execlave.com":
        return urlunsplit(("https", parts.netloc, parts.path, parts.query, parts.fragment)).rstrip("/")
    if parts.scheme == "http" and host not in _LOOPBACK and not host.startswith("127."):
        _log.warning(
            "execlave: base_url %r is plain http: the API key and every request travel unencrypted; "
            "use https unless a TLS-terminating proxy on this host or network is meant",
            redact_url(url),
        )
    return url.strip().rstrip("/")


def unwrap(body: Any) -> Any:
    """The payload of a ``{"data": ...}`` envelope, or the body itself."""
    if isinstance(body, Mapping) and "data" in body:
        return body["data"]
    return body


class Api:
    """One base URL and key; a sync ``httpx.Client`` and one ``httpx.AsyncClient`` per event
    loop (connection pools, so concurrent rounds never share one connection)."""

    def __init__(
        self,
        base_url: str,
        key: Secret,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._timeout = httpx.Timeout(timeout)
        self.timeout = timeout
        # The key is revealed only into httpx's headers (whose repr masks it), never kept in a
        # plain attribute (``vars()``, debuggers and tracebacks with locals would show it).
        self._key = key
        self._client = httpx.Client(timeout=self._timeout, transport=transport, headers=self._headers())
        self._async_transport = async_transport
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _headers(self) -> httpx.Headers:
        return httpx.Headers(
            {
                "Authorization": f"Bearer {self._key.reveal()}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )

    def __repr__(self) -> str:
        return f"Api(base_url={redact_url(self.base_url)!r}, api_key=<redacted>)"

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._client.request(method, self.url(path), **kw)

    async def arequest(self, method: str, path: str, **kw: Any) -> httpx.Response:
        client = await self._async_client()
        return await client.request(method, self.url(path), **kw)

    async def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async.get(loop)
            if entry is not None:
                return entry[0]
            for old in [lp for lp in list(self._async) if lp.is_closed()]:
                del self._async[old]  # a loop closed without shutdown_asyncgens(): let GC reclaim it
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            client = httpx.AsyncClient(
                timeout=self._timeout,
                transport=self._async_transport,
                headers=self._headers(),
                limits=limits,
            )
            closer = self._close_with(loop, client)
            self._async[loop] = (client, closer)
        await closer.__anext__()  # registered with the loop from here on
        return client

    async def _close_with(
        self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
    ) -> AsyncGenerator[None, None]:
        """Suspended for the loop's life. ``asyncio.run`` (``loop.shutdown_asyncgens()``) closes it
        while the loop still runs: the pool and its sockets close with their loop. Without it the
        pool would hold the loop (its sockets reference it) and leak a pool per ``asyncio.run``."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._async.get(loop)
                if entry is not None and entry[0] is client:
                    del self._async[loop]
            await client.aclose()

    def close(self) -> None:
        self._client.close()

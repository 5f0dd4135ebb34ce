"""What every request to Execlave shares: the base URL, the key (held redacted), the headers
(built once), bounded timeouts, the ``{"data": ...}`` envelope, and URL redaction for messages.

Pure httpx: no OpenTelemetry, no AutoGen.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._version import __version__

__all__ = ["Api", "Secret", "parse_api_key", "redact_url", "unwrap"]

USER_AGENT = f"execlave-sdk-python/{__version__}"


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


def normalise_base_url(url: str) -> str:
    """Validate ``base_url`` (http or https with a host); credentials in it are refused (the
    key is the only credential Execlave takes, and URLs end up in messages)."""
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
        # Built once; the only place the key is revealed.
        self._headers = {
            "Authorization": f"Bearer {key.reveal()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._client = httpx.Client(timeout=self._timeout, transport=transport, headers=self._headers)
        self._async_transport = async_transport
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Api(base_url={redact_url(self.base_url)!r}, api_key=<redacted>)"

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._client.request(method, self.url(path), **kw)

    async def arequest(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self._async_client().request(method, self.url(path), **kw)

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
                client = httpx.AsyncClient(
                    timeout=self._timeout,
                    transport=self._async_transport,
                    headers=self._headers,
                    limits=limits,
                )
                self._async[loop] = client
            return client

    def close(self) -> None:
        self._client.close()

"""Execlave's trace ingest as an OpenTelemetry ``SpanExporter``.

Each finished execlave span becomes one trace record (:mod:`.trace_records`), posted in batches
to ``POST {base_url}/api/v1/traces/ingest`` with the body ``{"traces": [...]}``, and the answers
are read as Execlave's published client (1.9.1) reads them: per-trace ``errors[]``, 401/403,
402, other 4xx, 408/429/5xx. ``docs/telemetry.md`` documents the records and the answers.

The exporter reads no ``OTEL_*`` variable: the key goes only in ``Authorization: Bearer`` and
only to ``base_url``; redirects are not followed. Every export is bounded by ``timeout`` seconds
in total (retries included) and ends at once on :meth:`TraceIngestExporter.shutdown`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._version import __version__
from .trace_records import MAX_CONTENT_CHARS as MAX_CONTENT_CHARS
from .trace_records import TRACE_STATUSES as TRACE_STATUSES
from .trace_records import Masker, span_to_record

logger = logging.getLogger("execlave")

INGEST_PATH = "/api/v1/traces/ingest"
OTLP_ENDPOINT_ENV = "EXECLAVE_OTLP_ENDPOINT"
MAX_TRACES_PER_REQUEST = 100
"""Records per request (the published client's batch size)."""
MAX_REQUEST_BYTES = 1 << 20
"""A request body stays below 1 MiB (a bigger batch is split over several requests)."""
PLAN_LIMIT_PAUSE = 60.0
"""After a 402 (trace quota used up) nothing is posted for this many seconds."""
_ATTEMPTS = 3


# -- the exporter --------------------------------------------------------------------------


class _Key:
    """The API key, redacted in every repr (``vars(exporter)``, debuggers, tracebacks with locals)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def header(self) -> str:
        return f"Bearer {self._value}"

    def __repr__(self) -> str:
        return "'***'"


def _check_key(api_key: str) -> str:
    key = api_key.strip() if isinstance(api_key, str) else ""
    if not key:
        raise ValueError("the trace ingest exporter needs an Execlave API key")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValueError(
            "the Execlave API key contains whitespace or control characters; copy it again from the dashboard"
        )
    return key


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be an http(s) URL such as https://api.execlave.com")
    if parts.scheme == "http" and parts.hostname == "api.execlave.com":
        url = urlunsplit(("https", parts.netloc, parts.path, parts.query, parts.fragment))
    return url


def _chunks(parts: Sequence[bytes], max_items: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for part in parts:
        if chunk and (len(chunk) >= max_items or size + len(part) + 16 > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(part)
        size += len(part) + 1
    if chunk:
        yield chunk


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return 0.0


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    data = body.get("data")
    if isinstance(data, dict) and ("errors" in data or "accepted" in data or "failed" in data):
        return data
    return body


def _rejections(body: Mapping[str, Any]) -> list[dict[str, str]]:
    listed = body.get("errors")
    out = []
    for item in listed if isinstance(listed, list) else ():
        if isinstance(item, dict):
            code = item.get("code")
            out.append(
                {
                    "traceId": str(item.get("traceId") or "")[:64],
                    "code": code[:64] if isinstance(code, str) else "",
                    "message": str(item.get("error") or item.get("message") or "rejected")[:200],
                }
            )
    return out


def _error_code(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code[:64] if isinstance(code, str) else ""


class TraceIngestExporter(SpanExporter):
    """Posts execlave's spans to Execlave's trace-ingest API as trace records.

    Args:
        api_key: Execlave API key, sent only as ``Authorization: Bearer`` to ``base_url``.
        base_url: Execlave API base URL (``https://api.execlave.com``).
        environment: recorded as ``environment`` on every record.
        capture_content: send ``input`` / ``output`` (PII-masked); off by default.
        masker: the PII masker applied to content, error and violation messages.
        timeout: bound, in seconds, on one :meth:`export` call, retries included.
        max_traces_per_request: records per request (at most 100).

    Use it behind execlave's bounded batch processor; :meth:`stats` counts what Execlave
    accepted (``traces_sent``), refused (``traces_rejected``: per-trace ``errors[]`` or a 4xx
    for the whole batch) and what never reached it (``traces_undelivered``, with
    ``trace_posts_failed`` requests that failed after retries or were not attempted).
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        environment: str | None = "production",
        capture_content: bool = False,
        masker: Masker,
        timeout: float = 5.0,
        max_traces_per_request: int = MAX_TRACES_PER_REQUEST,
    ) -> None:
        if not 1 <= max_traces_per_request <= MAX_TRACES_PER_REQUEST:
            raise ValueError(f"max_traces_per_request must be between 1 and {MAX_TRACES_PER_REQUEST}")
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        self._key = _Key(_check_key(api_key))
        self._url = _check_base_url(base_url) + INGEST_PATH
        self._environment = environment
        self.capture_content = bool(capture_content)
        self._masker = masker
        self._timeout = float(timeout)
        self._per_request = max_traces_per_request
        # trust_env covers proxies and SSL_CERT_FILE only; httpx reads no OTEL_* variable.
        self._http = httpx.Client(follow_redirects=False, timeout=self._timeout)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._plan_limited_until = 0.0
        self._warned: set[str] = set()
        self._counts = {
            "traces_sent": 0,
            "traces_rejected": 0,
            "traces_undelivered": 0,
            "trace_posts_failed": 0,
        }

    def __repr__(self) -> str:
        return f"TraceIngestExporter(path={INGEST_PATH!r}, capture_content={self.capture_content})"

    # -- SpanExporter --------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        deadline = time.monotonic() + self._timeout
        parts: list[bytes] = []
        for span in spans:
            try:
                record = span_to_record(
                    span,
                    environment=self._environment,
                    capture_content=self.capture_content,
                    masker=self._masker,
                )
                parts.append(json.dumps(record, ensure_ascii=False, allow_nan=False).encode())
            except Exception:
                logger.debug("execlave: could not build a trace record for span %r", span.name, exc_info=True)
                self._count(traces_undelivered=1)
        ok = len(parts) == len(spans)
        for chunk in _chunks(parts, self._per_request):
            ok = self._send(chunk, deadline) and ok
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._stop.set()
        try:
            self._http.close()
        except Exception:
            logger.debug("execlave: closing the trace ingest client failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here: the batch processor holds the queue

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    # -- internals -----------------------------------------------------------------------

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta

    def _warn_once(self, topic: str, message: str, *args: object) -> None:
        level = logging.DEBUG if topic in self._warned else logging.WARNING
        self._warned.add(topic)
        logger.log(level, message, *args)

    def _undelivered(self, n: int) -> bool:
        self._count(traces_undelivered=n, trace_posts_failed=1)
        return False

    def _send(self, chunk: list[bytes], deadline: float) -> bool:
        n = len(chunk)
        if time.monotonic() < self._plan_limited_until:
            return self._undelivered(n)
        body = b'{"traces":[' + b",".join(chunk) + b"]}"
        headers = {
            "Authorization": self._key.header(),
            "Content-Type": "application/json",
            "User-Agent": f"execlave-sdk-python/{__version__}",
        }
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                return self._undelivered(n)
            wait = 0.0
            try:
                response = self._http.post(
                    self._url, content=body, headers=headers, timeout=min(self._timeout, remaining)
                )
            except Exception as exc:  # network, timeout, a client closed by shutdown
                problem = type(exc).__name__
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._accepted(n, _body(response))
                    return True
                if status in (401, 403):
                    self._warn_once(
                        "auth",
                        "execlave: Execlave refused the API key for trace ingest (HTTP %d); spans are not "
                        "stored. Check EXECLAVE_API_KEY (a key of this project, not revoked).",
                        status,
                    )
                    return self._undelivered(n)
                if status == 402:
                    self._plan_limited_until = time.monotonic() + PLAN_LIMIT_PAUSE
                    self._warn_once(
                        "quota",
                        "execlave: Execlave's trace quota is used up (HTTP 402); spans are dropped for "
                        "the next %d s and counted in stats()",
                        int(PLAN_LIMIT_PAUSE),
                    )
                    return self._undelivered(n)
                if 400 <= status < 500 and status not in (408, 429):
                    self._refused(n, status, _body(response))
                    return False
                problem = f"HTTP {status}"
                wait = _retry_after(response)
            attempt += 1
            if attempt >= _ATTEMPTS:
                self._warn_once(
                    "outage",
                    "execlave: trace ingest failed after %d attempts (%s); spans dropped, counted in stats()",
                    attempt,
                    problem,
                )
                return self._undelivered(n)
            delay = max(0.5 * 2**attempt, wait)
            if delay >= deadline - time.monotonic():
                return self._undelivered(n)
            if self._stop.wait(delay):
                return self._undelivered(n)

    def _accepted(self, n: int, body: Mapping[str, Any]) -> None:
        rejected = _rejections(body)
        count = len(rejected)
        if not count:
            failed = body.get("failed")
            count = failed if isinstance(failed, int) and not isinstance(failed, bool) and failed > 0 else 0
        count = min(count, n)
        self._count(traces_sent=n - count, traces_rejected=count)
        if count:
            first = rejected[0] if rejected else {"traceId": "", "code": "", "message": "rejected"}
            self._warn_once(
                "rejected",
                "execlave: Execlave stored %d of %d trace records and refused %d (first: %s %s %s); "
                "refusals are counted in stats()['traces_rejected']",
                n - count,
                n,
                count,
                first["traceId"],
                first["code"],
                first["message"],
            )

    def _refused(self, n: int, status: int, body: Mapping[str, Any]) -> None:
        named = len(_rejections(body))
        self._count(traces_rejected=n)
        self._warn_once(
            "refused",
            "execlave: Execlave refused a batch of %d trace records (HTTP %d %s, %d named); not retried, "
            "counted in stats()['traces_rejected']",
            n,
            status,
            _error_code(body),
            named,
        )


def execlave_span_exporter(
    api_key: str,
    *,
    base_url: str,
    environment: str | None,
    capture_content: bool,
    masker: Masker,
    timeout: float,
    otlp_endpoint: str | None = None,
) -> SpanExporter:
    """The exporter that sends execlave's spans to Execlave: the trace-ingest API, or OTLP/HTTP
    to an Execlave OTLP endpoint when the user names one (``otlp_endpoint``, else
    ``EXECLAVE_OTLP_ENDPOINT``), never both."""
    otlp_endpoint = otlp_endpoint or os.environ.get(OTLP_ENDPOINT_ENV, "").strip() or None
    if otlp_endpoint:
        from .execlave_otlp import ExeclaveOtlpExporter

        return ExeclaveOtlpExporter(endpoint=otlp_endpoint, api_key=_check_key(api_key), timeout=timeout)
    return TraceIngestExporter(
        api_key=api_key,
        base_url=base_url,
        environment=environment,
        capture_content=capture_content,
        masker=masker,
        timeout=timeout,
    )

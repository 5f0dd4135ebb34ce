"""OTLP/HTTP to an Execlave OTLP endpoint the user configured (``EXECLAVE_OTLP_ENDPOINT``).

Used instead of the trace-ingest API only when the user names such an endpoint; execlave never
assumes one. Unlike the stock OTLP exporter it reads no ``OTEL_*`` variable (a collector's
headers, CA certificate, client certificate, compression or credential provider never reach
Execlave): the key goes only in ``Authorization: Bearer``, only to this endpoint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._version import __version__

logger = logging.getLogger("execlave")


def traces_url(endpoint: str) -> str:
    """``endpoint`` with ``/v1/traces`` appended unless it already ends with it."""
    base = endpoint.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError("EXECLAVE_OTLP_ENDPOINT must be an http(s) URL, e.g. https://otlp.example.com")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


class ExeclaveOtlpExporter(SpanExporter):
    """Posts spans as OTLP/HTTP protobuf to ``{endpoint}/v1/traces``, one request per export,
    bounded by ``timeout`` seconds; redirects are not followed."""

    def __init__(self, *, endpoint: str, api_key: str, timeout: float = 5.0) -> None:
        self._url = traces_url(endpoint)
        # httpx.Headers masks Authorization in its repr (``vars()``, tracebacks with locals).
        self._headers = httpx.Headers(
            {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/x-protobuf",
                "User-Agent": f"execlave-sdk-python/{__version__}",
            }
        )
        self._http = httpx.Client(follow_redirects=False, timeout=timeout)
        self._closed = threading.Event()
        self._warned = False

    def __repr__(self) -> str:
        return "ExeclaveOtlpExporter()"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed.is_set():
            return SpanExportResult.FAILURE
        try:
            body = encode_spans(spans).SerializeToString()
            response = self._http.post(self._url, content=body, headers=self._headers)
        except Exception as exc:
            self._warn("%s", type(exc).__name__)
            return SpanExportResult.FAILURE
        if 200 <= response.status_code < 300:
            return SpanExportResult.SUCCESS
        self._warn("HTTP %d", response.status_code)
        return SpanExportResult.FAILURE

    def _warn(self, what: str, arg: object) -> None:
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        logger.log(level, "execlave: OTLP export to the Execlave OTLP endpoint failed (" + what + ")", arg)

    def shutdown(self) -> None:
        self._closed.set()
        try:
            self._http.close()
        except Exception:
            logger.debug("execlave: closing the Execlave OTLP client failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

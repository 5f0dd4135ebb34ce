"""Telemetry settings: what the client passes in, plus the standard OTel environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = {"true", "span_only", "event_only", "span_and_event"}
DEFAULT_SERVICE_NAME = "execlave-app"


@dataclass
class TelemetryConfig:
    """How execlave traces. Every field is optional; the Execlave exporter never appears in the repr."""

    service_name: str | None = None
    """``service.name`` when execlave owns the provider; else ``OTEL_SERVICE_NAME``, else ``execlave-app``."""
    environment: str = "production"
    execlave_exporter: SpanExporter | None = field(default=None, repr=False)
    """The exporter to Execlave (built by the client from the connection package: the trace-ingest
    API, or an Execlave OTLP endpoint the user configured). It gets execlave-scope spans only,
    behind the bounded batch processor; telemetry itself never holds the API key."""
    otlp_endpoint: str | None = None
    """Collector endpoint (base URL); defaults to the standard ``OTEL_EXPORTER_OTLP_*`` variables.
    Used only when execlave owns the tracer provider."""
    otlp_protocol: str | None = None
    """``http/protobuf`` (default) or ``grpc``; defaults to ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``."""
    otlp_headers: Mapping[str, str] | None = field(default=None, repr=False)
    console: bool = False
    capture_content: bool | None = None
    tracer_provider: Any = None
    """An ``opentelemetry.trace.TracerProvider``; defaults to the app's global one if it set one."""
    meter_provider: Any = None
    """An ``opentelemetry.metrics.MeterProvider`` for execlave's metrics; defaults to the global one."""
    export_timeout: float = 5.0
    """Bound on one export request (including the exporter's retries)."""
    max_queue_size: int = 2048
    max_queue_bytes: int = 16 * 1024 * 1024
    """Bound on the estimated encoded size of the spans waiting for export, per exporter."""
    max_export_batch_size: int = 512
    max_export_batch_bytes: int = 1024 * 1024
    """Bound on one export request's estimated size (collectors reject requests over 4 MiB by default)."""
    max_attribute_length: int | None = None
    """Characters per attribute value: captured content is cut to it (on any provider), and on a
    provider execlave creates it is OTel's ``SpanLimits.max_attribute_length`` for every attribute.
    Defaults to ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` / ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``,
    else 8192."""
    max_tool_spans_per_round: int = 128
    """Per-call spans under one round span; further calls are checked as always and counted on the
    round span (a call that is not allowed still gets its span, up to twice this number)."""
    schedule_delay: float = 1.0
    """Seconds between background exports when the batch is not full."""
    shutdown_timeout: float = 5.0
    """Bound used by the atexit shutdown and by a provider-driven ``shutdown()``."""


def resolve_capture_content(value: bool | None) -> bool:
    """Explicit setting wins; else the GenAI semconv env variable
    (``true``, ``SPAN_ONLY``, ``EVENT_ONLY`` or ``SPAN_AND_EVENT``, any case)."""
    if value is not None:
        return bool(value)
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON

"""Suite-wide fixtures: an SDK TracerProvider with an in-memory exporter (``provider`` /
``exporter``), OTel isolation (``clean_otel_env``, ``no_global_provider``), and a guard: no test
may log an API key. Every log record emitted during a test (setup, call and teardown, any logger,
any thread, DEBUG and up) is checked against ``support.secrets.KNOWN_KEYS``; a test in which one
appears fails."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from support.secrets import KNOWN_KEYS


class _KeyScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = [record.getMessage(), repr(record.args), str(record.msg)]
        except Exception:  # a record with broken %-args: still look at its raw parts
            parts = [str(record.msg), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        text = "\n".join(parts)
        for key in KNOWN_KEYS:
            if key in text:
                self.leaks.append(f"{record.name}:{record.levelname}: {text[:300]!r}")


@pytest.fixture(autouse=True)
def _no_api_key_in_logs() -> Iterator[None]:
    root = logging.getLogger()
    scan = _KeyScan()
    previous = root.level
    root.addHandler(scan)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(scan)
        root.setLevel(previous)
    if scan.leaks:
        pytest.fail("an API key appeared in a log record:\n" + "\n".join(scan.leaks), pytrace=False)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


# Every OTel variable the SDK or execlave reads: cleared so the machine's environment cannot steer a test.
OTEL_ENV = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_METRICS_EXPORTER",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_PYTHON_TRACER_PROVIDER",
)


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_global_provider(clean_otel_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracer provider set by the app, no OTel environment: execlave owns its provider."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())

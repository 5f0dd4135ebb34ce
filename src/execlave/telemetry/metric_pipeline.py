"""execlave's own metrics pipeline: used only when execlave owns the tracing pipeline.

When the application set no tracer provider (execlave builds its own, see ``core.py``), no
``meter_provider=`` was given, no global ``MeterProvider`` is set and a collector endpoint is
configured (``otlp_endpoint=`` or ``OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT``), execlave's metrics
go to that collector with the traces: an SDK ``MeterProvider`` (never installed globally) with a
``PeriodicExportingMetricReader`` and an OTLP metric exporter, configured by the standard
``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_METRICS_*`` / ``OTEL_METRIC_EXPORT_INTERVAL``
variables (``OTEL_METRICS_EXPORTER=none`` turns it off). Metrics never go to Execlave and never
carry the Execlave key. Flush and shutdown run in a daemon thread and are waited for at most
the caller's timeout, so an endpoint that never answers cannot hold the caller.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import metrics

logger = logging.getLogger("execlave")

_PROTOCOLS = {"http/protobuf", "grpc"}


def _global_meter_provider_set() -> bool:
    try:
        return type(metrics.get_meter_provider()).__name__ != "_ProxyMeterProvider"
    except Exception:
        return True


def build_meter_pipeline(
    *,
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
    export_timeout: float,
    resource: Any,
) -> MeterPipeline | None:
    """The pipeline, or None when there is nowhere to send metrics (or the app owns metrics)."""
    env_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint and not env_endpoint:
        return None
    if os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none":
        return None
    if _global_meter_provider_set():
        return None
    protocol = (
        (
            protocol
            or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        .strip()
        .lower()
    )
    if protocol not in _PROTOCOLS:
        raise ValueError(f"unsupported OTLP protocol {protocol!r}; use 'http/protobuf' or 'grpc'")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    if not endpoint:  # resolved here, so an empty METRICS variable falls back to the generic one
        signal = (os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or "").strip()
        generic = (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
        if signal:
            endpoint, explicit_signal_url = signal, True
        else:
            endpoint, explicit_signal_url = generic, False
    else:
        explicit_signal_url = False
    header_dict = dict(headers) if headers else None
    exporter: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        exporter = GrpcMetricExporter(endpoint=endpoint, headers=header_dict, timeout=export_timeout)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        if explicit_signal_url:
            url = endpoint  # the full URL, as the standard variable says
        else:
            base = endpoint.rstrip("/").removesuffix("/v1/traces")
            url = base if base.endswith("/v1/metrics") else f"{base}/v1/metrics"
        exporter = OTLPMetricExporter(endpoint=url, headers=header_dict, timeout=export_timeout)
    reader = PeriodicExportingMetricReader(exporter, export_timeout_millis=export_timeout * 1000)
    kwargs: dict[str, Any] = {"metric_readers": [reader], "shutdown_on_exit": False}
    if resource is not None:
        kwargs["resource"] = resource
    return MeterPipeline(MeterProvider(**kwargs))


class MeterPipeline:
    """An SDK ``MeterProvider`` whose flush and shutdown never hold the caller past its timeout."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._shut = False

    def _in_background(self, name: str, call: Callable[[], Any]) -> Callable[[float], bool]:
        """Start ``call`` in a daemon thread; returns ``wait(seconds) -> succeeded in time``."""
        outcome: list[bool] = []

        def target() -> None:
            try:
                outcome.append(call() is not False)
            except Exception:
                logger.debug("execlave: metrics %s failed", name, exc_info=True)
                outcome.append(False)

        thread = threading.Thread(target=target, name=f"execlave-metrics-{name}", daemon=True)
        thread.start()

        def wait(seconds: float) -> bool:
            thread.join(max(seconds, 0.0))
            return bool(outcome) and outcome[0]

        return wait

    def start_flush(self, timeout: float) -> Callable[[float], bool]:
        if self._shut:
            return lambda seconds: True
        millis = max(timeout, 0.0) * 1000
        return self._in_background("flush", lambda: self.provider.force_flush(millis))

    def start_shutdown(self, timeout: float) -> Callable[[float], bool]:
        if self._shut:
            return lambda seconds: True
        self._shut = True
        millis = max(timeout, 0.0) * 1000
        return self._in_background("shutdown", lambda: self.provider.shutdown(timeout_millis=millis))

"""Metrics go over OTLP with the traces when execlave owns the pipeline: its own SDK
MeterProvider (never global) with a periodic reader and an OTLP metric exporter, flushed and shut
down within ``flush(timeout)`` / ``shutdown(timeout)``, configured by the standard OTLP variables.

The bounds are correctness bounds (the exporter's own timeout is 30 s), not speed targets."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from support.otlp import BlackHole, HttpReceiver
from support.policies import TOOL_DENY

from .conftest import block, decision

SLACK = 3.0


def _global_meter_provider_is_unset() -> bool:
    return type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"


def _record_block(tel: Any) -> None:
    with (
        pytest.raises(PolicyBlockedError),
        tel.governed_span(
            "check_tool shell",
            attributes={"gen_ai.operation.name": "check_tool", "gen_ai.agent.id": "ops"},
            check=lambda: decision("block", block()),
        ),
    ):
        pass


def test_metrics_are_exported_over_otlp_with_the_traces(no_global_provider: None) -> None:
    assert _global_meter_provider_is_unset()
    with HttpReceiver() as receiver:
        exe = Execlave(policies=[TOOL_DENY], otlp_endpoint=receiver.endpoint, service_name="ops-app")
        try:
            with pytest.raises(PolicyBlockedError):
                exe.enforce_policy("ops", "clean up", tools=["delete_logs"])
            assert exe.flush(10.0) is True
        finally:
            exe.shutdown(5.0)
        found = receiver.metrics
        requests = receiver.metric_requests
    decisions = [m for m in found if m.name == "execlave.policy.decisions"]
    assert decisions and decisions[0].scope == "execlave" and decisions[0].unit == "{decision}"
    assert decisions[0].resource["service.name"] == "ops-app"
    assert ({"gen_ai.agent.id": "ops", "execlave.policy.decision": "block"}, 1) in decisions[0].points
    assert any(m.name == "execlave.spans.exported" for m in found)
    # never the Execlave key (none is configured here, and none is ever sent to the collector)
    assert requests and not any("authorization" in r["headers"] for r in requests)
    assert _global_meter_provider_is_unset()  # never installed globally


def test_metrics_endpoint_variables_are_honoured(no_global_provider: None, monkeypatch: Any) -> None:
    with HttpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"{receiver.endpoint}/v1/metrics")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-tenant=ops")
        exe = Execlave(policies=[TOOL_DENY])
        try:
            with pytest.raises(PolicyBlockedError):
                exe.enforce_policy("ops", "clean up", tools=["delete_logs"])
            exe.flush(10.0)
        finally:
            exe.shutdown(5.0)
        assert receiver.metric_requests[0]["headers"]["x-tenant"] == "ops"
        assert not receiver.requests  # no trace endpoint configured: metrics only


def test_flush_and_shutdown_bounded_against_black_hole(make_telemetry: Any, no_global_provider: None) -> None:
    with BlackHole() as hole:
        tel = make_telemetry(otlp_endpoint=hole.endpoint, export_timeout=30.0, schedule_delay=0.01)
        assert tel._meters is not None
        _record_block(tel)
        t0 = time.monotonic()
        assert tel.flush(0.5) is False
        flush_s = time.monotonic() - t0
        t0 = time.monotonic()
        assert tel.shutdown(0.5) is False
        shutdown_s = time.monotonic() - t0
        assert hole.accepted >= 1
    assert flush_s < 0.5 + SLACK
    assert shutdown_s < 0.5 + SLACK


@pytest.mark.parametrize("case", ["app_tracer_provider", "meter_provider_given", "no_endpoint", "disabled"])
def test_no_own_metrics_pipeline_unless_execlave_owns_it(
    make_telemetry: Any, no_global_provider: None, monkeypatch: Any, case: str
) -> None:
    kwargs: dict[str, Any] = {"otlp_endpoint": "http://127.0.0.1:9"}
    if case == "app_tracer_provider":
        kwargs["tracer_provider"] = TracerProvider()
    elif case == "meter_provider_given":
        reader = InMemoryMetricReader()
        kwargs["meter_provider"] = MeterProvider(metric_readers=[reader])
    elif case == "no_endpoint":
        del kwargs["otlp_endpoint"]
    else:
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    tel = make_telemetry(**kwargs)
    assert tel._meters is None
    if case == "meter_provider_given":
        _record_block(tel)
        assert reader.get_metrics_data() is not None  # the given provider got them

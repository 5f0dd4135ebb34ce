"""Wire tests against real in-process OTLP receivers (protobuf decoded with opentelemetry-proto)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from execlave.connection.execlave_otlp import ExeclaveOtlpExporter
from execlave.errors import PolicyBlockedError
from execlave.policy.types import ALLOW
from support.otlp import GrpcReceiver, HttpReceiver
from support.secrets import WIRE_KEY

from .conftest import block, decision

KEY = WIRE_KEY


def _round(tel) -> None:
    with (
        pytest.raises(PolicyBlockedError),
        tel.governed_span("invoke_agent ops", check=lambda: ALLOW),
        tel.governed_span("execute_tool shell", check=lambda: decision("block", block("deny-shell"))),
    ):
        pass


def test_execlave_endpoint_gets_key_header_and_only_execlave_spans(make_telemetry, set_global):
    app = TracerProvider()
    set_global(app)
    with HttpReceiver() as execlave_rx:
        exporter = ExeclaveOtlpExporter(endpoint=execlave_rx.endpoint + "/", api_key=KEY)
        tel = make_telemetry(execlave_exporter=exporter)
        assert tel.tracer_provider is app
        with trace.get_tracer("app.web").start_as_current_span("GET /chat") as app_span:
            _round(tel)
        assert tel.flush(5.0)
        spans = execlave_rx.wait_for(2)
    assert {s.name for s in spans} == {"invoke_agent ops", "execute_tool shell"}
    assert {s.scope for s in spans} == {"execlave"}
    assert all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in execlave_rx.requests)
    by = {s.name: s for s in spans}
    app_id = app_span.get_span_context().span_id.to_bytes(8, "big")
    assert by["invoke_agent ops"].parent_span_id == app_id  # child of the app's span
    assert by["execute_tool shell"].parent_span_id == by["invoke_agent ops"].span_id
    assert by["execute_tool shell"].trace_id == by["invoke_agent ops"].trace_id
    assert by["execute_tool shell"].status_code == 2  # STATUS_CODE_ERROR
    assert by["execute_tool shell"].attributes["execlave.policy.decision"] == "block"
    (event,) = [e for e in by["execute_tool shell"].events if e[0] == "execlave.policy.violation"]
    assert event[1]["execlave.policy.id"] == "deny-shell"
    assert [e[0] for e in by["execute_tool shell"].events] == ["execlave.policy.violation", "exception"]
    assert tel.stats()["spans_exported"] == 2
    assert trace.get_tracer_provider() is app


def test_own_provider_collector_http_and_execlave_key_isolation(
    make_telemetry, no_global_provider, monkeypatch
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=col-abc")
    with HttpReceiver() as collector, HttpReceiver() as execlave_rx:
        tel = make_telemetry(
            execlave_exporter=ExeclaveOtlpExporter(endpoint=execlave_rx.endpoint, api_key=KEY),
            otlp_endpoint=collector.endpoint,
            environment="staging",
        )
        assert tel.owns_provider
        _round(tel)
        other = tel.tracer_provider.get_tracer("someone.else")
        with other.start_as_current_span("foreign"):
            pass
        assert tel.flush(5.0)
        col_spans = collector.wait_for(2)
        exe_spans = execlave_rx.wait_for(2)
    assert (
        {s.name for s in col_spans}
        == {s.name for s in exe_spans}
        == {"invoke_agent ops", "execute_tool shell"}
    )
    assert col_spans[0].resource["deployment.environment"] == "staging"
    for req in collector.requests:
        assert KEY.encode() not in req["raw"]
        assert all(KEY not in v for v in req["headers"].values())
        assert req["headers"]["x-collector-token"] == "col-abc"
    for req in execlave_rx.requests:
        assert "x-collector-token" not in req["headers"]
        assert KEY.encode() not in req["raw"]


def test_collector_grpc_from_standard_env(make_telemetry, no_global_provider, monkeypatch):
    with GrpcReceiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=t1")
        tel = make_telemetry()
        _round(tel)
        assert tel.flush(5.0)
        spans = collector.wait_for(2)
    by = {s.name: s for s in spans}
    assert by["execute_tool shell"].parent_span_id == by["invoke_agent ops"].span_id
    assert by["execute_tool shell"].events[0][1]["execlave.violation.message"] == "deny-shell violated"
    assert collector.requests[0]["headers"]["x-tenant"] == "t1"


def test_collector_grpc_from_params(make_telemetry, no_global_provider):
    with GrpcReceiver() as collector:
        tel = make_telemetry(otlp_endpoint=collector.endpoint, otlp_protocol="grpc")
        _round(tel)
        assert tel.flush(5.0)
        assert len(collector.wait_for(2)) == 2


def test_collector_http_from_traces_endpoint_env(make_telemetry, no_global_provider, monkeypatch):
    with HttpReceiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.endpoint + "/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        tel = make_telemetry()
        _round(tel)
        assert tel.flush(5.0)
        assert len(collector.wait_for(2)) == 2


def test_collector_not_used_when_attached_to_app_provider(make_telemetry, set_global, monkeypatch):
    set_global(TracerProvider())
    with HttpReceiver() as collector:
        tel = make_telemetry(otlp_endpoint=collector.endpoint)
        _round(tel)
        assert tel.flush(1.0)
    assert collector.spans == []


def test_unknown_protocol_is_a_clear_error(make_telemetry, no_global_provider):
    with pytest.raises(ValueError, match="http/protobuf"):
        make_telemetry(otlp_endpoint="http://127.0.0.1:9", otlp_protocol="thrift")

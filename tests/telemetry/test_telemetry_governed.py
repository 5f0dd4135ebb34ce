"""Governed spans: decision recording, block semantics, error handling, provider resolution."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

import execlave
from execlave.connection.ingest import TraceIngestExporter
from execlave.errors import AgentPausedError, EnforcementUnavailableError, PolicyBlockedError
from execlave.policy.types import ALLOW, Decision
from execlave.telemetry import TelemetryConfig
from support.secrets import REPR_KEY

from .conftest import block, decision


def _to_execlave(key: str) -> TraceIngestExporter:
    return TraceIngestExporter(api_key=key, base_url="http://127.0.0.1:9", masker=str)


def test_allow_decision_recorded_with_scope_and_version(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    with tel.governed_span(
        "invoke_agent ops", attributes={"gen_ai.agent.id": "ops"}, check=lambda: ALLOW
    ) as g:
        assert g.decision.outcome == "allow"
    (span,) = exporter.get_finished_spans()
    assert span.instrumentation_scope.name == "execlave"
    assert span.instrumentation_scope.version == execlave.__version__
    assert span.attributes["execlave.policy.decision"] == "allow"
    assert span.attributes["execlave.policy.violation_count"] == 0
    assert span.attributes["gen_ai.agent.id"] == "ops"
    assert span.status.status_code == StatusCode.UNSET


def test_block_raises_inside_span_and_span_is_exported_with_error(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    d = decision("block", block("deny-shell"), block("pii-watch", mode="monitor"))
    ran = []
    with pytest.raises(PolicyBlockedError) as info, tel.governed_span("execute_tool shell", check=lambda: d):
        ran.append("body")
    assert ran == []
    assert [v["policyId"] for v in info.value.violations] == ["deny-shell"]  # only blocking ones
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["execlave.policy.decision"] == "block"
    assert span.attributes["execlave.policy.violation_count"] == 2
    assert tuple(span.attributes["execlave.policy.ids"]) == ("deny-shell", "pii-watch")
    events = [e for e in span.events if e.name == "execlave.policy.violation"]
    assert [e.attributes["execlave.policy.id"] for e in events] == ["deny-shell", "pii-watch"]
    assert events[0].attributes["execlave.policy.enforcement_mode"] == "block"
    assert events[0].attributes["execlave.violation.tool_name"] == "shell"


def test_warn_and_block_without_raise_do_not_raise(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    with tel.governed_span("a", check=lambda: decision("warn", block("w", mode="warn"))) as g:
        assert g.decision.warnings[0]["policyId"] == "w"
    with tel.governed_span("b", check=lambda: decision("block", block()), raise_on_block=False) as g:
        assert g.decision.blocked
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["a"].attributes["execlave.policy.decision"] == "warn"
    assert spans["b"].attributes["execlave.policy.decision"] == "block"
    assert spans["b"].status.status_code == StatusCode.UNSET


def test_several_checks_merge(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    with tel.governed_span("round", check=lambda: decision("warn", block("w", mode="warn"))) as g:
        g.check(lambda: ALLOW)
        with pytest.raises(PolicyBlockedError):
            g.check(lambda: decision("block", block("b")))
        assert g.decision.outcome == "block"
    (span,) = exporter.get_finished_spans()
    assert span.attributes["execlave.policy.violation_count"] == 2
    assert span.attributes["execlave.policy.decision"] == "block"


def test_child_block_marks_parent_blocked(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    with (
        pytest.raises(PolicyBlockedError),
        tel.governed_span("parent", check=lambda: ALLOW),
        tel.governed_span("child", check=lambda: decision("block", block())),
    ):
        pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["child"].parent.span_id == spans["parent"].context.span_id
    assert spans["parent"].attributes["execlave.policy.decision"] == "block"
    assert spans["parent"].status.status_code == StatusCode.ERROR
    assert not [e for e in spans["parent"].events if e.name == "execlave.policy.violation"]


def test_bug_in_check_fails_closed(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    boom = KeyError("oops")

    def bad() -> Decision:
        raise boom

    with pytest.raises(EnforcementUnavailableError) as info, tel.governed_span("x", check=bad):
        pytest.fail("body must not run")
    assert info.value.__cause__ is boom
    with pytest.raises(EnforcementUnavailableError), tel.governed_span("y", check=lambda: "allow"):  # type: ignore[arg-type,return-value]
        pytest.fail("body must not run")
    spans = exporter.get_finished_spans()
    assert all(s.status.status_code == StatusCode.ERROR for s in spans)
    assert all(s.attributes["execlave.enforcement.unavailable"] for s in spans)


def test_paused_agent_is_recorded_and_reraised(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)

    def paused() -> Decision:
        raise AgentPausedError("ops", "incident 7")

    with pytest.raises(AgentPausedError, match="incident 7"), tel.governed_span("x", check=paused):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.attributes["execlave.agent.paused"] is True
    assert span.status.status_code == StatusCode.ERROR
    assert any(e.name == "exception" for e in span.events)


def test_body_exception_recorded_and_reraised_unchanged(memory, make_telemetry):
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider)
    err = RuntimeError("tool crashed")
    with pytest.raises(RuntimeError) as info, tel.governed_span("x", check=lambda: ALLOW):
        raise err
    assert info.value is err
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.attributes["execlave.policy.decision"] == "allow"


# -- enforcement must not depend on tracing ----------------------------------------------


class _ForeignProvider(trace.TracerProvider):
    """A non-SDK provider (e.g. a vendor's), handing out the API's no-op tracer."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return trace.NoOpTracer()


class _BrokenProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        class Broken(trace.NoOpTracer):
            def start_as_current_span(self, *a: Any, **k: Any) -> Any:
                raise RuntimeError("vendor bug")

        return Broken()


def _sampled_out() -> TracerProvider:
    return TracerProvider(sampler=ALWAYS_OFF)


def _sdk_disabled(monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    return TracerProvider()


@pytest.mark.parametrize("setup", ["always_off", "sdk_disabled", "noop", "foreign", "broken"])
def test_block_raises_whatever_the_tracing_setup(setup, make_telemetry, monkeypatch):
    exporter = InMemorySpanExporter()
    provider: Any
    if setup == "always_off":
        provider = _sampled_out()
    elif setup == "sdk_disabled":
        provider = _sdk_disabled(monkeypatch)
    elif setup == "noop":
        provider = trace.NoOpTracerProvider()
    elif setup == "foreign":
        provider = _ForeignProvider()
    else:
        provider = _BrokenProvider()
    if hasattr(provider, "add_span_processor"):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tel = make_telemetry(tracer_provider=provider, execlave_exporter=_to_execlave("k-123"))
    calls = []

    def check() -> Decision:
        calls.append(1)
        return decision("block", block())

    with pytest.raises(PolicyBlockedError), tel.governed_span("execute_tool shell", check=check):
        pytest.fail("body must not run")
    assert calls == [1]
    assert exporter.get_finished_spans() == ()  # nothing recorded, yet enforced
    with tel.governed_span("ok", check=lambda: ALLOW) as g:
        assert g.decision.outcome == "allow"


# -- provider resolution -------------------------------------------------------------------


def test_explicit_provider_wins_over_global(memory, make_telemetry, set_global):
    provider, exporter = memory
    app = TracerProvider()
    app_exporter = InMemorySpanExporter()
    app.add_span_processor(SimpleSpanProcessor(app_exporter))
    set_global(app)
    tel = make_telemetry(tracer_provider=provider)
    with tel.governed_span("x"):
        pass
    assert len(exporter.get_finished_spans()) == 1
    assert app_exporter.get_finished_spans() == ()


def test_app_global_provider_used_and_unchanged_spans_are_children(make_telemetry, set_global):
    app = TracerProvider()
    app_exporter = InMemorySpanExporter()
    app.add_span_processor(SimpleSpanProcessor(app_exporter))
    set_global(app)
    tel = make_telemetry()
    assert tel.tracer_provider is app and not tel.owns_provider
    with (
        trace.get_tracer("app").start_as_current_span("app request") as parent,
        tel.governed_span("invoke_agent ops", check=lambda: ALLOW),
    ):
        pass
    assert trace.get_tracer_provider() is app
    spans = {s.name: s for s in app_exporter.get_finished_spans()}
    assert spans["invoke_agent ops"].parent.span_id == parent.get_span_context().span_id
    assert spans["invoke_agent ops"].context.trace_id == parent.get_span_context().trace_id


def test_own_provider_when_nothing_set_is_not_installed_globally(make_telemetry, no_global_provider):
    tel = make_telemetry(service_name="billing-bot", environment="staging")
    assert tel.owns_provider
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    attrs = tel.tracer_provider.resource.attributes
    assert attrs["service.name"] == "billing-bot"
    assert attrs["deployment.environment"] == "staging"


def test_own_provider_service_name_from_env_then_default(make_telemetry, no_global_provider, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert make_telemetry().tracer_provider.resource.attributes["service.name"] == "from-env"
    assert make_telemetry(service_name="param").tracer_provider.resource.attributes["service.name"] == "param"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    assert make_telemetry().tracer_provider.resource.attributes["service.name"] == "execlave-app"


# -- content capture -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "param", "expected"),
    [
        (None, None, False),
        ("true", None, True),
        ("TRUE", None, True),
        ("span_only", None, True),
        ("EVENT_ONLY", None, True),
        ("Span_And_Event", None, True),
        ("false", None, False),
        ("NO_CONTENT", None, False),
        ("true", False, False),
        (None, True, True),
    ],
)
def test_capture_content_resolution(env, param, expected, memory, make_telemetry, monkeypatch):
    if env is not None:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", env)
    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider, capture_content=param)
    assert tel.capture_content is expected
    with tel.governed_span("x") as g:
        g.record_content("gen_ai.input.messages", "mail alice@example.com now")
    (span,) = exporter.get_finished_spans()
    if expected:
        assert span.attributes["gen_ai.input.messages"] == "mail [EMAIL] now"
    else:
        assert "gen_ai.input.messages" not in span.attributes


def test_api_key_never_in_repr(make_telemetry, memory):
    provider, _ = memory
    config = TelemetryConfig(execlave_exporter=_to_execlave(REPR_KEY), tracer_provider=provider)
    assert "SECRET" not in repr(config)
    tel = make_telemetry(execlave_exporter=_to_execlave(REPR_KEY), tracer_provider=provider)
    assert "SECRET" not in repr(tel)
    assert "SECRET" not in str(provider.resource.attributes)


def test_console_prints_tree(memory, make_telemetry, capsys):
    provider, _ = memory
    tel = make_telemetry(tracer_provider=provider, console=True)
    with (
        pytest.raises(PolicyBlockedError),
        tel.governed_span("invoke_agent ops", check=lambda: ALLOW),
        tel.governed_span("execute_tool shell", check=lambda: decision("block", block())),
    ):
        pass
    with trace.get_tracer("other", tracer_provider=provider).start_as_current_span("not ours"):
        pass
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("invoke_agent ops  ") and "decision=block" in out[0]
    assert out[1].startswith("  execute_tool shell  ") and " ms" in out[1]
    assert out[2].strip().startswith("! deny-shell (block)")
    assert "not ours" not in "\n".join(out)

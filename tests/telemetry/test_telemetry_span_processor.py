"""GovernanceSpanProcessor on other instrumentations' tool spans, pinned against the installed SDK."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from execlave.errors import AgentPausedError, EnforcementUnavailableError, PolicyBlockedError
from execlave.policy.types import ALLOW, CheckRequest, Decision
from execlave.telemetry import GovernanceSpanProcessor

from .conftest import block, decision


class Checker:
    def __init__(self, answer: Any = ALLOW) -> None:
        self.answer = answer
        self.requests: list[CheckRequest] = []

    def __call__(self, request: CheckRequest) -> Decision:
        self.requests.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class Recorder(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span.name)


def _provider(check: Checker, *, raise_on_block: bool, sampler: Any = None):
    provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    exporter = InMemorySpanExporter()
    after = Recorder()
    provider.add_span_processor(GovernanceSpanProcessor(check, raise_on_block=raise_on_block))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(after)
    return provider.get_tracer("autogen-core"), exporter, after


def test_records_decision_on_tool_span_by_attribute():
    check = Checker(decision("warn", block("w", mode="warn")))
    tracer, exporter, _ = _provider(check, raise_on_block=False)
    attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search_docs",
        "gen_ai.agent.id": "ops",
    }
    with tracer.start_as_current_span("execute_tool search_docs", attributes=attrs):
        pass
    (req,) = check.requests
    assert req.agent_id == "ops" and req.tool_calls[0].name == "search_docs"
    (span,) = exporter.get_finished_spans()
    assert span.attributes["execlave.policy.decision"] == "warn"
    assert [e.attributes["execlave.policy.id"] for e in span.events] == ["w"]


def test_tool_name_parsed_from_span_name_and_default_agent():
    check = Checker()
    tracer, _, _ = _provider(check, raise_on_block=True)
    with tracer.start_as_current_span(
        "execute_tool run_sql", attributes={"gen_ai.operation.name": "execute_tool"}
    ):
        pass
    assert check.requests[0].tool_calls[0].name == "run_sql"
    assert check.requests[0].agent_id == "unknown-agent"


def test_non_tool_and_execlave_spans_are_not_checked():
    check = Checker(decision("block", block()))
    provider = TracerProvider()
    provider.add_span_processor(GovernanceSpanProcessor(check, raise_on_block=True))
    with provider.get_tracer("autogen-core").start_as_current_span("chat gpt-4o", attributes={"x": 1}):
        pass
    with provider.get_tracer("execlave").start_as_current_span("execute_tool shell"):
        pass
    assert check.requests == []


def test_block_without_raise_only_records():
    tracer, exporter, after = _provider(Checker(decision("block", block())), raise_on_block=False)
    with tracer.start_as_current_span("execute_tool shell", attributes={"gen_ai.tool.name": "shell"}):
        ran = True
    assert ran
    (span,) = exporter.get_finished_spans()
    assert span.attributes["execlave.policy.decision"] == "block"
    assert after.started == ["execute_tool shell"]


@pytest.mark.parametrize("api", ["start_span", "start_as_current_span"])
def test_block_raises_out_of_installed_sdk_and_blocked_span_is_exported(api):
    """Pins the SDK behaviour this processor relies on: an exception from on_start propagates
    out of start_span. If an SDK release swallows it, this test fails loudly."""
    tracer, exporter, after = _provider(Checker(decision("block", block("deny-shell"))), raise_on_block=True)
    attrs = {"gen_ai.tool.name": "shell"}
    with pytest.raises(PolicyBlockedError) as info:
        if api == "start_span":
            tracer.start_span("execute_tool shell", attributes=attrs)
        else:
            with tracer.start_as_current_span("execute_tool shell", attributes=attrs):
                pytest.fail("tool body must not run")
    assert info.value.violations[0]["policyId"] == "deny-shell"
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.end_time is not None
    assert span.attributes["execlave.policy.decision"] == "block"
    assert after.started == []  # documented limit: processors after it skip this span


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(AgentPausedError("ops", "x"), AgentPausedError), (ZeroDivisionError(), EnforcementUnavailableError)],
)
def test_paused_and_bugs_raise_when_opted_in(answer, expected):
    tracer, exporter, _ = _provider(Checker(answer), raise_on_block=True)
    with pytest.raises(expected):
        tracer.start_span("execute_tool shell", attributes={"gen_ai.tool.name": "shell"})
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR


def test_sampled_out_spans_never_reach_the_processor():
    """Documented limit: governance via a span processor depends on the span being recorded."""
    check = Checker(decision("block", block()))
    tracer, _, _ = _provider(check, raise_on_block=True, sampler=ALWAYS_OFF)
    tracer.start_span("execute_tool shell", attributes={"gen_ai.tool.name": "shell"}).end()
    assert check.requests == []

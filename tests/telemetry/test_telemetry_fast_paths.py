"""The per-span fast paths (no-op tracer, non-recording span, no meter yet) skip recording work
only: decisions, raises and metrics are the same as on the full path."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from execlave.errors import PolicyBlockedError
from execlave.policy.types import ALLOW, Decision

BLOCK = Decision(
    "block",
    ({"policyId": "deny", "policyName": "deny", "enforcementMode": "block", "message": "no"},),
)
ROUND = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "ops", "gen_ai.agent.name": "ops"}


def _decisions(reader: InMemoryMetricReader) -> list[Any]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "execlave.policy.decisions"
        for point in metric.data.data_points
    ]


def test_decisions_are_counted_once_a_meter_provider_is_set_later(make_telemetry: Any) -> None:
    proxy = _ProxyMeterProvider()  # what the API hands out before the application sets one
    tel = make_telemetry(tracer_provider=trace.NoOpTracerProvider(), meter_provider=proxy)
    with tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW):
        pass
    reader = InMemoryMetricReader()
    proxy.on_set_meter_provider(MeterProvider(metric_readers=[reader]))
    with tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW):
        pass
    (point,) = _decisions(reader)
    assert point.value == 1 and point.attributes["execlave.policy.decision"] == "allow"


@pytest.mark.parametrize("setup", ["noop", "sampled_out"])
def test_non_recording_spans_decide_and_raise_the_same(make_telemetry: Any, setup: str) -> None:
    provider: Any = trace.NoOpTracerProvider() if setup == "noop" else TracerProvider(sampler=ALWAYS_OFF)
    reader = InMemoryMetricReader()
    tel = make_telemetry(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]))
    outer = trace.get_current_span()
    with (
        pytest.raises(PolicyBlockedError) as info,
        tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: BLOCK),
    ):
        pytest.fail("the body of a blocked span must not run")
    assert [v["policyId"] for v in info.value.violations] == ["deny"]
    with tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW) as governed:
        assert governed.decision.outcome == "allow" and not governed.recording
        if setup == "noop":  # nothing was started: the caller's current span stays current
            assert trace.get_current_span() is outer
    outcomes = sorted(p.attributes["execlave.policy.decision"] for p in _decisions(reader))
    assert outcomes == ["allow", "block"]


def test_a_trace_only_agents_spans_record_no_decision(memory: Any) -> None:
    from execlave import Execlave
    from execlave.adapter import AgentIdentity, ToolCall
    from execlave.policy import NO_POLICIES

    provider, exporter = memory
    exe = Execlave(policies=NO_POLICIES, tracer_provider=provider)
    try:
        agent = AgentIdentity("ops-bot", enforced=False)
        with exe.round_span(agent):
            exe.check_requested(agent, [ToolCall("delete_logs", {}, "c1")])
    finally:
        exe.shutdown(timeout=1.0)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["check_tool delete_logs", "invoke_agent ops-bot"]
    for span in spans:  # nothing was decided: no decision is claimed
        assert "execlave.policy.decision" not in (span.attributes or {})
        assert (span.attributes or {})["execlave.enforcement.enabled"] is False


def _metric_names(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    found: dict[str, int] = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found[metric.name] = len(metric.data.data_points)
    return found


@pytest.mark.parametrize("setup", ["noop", "sampled_out"])
def test_nested_blocks_failures_and_durations_are_the_same_without_a_span(
    make_telemetry: Any, setup: str
) -> None:
    from execlave.errors import AgentPausedError, EnforcementUnavailableError

    provider: Any = trace.NoOpTracerProvider() if setup == "noop" else TracerProvider(sampler=ALWAYS_OFF)
    reader = InMemoryMetricReader()
    tel = make_telemetry(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]))
    # a block raised in a child span makes the round's decision a block too
    tool = {"gen_ai.operation.name": "execute_tool"}
    with (
        pytest.raises(PolicyBlockedError),
        tel.governed_span("invoke_agent ops", attributes=ROUND) as outer,
        tel.governed_span("execute_tool t", attributes=tool, check=lambda: BLOCK),
    ):
        pytest.fail("the body of a blocked span must not run")
    assert outer.decision.outcome == "block"
    # a second check on the handle merges (worst wins); a broken check fails closed
    with tel.governed_span("invoke_agent ops", attributes=ROUND, check=lambda: ALLOW) as governed:
        with pytest.raises(PolicyBlockedError):
            governed.check(lambda: BLOCK)
        assert governed.decision.outcome == "block"
    with (
        pytest.raises(EnforcementUnavailableError),
        tel.governed_span("invoke_agent ops", check=lambda: 1 / 0),
    ):
        pass
    with pytest.raises(AgentPausedError), tel.governed_span("invoke_agent ops", attributes=ROUND):
        raise AgentPausedError("paused")
    counted = _metric_names(reader)
    assert counted.get("gen_ai.client.operation.duration", 0) >= 1, counted
    assert sorted(p.attributes["execlave.policy.decision"] for p in _decisions(reader)) == [
        "allow",
        "block",
        "block",
        "error",
        "paused",
    ]


def test_a_conversation_without_a_root_span_keeps_the_callers_span_current() -> None:
    """On a tracer that never records the conversation has no root span: the caller's span stays
    current inside it (what a tool sees), and the conversation is still current."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from execlave.telemetry.conversation import ConversationScope, current_conversation

    class InvalidSpans(trace.NoOpTracer):  # what the API's no-op tracer returned before 1.28
        def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
            return trace.INVALID_SPAN

    caller = TracerProvider().get_tracer("test").start_span("caller")
    with trace.use_span(caller, end_on_exit=True):
        for tracer in (InvalidSpans(), trace.NoOpTracer()):
            scope = ConversationScope(tracer, kind="chat")
            with scope as conversation:
                assert trace.get_current_span().get_span_context() == caller.get_span_context()
                assert current_conversation() is conversation
            scope.end()
        recording = ConversationScope(TracerProvider().get_tracer("execlave"), kind="chat")
        with recording as conversation:
            assert trace.get_current_span() is conversation.span  # a real root is current
        recording.end()


def test_span_names_and_attributes_are_bounded_the_same_every_time(make_telemetry: Any) -> None:
    """Short names and values are bounded once per client; every later span gets the same export,
    and a value holding the secret is masked however often clean values were seen before."""
    from execlave.telemetry.bounds import SecretRedactingMasker

    masker = SecretRedactingMasker(lambda s: s.replace("alice@example.com", "[EMAIL]"), "sk-secret")
    tel = make_telemetry(masker=masker)
    attributes = {
        "gen_ai.tool.name": "mail alice@example.com\x1b",
        "gen_ai.agent.id": "ops",
        "execlave.tool.phase": "requested",
        "note": "key sk-secret",
    }
    first = tel._bounded("check_tool alice@example.com", dict(attributes))
    for _ in range(3):
        assert tel._bounded("check_tool alice@example.com", dict(attributes)) == first
    name, bounded = first
    assert name == "check_tool [EMAIL]"
    assert bounded is not None
    assert bounded["gen_ai.tool.name"] == "mail [EMAIL]\\x1b"
    assert bounded["gen_ai.agent.id"] == "ops" and bounded["execlave.tool.phase"] == "requested"
    assert "sk-secret" not in str(bounded["note"])

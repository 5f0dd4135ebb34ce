"""Resource bounds of the export path: the queue is bounded in bytes as well as spans, batches are
bounded in bytes, decision spans (block / warn / error) are never crowded out by content spans, and
a round's flood of tool calls cannot push its decision out of the export (classic ag2 agents)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from execlave.policy import load_policies
from execlave.telemetry import BoundedBatchSpanProcessor
from execlave.telemetry.processors import span_size
from support.policies import TOOL_DENY
from support.requires import require

KIB = 1024
MIB = 1024 * KIB


class GatedExporter(SpanExporter):
    """Holds every export until ``gate`` opens (a slow or stalled collector); rejects any request
    larger than ``limit`` bytes of OTLP protobuf, as a collector's receiver does (4 MiB by default)."""

    def __init__(self, limit: int = 4 * MIB) -> None:
        self.gate = threading.Event()
        self.limit = limit
        self.spans: list[ReadableSpan] = []
        self.rejected: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.gate.wait(60)
        size = len(encode_spans(spans).SerializeToString())
        if size > self.limit:
            self.rejected.append(len(spans))
            return SpanExportResult.FAILURE
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


def setup(**kw: Any) -> tuple[TracerProvider, GatedExporter, BoundedBatchSpanProcessor]:
    exporter = GatedExporter()
    processor = BoundedBatchSpanProcessor(exporter, schedule_delay=0.01, **kw)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, exporter, processor


def content_span(provider: TracerProvider, name: str, size: int) -> None:
    with provider.get_tracer("execlave").start_as_current_span(name) as span:
        span.set_attribute("gen_ai.tool.call.result", "r" * size)


def blocked_span(provider: TracerProvider, name: str = "check_tool drop_db") -> None:
    with provider.get_tracer("execlave").start_as_current_span(name, record_exception=False) as span:
        span.set_attribute("execlave.policy.decision", "block")
        span.set_status(Status(StatusCode.ERROR, "blocked"))


def test_queue_is_bounded_in_bytes():
    provider, exporter, processor = setup(max_queue_size=10_000, max_queue_bytes=2 * MIB)
    content_span(provider, "first", 10)  # taken by the (stalled) worker
    for i in range(100):
        content_span(provider, f"c{i}", 100 * KIB)
        assert processor.queued_bytes <= 2 * MIB
    assert processor.dropped_queue_full >= 50  # the worker holds at most one 1 MiB batch
    exporter.gate.set()
    assert processor.flush(10.0) is True or processor.dropped_queue_full
    processor.shutdown(1.0)


def test_decision_spans_are_never_crowded_out_by_content_spans():
    provider, exporter, processor = setup(max_queue_size=8, max_queue_bytes=MIB)
    content_span(provider, "first", 10)
    for i in range(20):
        content_span(provider, f"c{i}", 200 * KIB)  # fills the queue by bytes
    for i in range(8):
        content_span(provider, f"small{i}", 10)  # and by count
    blocked_span(provider)
    exporter.gate.set()
    processor.flush(10.0)
    processor.shutdown(1.0)
    assert "check_tool drop_db" in [s.name for s in exporter.spans]


def test_a_span_larger_than_the_queue_bound_is_dropped_but_a_decision_span_is_kept():
    provider, exporter, processor = setup(max_queue_bytes=16 * MIB)
    exporter.gate.set()
    with processor._cond:  # hold the worker so both spans meet in the queue
        blocked_span(provider)
        content_span(provider, "execute_tool fetch", 70 * MIB)
    processor.flush(30.0)
    processor.shutdown(1.0)
    assert [s.name for s in exporter.spans] == ["check_tool drop_db"]
    assert processor.dropped_queue_full == 1


def test_batches_are_bounded_in_bytes_so_a_huge_span_fails_alone():
    provider, exporter, processor = setup(max_export_batch_bytes=MIB, max_queue_bytes=128 * MIB)
    exporter.gate.set()
    with processor._cond:  # hold the worker so both spans land in one queue
        blocked_span(provider)
        content_span(provider, "execute_tool fetch", 70 * MIB)
    processor.flush(30.0)
    processor.shutdown(1.0)
    assert [s.name for s in exporter.spans] == ["check_tool drop_db"]
    assert exporter.rejected == [1]


def test_span_size_estimates_the_encoded_size():
    provider, exporter, processor = setup()
    exporter.gate.set()
    content_span(provider, "execute_tool fetch", 300 * KIB)
    processor.flush(10.0)
    processor.shutdown(1.0)
    (span,) = exporter.spans
    encoded = len(encode_spans([span]).SerializeToString())
    # resource and scope are sent once per request (well under 1 KiB here), not per span
    assert encoded <= span_size(span) + 1024 and span_size(span) <= 2 * encoded


# -- a flood of tool calls in one round (classic ag2) --------------------------------------------


@pytest.mark.parametrize("harmless", [3_000])
def test_a_flood_of_tool_calls_cannot_hide_the_block(harmless):
    autogen = require("autogen")
    exporter = GatedExporter()
    processor = BoundedBatchSpanProcessor(exporter, schedule_delay=0.01)  # defaults: 2048 spans
    provider = TracerProvider()
    provider.add_span_processor(processor)
    exe = Execlave(policies=load_policies([TOOL_DENY]), tracer_provider=provider)
    try:
        names = [f"get_status_{i}" for i in range(harmless)] + ["drop_database"]
        reply = {
            "content": None,
            "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
                for i, n in enumerate(names)
            ],
        }
        agent = autogen.ConversableAgent(
            "assistant", llm_config=False, human_input_mode="NEVER", code_execution_config=False
        )
        agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, reply), position=0)
        instrument_autogen_agent(agent, exe, agent_id="assistant")
        with pytest.raises(PolicyBlockedError) as info:
            agent.generate_reply(messages=[{"role": "user", "content": "check everything"}])
        assert [v["toolName"] for v in info.value.violations] == ["drop_database"]
        exporter.gate.set()
        assert processor.flush(30.0)
        assert processor.dropped_queue_full == 0
        spans = {s.name: s for s in exporter.spans}
        round_span = spans["invoke_agent assistant"]
        assert round_span.attributes["execlave.policy.decision"] == "block"
        limit = exe._telemetry.max_tool_spans_per_round
        checks = [s for s in exporter.spans if s.name.startswith("check_tool")]
        assert len(checks) <= limit + 1
        assert "check_tool drop_database" in spans  # the decision is never summarised away
        assert round_span.attributes["execlave.round.tool_calls"] == harmless + 1
        assert round_span.attributes["execlave.round.tool_spans_omitted"] == harmless + 1 - len(checks)
    finally:
        exe.shutdown(1.0)
        processor.shutdown(1.0)


def test_per_call_span_budget_keeps_blocked_calls_then_summarises(memory, make_telemetry):
    from execlave.policy.types import ALLOW

    from .conftest import block, decision

    provider, exporter = memory
    tel = make_telemetry(tracer_provider=provider, max_tool_spans_per_round=4)
    with tel.governed_span("invoke_agent ops", check=lambda: ALLOW):
        for i in range(6):
            with tel.governed_span(f"check_tool ok{i}", check=lambda: ALLOW, per_call=True) as g:
                assert g.decision.outcome == "allow"
        for i in range(6):
            blocked = decision("block", block(f"deny-{i}"))
            with tel.governed_span(
                f"check_tool bad{i}", check=lambda d=blocked: d, raise_on_block=False, per_call=True
            ) as g:
                assert g.decision.blocked  # checked even when it gets no span of its own
    spans = {s.name: s for s in exporter.get_finished_spans()}
    # 4 allowed calls within the budget, then blocked calls keep spans up to twice the budget
    assert sorted(n for n in spans if n.startswith("check_tool")) == [
        "check_tool bad0", "check_tool bad1", "check_tool bad2", "check_tool bad3",
        "check_tool ok0", "check_tool ok1", "check_tool ok2", "check_tool ok3",
    ]  # fmt: skip
    assert spans["check_tool bad0"].attributes["execlave.policy.decision"] == "block"
    round_span = spans["invoke_agent ops"]
    assert round_span.attributes["execlave.round.tool_calls"] == 12
    assert round_span.attributes["execlave.round.tool_spans_omitted"] == 4
    summarised = [e.attributes["execlave.policy.id"] for e in round_span.events]
    assert summarised == ["deny-4", "deny-5"]


def test_malformed_limit_variables_never_stop_the_client(no_global_provider, monkeypatch):
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "lots")
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-3")
    exe = Execlave(policies=load_policies([TOOL_DENY]))
    try:
        assert exe._telemetry.max_attribute_length == 8192
        limits = exe._telemetry.tracer_provider._span_limits
        assert limits.max_attribute_length == 8192 and limits.max_span_attributes == 128
        with pytest.raises(PolicyBlockedError):
            exe.enforce_policy("ops", "clean up", tools=["drop_table"])
    finally:
        exe.shutdown(1.0)

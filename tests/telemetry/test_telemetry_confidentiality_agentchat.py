"""The confidentiality and flood bounds of test_telemetry_confidentiality / test_telemetry_bounds,
through real AgentChat 0.7 ``AssistantAgent``s (offline ReplayChatCompletionClient)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from execlave.policy import load_policies
from execlave.telemetry import BoundedBatchSpanProcessor
from support.policies import TOOL_DENY
from support.requires import require

from .test_telemetry_bounds import GatedExporter
from .test_telemetry_confidentiality import CARD, MIB, assert_no_card, exported


async def get_status(service: str) -> str:
    """Status of a service."""
    return "healthy"


def run_blocked(exe: Execlave, *names: str) -> PolicyBlockedError:
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent

    from agentchat.conftest import replay_client, tool_calls

    reply = tool_calls(*((f"c{i}", n, "{}") for i, n in enumerate(names)))
    agent = AssistantAgent("ops", model_client=replay_client([reply]), tools=[get_status])
    instrument_autogen_agent(agent, exe, agent_id="ops")
    with pytest.raises(PolicyBlockedError) as info:
        asyncio.run(agent.run(task="tidy up"))
    return info.value


@pytest.fixture
def exe(provider: TracerProvider) -> Any:
    client = Execlave(policies=load_policies([TOOL_DENY]), tracer_provider=provider)
    yield client
    client.shutdown(timeout=1.0)


def test_agentchat_card_number_and_megabyte_names_are_bounded(exe, exporter):
    run_blocked(exe, f"delete_records {CARD}", "get_" + "B" * MIB, "drop_" + "A" * MIB)
    spans = exporter.get_finished_spans()
    assert len([s for s in spans if s.name.startswith("check_tool")]) == 3
    assert_no_card(spans)
    assert len(exported(spans)) < 64 * 1024


def test_agentchat_flood_of_tool_calls_cannot_hide_the_block():
    exporter = GatedExporter()
    processor = BoundedBatchSpanProcessor(exporter, schedule_delay=0.01)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    exe = Execlave(policies=load_policies([TOOL_DENY]), tracer_provider=provider)
    try:
        error = run_blocked(exe, *(f"get_status_{i}" for i in range(3_000)), "drop_database")
        assert [v["toolName"] for v in error.violations] == ["drop_database"]
        exporter.gate.set()
        assert processor.flush(30.0)
        assert processor.dropped_queue_full == 0
        names = [s.name for s in exporter.spans]
        assert "check_tool drop_database" in names
        (round_span,) = [s for s in exporter.spans if s.name == "invoke_agent ops"]
        assert round_span.attributes["execlave.policy.decision"] == "block"
        assert round_span.attributes["execlave.round.tool_calls"] == 3_001
    finally:
        exe.shutdown(1.0)
        processor.shutdown(1.0)

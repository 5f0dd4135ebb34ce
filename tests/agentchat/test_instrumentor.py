"""AutoGenInstrumentor on AgentChat: agents created after ``instrument()`` are governed and traced
at first use, a team run with such agents is one conversation, and ``uninstrument()`` restores the
classes and the agents."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import raise_policy_blocks
from support.conversations import assert_one_conversation
from support.requires import require

from .conftest import replay_client, require_agentchat, tool_calls

require_agentchat()
require("opentelemetry.instrumentation.instrumentor")  # 0.48b0 needs pkg_resources

from autogen_agentchat.agents import AssistantAgent, BaseChatAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import BaseGroupChat, RoundRobinGroupChat  # noqa: E402

from execlave.integrations.autogen.instrumentor import AutoGenInstrumentor  # noqa: E402

TIMEOUT = 30


async def test_team_of_auto_instrumented_agents(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    init, run_stream = BaseChatAgent.__init__, BaseGroupChat.run_stream
    inst = AutoGenInstrumentor()
    inst.instrument(client=exe)
    try:
        ran: list[str] = []

        async def delete_db(name: str) -> str:
            """Delete a database."""
            ran.append(name)
            return "deleted"

        planner = AssistantAgent("planner", model_client=replay_client(["Plan: delete staging."]))
        worker = AssistantAgent(
            "DbWorker",
            model_client=replay_client([tool_calls(("c1", "delete_db", '{"name": "staging"}')), "done"]),
            tools=[delete_db],
        )
        team = RoundRobinGroupChat([planner, worker], termination_condition=MaxMessageTermination(3))
        with pytest.raises(PolicyBlockedError), raise_policy_blocks(team):
            await asyncio.wait_for(team.run(task="clean staging"), TIMEOUT)
        assert ran == []
        spans = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "execlave"]
        assert_one_conversation(spans)
        ids = {s.attributes.get("gen_ai.agent.id") for s in spans if s.name.startswith("invoke_agent")}
        assert ids == {"planner", "db-worker"}
    finally:
        inst.uninstrument()
    assert BaseChatAgent.__init__ is init and BaseGroupChat.run_stream is run_stream
    for agent in (planner, worker):
        assert not getattr(agent, "_execlave_instrumented", False)
        assert not {"on_messages_stream", "run", "run_stream", "on_messages"} & set(vars(agent))


async def test_agent_run_auto_instrumented(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    inst = AutoGenInstrumentor()
    inst.instrument(client=exe)
    try:
        agent: Any = AssistantAgent("helper", model_client=replay_client(["hello"]))
        await asyncio.wait_for(agent.run(task="hi"), TIMEOUT)
    finally:
        inst.uninstrument()
    root = assert_one_conversation(list(exporter.get_finished_spans()))
    assert root.attributes["gen_ai.agent.id"] == "helper"

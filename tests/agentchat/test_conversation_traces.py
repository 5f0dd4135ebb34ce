"""One conversation = one trace on AgentChat: a team's ``run`` / ``run_stream`` and an agent's own
``run`` / ``run_stream`` give one ``execlave.conversation`` root with every turn, check and tool
call beneath it and ``gen_ai.conversation.id`` on all of them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import (
    instrument_autogen_agent,
    raise_policy_blocks,
    uninstrument_autogen_agent,
)
from support.conversations import ROOT, assert_one_conversation

from .conftest import replay_client, require_agentchat, tool_calls

require_agentchat()

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat  # noqa: E402

TIMEOUT = 30


def agents(exe: Execlave, tool: str, ran: list[str]) -> tuple[Any, Any]:
    async def get_status(name: str) -> str:
        """Status of a host."""
        ran.append(name)
        return "ok"

    async def delete_db(name: str) -> str:
        """Delete a database."""
        ran.append(name)
        return "deleted"

    planner = AssistantAgent("planner", model_client=replay_client(["Plan: look at staging."]))
    worker = AssistantAgent(
        "worker",
        model_client=replay_client([tool_calls(("c1", tool, '{"name": "staging"}')), "done"]),
        tools=[get_status, delete_db],
    )
    instrument_autogen_agent(planner, exe, agent_id="planner")
    instrument_autogen_agent(worker, exe, agent_id="worker")
    return planner, worker


@pytest.mark.parametrize("streaming", [False, True])
async def test_team_run_is_one_trace(exe: Execlave, exporter: InMemorySpanExporter, streaming: bool) -> None:
    ran: list[str] = []
    planner, worker = agents(exe, "get_status", ran)
    team = RoundRobinGroupChat([planner, worker], termination_condition=MaxMessageTermination(3))
    if streaming:

        async def consume() -> None:
            async for _ in team.run_stream(task="check staging"):
                pass

        await asyncio.wait_for(consume(), TIMEOUT)
    else:
        await asyncio.wait_for(team.run(task="check staging"), TIMEOUT)
    assert ran == ["staging"]
    spans = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "execlave"]
    root = assert_one_conversation(spans)
    assert root.attributes["execlave.conversation.kind"] == "team.run_stream"
    assert {"invoke_agent planner", "invoke_agent worker", "check_tool get_status"} <= {s.name for s in spans}


async def test_block_in_team_ends_the_root_with_error(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    ran: list[str] = []
    planner, worker = agents(exe, "delete_db", ran)
    team = RoundRobinGroupChat([planner, worker], termination_condition=MaxMessageTermination(3))
    with pytest.raises(PolicyBlockedError), raise_policy_blocks(team):
        await asyncio.wait_for(team.run(task="clean staging"), TIMEOUT)
    assert ran == []
    spans = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "execlave"]
    root = assert_one_conversation(spans)
    assert root.status.status_code is StatusCode.ERROR  # also where AgentChat swallows the error (0.4)


async def test_team_without_instrumented_agents_is_untouched(
    exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    ran: list[str] = []
    agents(exe, "get_status", ran)  # patches the team class
    plain = AssistantAgent("plain", model_client=replay_client(["hi"]))
    team = RoundRobinGroupChat([plain], termination_condition=MaxMessageTermination(2))
    await asyncio.wait_for(team.run(task="hello"), TIMEOUT)
    assert not [s for s in exporter.get_finished_spans() if s.name == ROOT]


@pytest.mark.parametrize("streaming", [False, True])
async def test_agent_run_is_one_trace(exe: Execlave, exporter: InMemorySpanExporter, streaming: bool) -> None:
    ran: list[str] = []
    _, worker = agents(exe, "get_status", ran)
    if streaming:

        async def consume() -> None:
            async for _ in worker.run_stream(task="check staging"):
                pass

        await asyncio.wait_for(consume(), TIMEOUT)
    else:
        await asyncio.wait_for(worker.run(task="check staging"), TIMEOUT)
    assert ran == ["staging"]
    root = assert_one_conversation(list(exporter.get_finished_spans()))
    assert root.attributes["gen_ai.agent.id"] == "worker"
    uninstrument_autogen_agent(worker)
    assert "run" not in vars(worker) and "run_stream" not in vars(worker)

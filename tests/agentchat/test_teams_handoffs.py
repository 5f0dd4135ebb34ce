"""Teams (RoundRobinGroupChat, SelectorGroupChat) and handoffs under the AgentChat adapter."""

from __future__ import annotations

import asyncio
from importlib import import_module
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent, raise_policy_blocks
from support.policies import INJECTION_BLOCK
from support.spans import spans_named

from .conftest import replay_client, require_agentchat, tool_calls

require_agentchat()

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat  # noqa: E402

# Versions with GroupChatError re-raise an agent's error as a RuntimeError string; older ones
# (0.4.x) log it and end the run normally.
_AGENTCHAT_RAISES = hasattr(import_module("autogen_agentchat.teams._group_chat._events"), "GroupChatError")
TIMEOUT = 30  # a hung team must fail the test, not the CI job


def two_agents(exe: Execlave, ran: list[str]) -> tuple[AssistantAgent, AssistantAgent]:
    async def delete_db(name: str) -> str:
        """Delete a database."""
        ran.append(name)
        return "deleted"

    planner = AssistantAgent("planner", model_client=replay_client(["Plan: delete the staging db."]))
    executor = AssistantAgent(
        "executor",
        model_client=replay_client([tool_calls(("c1", "delete_db", '{"name": "staging"}')), "done"]),
        tools=[delete_db],
    )
    instrument_autogen_agent(planner, exe, agent_id="planner")
    instrument_autogen_agent(executor, exe, agent_id="executor")
    return planner, executor


async def test_round_robin_block_surfaces_as_policy_blocked(
    exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    ran: list[str] = []
    planner, executor = two_agents(exe, ran)
    team = RoundRobinGroupChat([planner, executor], termination_condition=MaxMessageTermination(4))
    with pytest.raises(PolicyBlockedError) as info, raise_policy_blocks(team):
        await asyncio.wait_for(team.run(task="clean up staging"), TIMEOUT)
    assert ran == []
    (violation,) = info.value.violations
    assert violation["policyId"] == "deny-destructive" and violation["toolName"] == "delete_db"
    if _AGENTCHAT_RAISES:
        assert isinstance(info.value.__cause__, RuntimeError)  # chained from the team's own error
    assert spans_named(exporter, "check_tool delete_db")


async def test_round_robin_without_helper_native_behaviour(exe: Execlave) -> None:
    """What AgentChat does on its own, measured: 0.6+/0.7 raises a RuntimeError string (the
    violations are lost), 0.4.2 logs the error and returns, 0.4.9 re-raises the original error.
    raise_policy_blocks gives one behaviour across all of them."""
    ran: list[str] = []
    planner, executor = two_agents(exe, ran)
    team = RoundRobinGroupChat([planner, executor], termination_condition=MaxMessageTermination(4))
    try:
        await asyncio.wait_for(team.run(task="clean up staging"), TIMEOUT)
    except PolicyBlockedError:
        assert not _AGENTCHAT_RAISES
    except RuntimeError as exc:
        assert _AGENTCHAT_RAISES
        assert "PolicyBlockedError" in str(exc)
    else:
        assert not _AGENTCHAT_RAISES
    assert ran == []


async def test_run_stream_inside_helper(exe: Execlave) -> None:
    ran: list[str] = []
    planner, executor = two_agents(exe, ran)
    team = RoundRobinGroupChat([planner, executor], termination_condition=MaxMessageTermination(4))

    async def consume() -> list[Any]:
        return [m async for m in team.run_stream(task="clean up staging")]

    with pytest.raises(PolicyBlockedError), raise_policy_blocks(team):
        await asyncio.wait_for(consume(), TIMEOUT)


async def test_helper_passes_other_failures_through(exe: Execlave) -> None:
    broken = AssistantAgent("broken", model_client=replay_client([]))  # no responses: the model raises
    instrument_autogen_agent(broken, exe, agent_id="broken")
    team = RoundRobinGroupChat([broken], termination_condition=MaxMessageTermination(2))
    try:
        with raise_policy_blocks(team):
            await asyncio.wait_for(team.run(task="hello"), TIMEOUT)
    except RuntimeError as exc:  # 0.6+: the team's own error, unchanged
        assert _AGENTCHAT_RAISES
        assert "No more mock responses" in str(exc)
    except ValueError as exc:  # 0.4.9: the model's own error, unchanged
        assert not _AGENTCHAT_RAISES
        assert "No more mock responses" in str(exc)
    else:
        assert not _AGENTCHAT_RAISES  # 0.4.2 logs the error and returns


async def test_selector_group_chat_block(exe: Execlave) -> None:
    ran: list[str] = []
    planner, executor = two_agents(exe, ran)
    selector = replay_client(["executor", "planner", "executor"])
    team = SelectorGroupChat(
        [planner, executor], model_client=selector, termination_condition=MaxMessageTermination(4)
    )
    with pytest.raises(PolicyBlockedError) as info, raise_policy_blocks(team):
        await asyncio.wait_for(team.run(task="clean up staging"), TIMEOUT)
    assert info.value.violations[0]["toolName"] == "delete_db"
    assert ran == []


def handoff_agent(exe: Execlave) -> AssistantAgent:
    agent = AssistantAgent(
        "triage",
        model_client=replay_client([tool_calls(("h1", "transfer_to_billing", "{}"))]),
        handoffs=["billing"],
    )
    return instrument_autogen_agent(agent, exe, agent_id="triage")


async def test_handoff_blocked_by_allowlist_without_transfer(
    provider: Any, exporter: InMemorySpanExporter
) -> None:
    allow_only_status = {
        "id": "allow-status",
        "name": "Only status tools",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "ruleDefinition": {"allow": ["get_status"]},
    }
    exe = Execlave(policies=[allow_only_status], tracer_provider=provider)
    agent = handoff_agent(exe)
    with pytest.raises(PolicyBlockedError) as info:
        await agent.run(task="I have a billing question")
    assert info.value.violations[0]["toolName"] == "transfer_to_billing"
    (check,) = spans_named(exporter, "check_tool transfer_to_billing")
    assert check.attributes["execlave.tool.handoff"] is True


async def test_handoff_allowed_when_listed(provider: Any) -> None:
    allow = {
        "id": "allow-status-and-handoffs",
        "name": "Status tools and handoffs",
        "policyType": "tool_invocation",
        "enforcementMode": "block",
        "ruleDefinition": {"allow": ["get_status", "transfer_to_*"]},
    }
    exe = Execlave(policies=[allow, INJECTION_BLOCK], tracer_provider=provider)
    agent = handoff_agent(exe)
    result = await agent.run(task="I have a billing question")
    final = result.messages[-1]
    assert type(final).__name__ == "HandoffMessage" and final.target == "billing"

"""Real AutoGen agents (classic AG2 and AgentChat) instrumented with a key, against the loopback
Execlave: allowed rounds pass, the server's blocks stop the round with its violations, tool names
go as a list of strings (one enforce call per requested tool call, as the published integration
does), a dashboard pause stops the next round, and async rounds await the server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from execlave import AgentPausedError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.execlave_api import block
from support.requires import require
from support.waiting import wait_until

PAY_VIOLATION = {
    "policyId": "pol_pay",
    "policyName": "Payments need a human",
    "policyType": "tool_restriction",
    "enforcementMode": "block",
    "message": "pay_invoice is not allowed for this agent",
}


def deny_pay(body: dict[str, Any]) -> tuple[int, Any]:
    if "pay_invoice" in body.get("tools", []):
        return block(PAY_VIOLATION)
    if "forbidden" in body["input"]:
        return block({**PAY_VIOLATION, "policyId": "pol_input", "message": "input refused"})
    return 200, {"allowed": True, "warnings": []}


def classic_agent(autogen: Any, reply: Any) -> Any:
    agent = autogen.ConversableAgent("payer", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, reply), position=0)
    return agent


PAY_REPLY = {
    "content": None,
    "tool_calls": [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "pay_invoice", "arguments": json.dumps({"n": 7})},
        }
    ],
}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_classic_rounds_against_the_server(api, make_client, use_async):
    autogen = require("autogen")
    api.enforce = deny_pay
    exe = make_client(api.base_url)

    def run(agent: Any, text: str) -> Any:
        messages = [{"role": "user", "content": text}]
        if use_async:
            return asyncio.run(agent.a_generate_reply(messages=messages))
        return agent.generate_reply(messages=messages)

    ok = instrument_autogen_agent(classic_agent(autogen, "done"), exe, agent_id="pay-agent")
    assert run(ok, "hello") == "done"
    assert api.calls("enforce")[0].body["input"] == "hello"

    with pytest.raises(PolicyBlockedError) as info:
        run(ok, "something forbidden")
    assert info.value.violations[0]["policyId"] == "pol_input"

    payer = instrument_autogen_agent(classic_agent(autogen, PAY_REPLY), exe, agent_id="pay-agent")
    with pytest.raises(PolicyBlockedError) as info:
        run(payer, "pay invoice 7")
    assert info.value.violations[0]["policyId"] == "pol_pay"
    tool_call = next(c.body for c in api.calls("enforce") if "tools" in c.body)
    assert tool_call["tools"] == ["pay_invoice"]
    assert tool_call["metadata"]["toolArguments"] == [{"name": "pay_invoice", "arguments": {"n": 7}}]


def test_classic_dashboard_pause_stops_the_next_round_and_resume_restores_it(api, make_client):
    autogen = require("autogen")
    exe = make_client(api.base_url)
    exe.register_agent("ops-assistant")
    agent = instrument_autogen_agent(classic_agent(autogen, "done"), exe, agent_id="ops-assistant")
    messages = [{"role": "user", "content": "status?"}]
    assert agent.generate_reply(messages=messages) == "done"
    api.set_status("ops-assistant", "paused")

    def paused() -> bool:
        try:
            agent.generate_reply(messages=messages)
        except AgentPausedError:
            return True
        return False

    assert wait_until(paused)
    api.set_status("ops-assistant", "active")
    assert wait_until(lambda: not paused())


async def ticks_while(work: Callable[[], Awaitable[Any]]) -> tuple[int, BaseException | None]:
    """Run ``work`` with a 10 ms ticker beside it; the ticks counted and what it raised."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        await work()
        error = None
    except BaseException as exc:
        error = exc
    finally:
        stop.set()
        await task
    return ticks, error


async def test_classic_async_round_never_blocks_the_loop(api, make_client):
    autogen = require("autogen")
    api.enforce = deny_pay
    api.fault["enforce"] = ("slow", 0.2)
    exe = make_client(api.base_url)
    agent = instrument_autogen_agent(classic_agent(autogen, PAY_REPLY), exe, agent_id="pay-agent")
    ticks, error = await ticks_while(
        lambda: agent.a_generate_reply(messages=[{"role": "user", "content": "pay invoice 7"}])
    )
    assert isinstance(error, PolicyBlockedError)
    assert ticks >= 5  # the loop ran while the enforce requests were in flight


async def test_agentchat_rounds_against_the_server(api, make_client):
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent

    from agentchat.conftest import replay_client, tool_calls

    ran: list[str] = []

    async def pay_invoice(n: int) -> str:
        """Pay an invoice."""
        ran.append("pay_invoice")
        return "paid"

    api.enforce = deny_pay
    api.fault["enforce"] = ("slow", 0.1)
    exe = make_client(api.base_url)
    assert not exe.decides_in_process  # the turn awaits the server's decisions (the loop keeps ticking)

    ok = AssistantAgent("helper", model_client=replay_client(["hi there"]))
    instrument_autogen_agent(ok, exe, agent_id="helper-agent")
    result = await ok.run(task="hello")
    assert result.messages[-1].content == "hi there"

    client = replay_client([tool_calls(("c1", "pay_invoice", '{"n": 7}')), "done"])
    payer = AssistantAgent("payer", model_client=client, tools=[pay_invoice])
    instrument_autogen_agent(payer, exe, agent_id="pay-agent")
    ticks, error = await ticks_while(lambda: payer.run(task="pay invoice 7"))
    assert isinstance(error, PolicyBlockedError)
    assert [v["policyId"] for v in error.violations] == ["pol_pay"]
    assert ran == []
    assert ticks >= 5
    assert any(c.body.get("tools") == ["pay_invoice"] for c in api.calls("enforce"))


async def test_agentchat_dashboard_pause(api, make_client):
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent

    from agentchat.conftest import replay_client

    exe = make_client(api.base_url)
    exe.register_agent("helper-agent")
    api.set_status("helper-agent", "paused")
    assert wait_until(lambda: exe._connection.agents.server_pause("helper-agent")[0])
    agent = AssistantAgent("helper", model_client=replay_client(["hi there"]))
    instrument_autogen_agent(agent, exe, agent_id="helper-agent")
    with pytest.raises(AgentPausedError):
        await agent.run(task="hello")


def test_classic_round_waits_for_an_approval_and_runs(api, make_client):
    autogen = require("autogen")
    api.require_approval = lambda body: "pay_invoice" in body.get("tools", [])
    api.approval_outcome = "approved"
    exe = make_client(api.base_url)
    payer = instrument_autogen_agent(classic_agent(autogen, PAY_REPLY), exe, agent_id="pay-agent")
    reply = payer.generate_reply(messages=[{"role": "user", "content": "pay invoice 7"}])
    assert reply["tool_calls"][0]["function"]["name"] == "pay_invoice"
    (verify,) = api.calls("approvals.verify")
    assert verify.body["actionContext"]["tools"] == ["pay_invoice"]


async def test_ag2_turn_awaits_the_server_decision(api, make_client):
    require("ag2")
    from ag2 import Agent, tool
    from ag2.events import ToolCallEvent
    from ag2.testing import TestConfig

    ran: list[str] = []

    def pay_invoice(n: int) -> str:
        ran.append("pay_invoice")
        return "paid"

    api.enforce = deny_pay
    api.fault["enforce"] = ("slow", 0.2)
    exe = make_client(api.base_url)
    model = TestConfig(ToolCallEvent("pay_invoice", arguments='{"n": 7}'), "done")
    agent = Agent("payer", config=model, tools=[tool(pay_invoice)])
    instrument_autogen_agent(agent, exe, agent_id="pay-agent")

    ticks, error = await ticks_while(lambda: agent.ask("pay invoice 7"))
    assert isinstance(error, PolicyBlockedError)
    assert [v["policyId"] for v in error.violations] == ["pol_pay"]
    assert ran == []
    assert api.calls("enforce")
    assert ticks >= 5  # the loop ran while the enforce requests were in flight

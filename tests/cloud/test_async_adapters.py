"""The async adapters decide server-evaluated policies with httpx.AsyncClient: while Execlave's
enforce endpoint takes its time, the event loop keeps running, and its 403 still blocks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.execlave_api import ExeclaveAPI
from support.requires import require

from .conftest import KEY, TOOL_POLICY
from .test_server_decisions import APPROVAL, ENFORCE, deny_pay


@pytest.fixture
def slow_server():
    with ExeclaveAPI(api_key=KEY, policies=[TOOL_POLICY, APPROVAL]) as api:
        api.enforce = deny_pay
        api.fault[ENFORCE] = ("slow", 0.3)
        yield api


async def ticks_while(work: Callable[[], Awaitable[Any]]) -> tuple[int, BaseException | None]:
    """Run ``work`` with a 10 ms ticker beside it; return the ticks counted and what it raised."""
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


async def test_classic_a_generate_reply_awaits_the_server_decision(slow_server, make_client):
    autogen = require("autogen")
    exe = make_client(slow_server.base_url)
    agent = autogen.ConversableAgent("payer", llm_config=False, human_input_mode="NEVER")
    call = {"name": "pay_invoice", "arguments": json.dumps({"invoice": 7})}
    reply = {"content": None, "tool_calls": [{"id": "c1", "type": "function", "function": call}]}
    agent.register_reply([autogen.Agent, None], lambda *a, **k: (True, reply), position=0)
    instrument_autogen_agent(agent, exe, agent_id="pay-agent")

    ticks, error = await ticks_while(
        lambda: agent.a_generate_reply(messages=[{"role": "user", "content": "pay invoice 7"}])
    )
    assert isinstance(error, PolicyBlockedError)
    assert [v["policyId"] for v in error.violations] == ["needs-approval"]
    assert slow_server.calls(ENFORCE)  # the server really decided
    assert ticks >= 5  # the loop ran while the enforce requests were in flight


async def test_agentchat_turn_awaits_the_server_decision(slow_server, make_client):
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent

    from agentchat.conftest import replay_client, tool_calls

    ran: list[str] = []

    async def pay_invoice(invoice: int) -> str:
        """Pay an invoice."""
        ran.append("pay_invoice")
        return "paid"

    exe = make_client(slow_server.base_url)
    client = replay_client([tool_calls(("c1", "pay_invoice", '{"invoice": 7}')), "done"])
    agent = AssistantAgent("payer", model_client=client, tools=[pay_invoice])
    instrument_autogen_agent(agent, exe, agent_id="pay-agent")

    ticks, error = await ticks_while(lambda: agent.run(task="pay invoice 7"))
    assert isinstance(error, PolicyBlockedError)
    assert [v["policyId"] for v in error.violations] == ["needs-approval"]
    assert ran == []
    assert ticks >= 5


async def test_ag2_turn_awaits_the_server_decision(slow_server, make_client):
    require("ag2")
    from ag2 import Agent, tool
    from ag2.events import ToolCallEvent
    from ag2.testing import TestConfig

    ran: list[str] = []

    def pay_invoice(invoice: int) -> str:
        ran.append("pay_invoice")
        return "paid"

    exe = make_client(slow_server.base_url)
    model = TestConfig(ToolCallEvent("pay_invoice", arguments='{"invoice": 7}'), "done")
    agent = Agent("payer", config=model, tools=[tool(pay_invoice)])
    instrument_autogen_agent(agent, exe, agent_id="pay-agent")

    ticks, error = await ticks_while(lambda: agent.ask("pay invoice 7"))
    assert isinstance(error, PolicyBlockedError)
    assert [v["policyId"] for v in error.violations] == ["needs-approval"]
    assert ran == []
    assert slow_server.calls(ENFORCE)
    assert ticks >= 5

"""100 concurrent AgentChat runs (asyncio.gather) on one shared client: every run's spans form
its own tree, blocks land exactly on the runs given bad input, the rate limit is exact, and a
deadlock fails the test (the gather is bounded)."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentchat.conftest import _quiet_replay_warnings, replay_client, require_agentchat, tool_calls  # noqa: F401
from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import INPUTS
from support.spans import spans_named

from .conftest import RATE_LIMITED, TIMEOUT, Chat, assert_chat_trees, span_names

require_agentchat()

from autogen_agentchat.agents import AssistantAgent  # noqa: E402

RUNS = 100
LIMITED_RUNS = 50


def plan(key: str, index: int) -> tuple[str, list[Any], str]:
    kind = ("good", "bad_input", "bad_tool")[index % 3]
    if kind == "bad_tool":
        responses: list[Any] = [tool_calls((f"{key}-c", "delete_database", f'{{"db": "{key}"}}')), "never"]
    else:
        responses = [tool_calls((f"{key}-c", "get_status", f'{{"chat": "{key}"}}')), f"{key}: done"]
    task = f"[{key}] {INPUTS['injection'][1]}" if kind == "bad_input" else f"[{key}] how is the service?"
    return kind, responses, task


def make_agent(exe: Execlave, agent_id: str, responses: list[Any], ran: list[str]) -> Any:
    async def get_status(chat: str) -> str:
        """Status of a chat's service."""
        await asyncio.sleep(0)
        ran.append(chat)
        return f"{chat}: healthy"

    async def delete_database(db: str) -> str:
        """Delete a database."""
        ran.append(f"DELETED {db}")
        return "deleted"

    agent = AssistantAgent(
        "ops",
        model_client=replay_client(responses),
        tools=[get_status, delete_database],
        reflect_on_tool_use=True,
    )
    instrument_autogen_agent(agent, exe, agent_id=agent_id)
    return agent


async def test_hundred_concurrent_runs(
    shared_exe: Execlave, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    tracer = provider.get_tracer("app")
    # reference: one good run alone
    ref_ran: list[str] = []
    _, responses, task = plan("ref", 0)
    with tracer.start_as_current_span("chat ref"):
        await make_agent(shared_exe, "ops-ref", responses, ref_ran).run(task=task)
    expected_good = [n for n in span_names(spans_named(exporter, "")) if n != "chat ref"]
    assert ref_ran == ["ref"] and "check_tool get_status" in expected_good
    exporter.clear()

    chats = [Chat(f"r{i}", {f"ops-r{i}"}, bad=plan(f"r{i}", i)[0] != "good") for i in range(RUNS)]
    ran: dict[str, list[str]] = {c.key: [] for c in chats}

    async def one(index: int, chat: Chat) -> None:
        _, responses, task = plan(chat.key, index)
        agent = make_agent(shared_exe, f"ops-{chat.key}", responses, ran[chat.key])
        with tracer.start_as_current_span(f"chat {chat.key}") as root:
            chat.root(root)
            try:
                result = await agent.run(task=task)
                assert result.messages[-1].content == f"{chat.key}: done"
                chat.outcome = "ok"
            except PolicyBlockedError:
                chat.outcome = "blocked"

    async def limited(i: int) -> str:
        agent = make_agent(shared_exe, RATE_LIMITED, [f"fine {i}"], [])
        try:
            await agent.run(task=f"[l{i}] status")
            return "ok"
        except PolicyBlockedError as exc:
            assert [v["policyId"] for v in exc.violations] == ["rate-per-minute"]
            return "blocked"

    results = await asyncio.wait_for(
        asyncio.gather(*(one(i, c) for i, c in enumerate(chats)), *(limited(i) for i in range(LIMITED_RUNS))),
        TIMEOUT,
    )
    spans = [s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.agent.id") != RATE_LIMITED]
    grouped = assert_chat_trees(spans, chats)
    for index, chat in enumerate(chats):
        kind = plan(chat.key, index)[0]
        assert ran[chat.key] == ([chat.key] if kind == "good" else []), chat.key
        if kind == "good":
            assert span_names(grouped[chat.key]) == expected_good, chat.key
    assert results[RUNS:].count("ok") == 20
    limited_spans = [
        s for s in spans_named(exporter, "invoke_agent") if s.attributes["gen_ai.agent.id"] == RATE_LIMITED
    ]
    assert len(limited_spans) == LIMITED_RUNS
    assert sum(s.attributes["execlave.policy.decision"] == "allow" for s in limited_spans) == 20

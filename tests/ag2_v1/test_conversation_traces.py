"""Conversations on AG2 1.x: ``agent.ask`` / ``agent.run`` and their continuations
(``reply.ask`` / ``reply.run``) are one conversation. AG2 can continue a reply at any later time,
so no span can wrap a conversation: each turn's ``invoke_agent`` span is a root (or a child of the
application's current span) and every span of every turn carries the conversation's
``gen_ai.conversation.id`` (AG2's stream id, or the instrumented ``session_id``)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.integrations.autogen import instrument_autogen_agent
from support.spans import spans_named

from .conftest import Model, Tools, call, require_ag2

ag2 = require_ag2()
pytestmark = pytest.mark.ag2

from ag2 import Agent  # noqa: E402


def _ours(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "execlave"]


def _agent(model: Model, tools: Tools, exe: Execlave, **kwargs: Any) -> Any:
    agent = Agent("ops", config=model.config, tools=[tools.make("get_status")])
    return instrument_autogen_agent(agent, exe, agent_id="ops-assistant", **kwargs)


async def test_ask_and_its_continuations_are_one_conversation_under_the_apps_span(
    exe: Execlave, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tools = Tools()
    model = Model(call("get_status", call_id="c1"), "first", "second", "third")
    agent = _agent(model, tools, exe)
    with provider.get_tracer("app").start_as_current_span("POST /chat") as app_span:
        reply = await agent.ask("status?")
        again = await reply.ask("and now?")
        async with again.run("anything else?") as run:
            await run.result()
    assert tools.ran == ["get_status"]
    ours = _ours(exporter)
    assert {s.name for s in ours} >= {"invoke_agent ops", "check_tool get_status", "execute_tool get_status"}
    conversation_id = str(reply.context.stream.id)
    assert {s.attributes.get("gen_ai.conversation.id") for s in ours} == {conversation_id}
    turns = spans_named(exporter, "invoke_agent ops")
    assert len(turns) == 3
    app = app_span.get_span_context()
    assert {t.parent.span_id for t in turns if t.parent is not None} == {app.span_id}
    assert len([t for t in turns if t.parent is not None]) == 3
    assert {s.context.trace_id for s in ours} == {app.trace_id}


async def test_each_new_ask_or_run_is_its_own_conversation(
    exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    tools = Tools()
    model = Model("one", "two")
    agent = _agent(model, tools, exe)
    first = await agent.ask("a")
    async with agent.run("b") as run:
        second = await run.result()
    turns = spans_named(exporter, "invoke_agent ops")
    assert len(turns) == 2 and all(t.parent is None for t in turns)  # no app span: each turn is a root
    ids = [t.attributes.get("gen_ai.conversation.id") for t in turns]
    assert ids == [str(first.context.stream.id), str(second.context.stream.id)]
    assert ids[0] != ids[1]


async def test_a_conversation_on_an_explicit_stream_keeps_its_id(
    exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    stream = ag2.MemoryStream()
    agent = _agent(Model("one", "two"), Tools(), exe)
    await agent.ask("a", stream=stream)
    await agent.ask("b", stream=stream)
    assert {s.attributes.get("gen_ai.conversation.id") for s in _ours(exporter)} == {str(stream.id)}


async def test_session_id_is_the_conversation_id(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    tools = Tools()
    agent = _agent(Model(call("get_status"), "done", "more"), tools, exe, session_id="s-7")
    reply = await agent.ask("status?")
    await reply.ask("more?")
    ours = _ours(exporter)
    assert len(ours) >= 4
    assert {s.attributes.get("gen_ai.conversation.id") for s in ours} == {"s-7"}

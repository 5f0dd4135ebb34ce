"""One conversation = one trace on classic AutoGen: ``initiate_chat`` / ``a_initiate_chat``,
sequential chats, group chats through ``GroupChatManager`` and nested chats each give one
``execlave.conversation`` root with every round, check and tool execution beneath it and
``gen_ai.conversation.id`` on all of them; enforcement does not depend on that root."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider, StatusCode

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import conversation, instrument_autogen_agent, uninstrument_autogen_agent
from support.conversations import ROOT, assert_one_conversation, by_trace
from support.otlp import HttpReceiver
from support.policies import INJECTION_BLOCK, TOOL_DENY
from support.requires import require

from .conftest import Script, tool_call
from .test_classic import Recorder, executor_agent, scripted_agent

autogen = require("autogen")
pytestmark = pytest.mark.classic
ROOT_DIR = Path(__file__).resolve().parents[2]


def test_demo_sends_one_trace_per_conversation() -> None:
    with HttpReceiver() as receiver:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        env.pop("EXECLAVE_API_KEY", None)
        proc = subprocess.run(
            [sys.executable, "examples/demo.py"],
            cwd=ROOT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        spans = receiver.wait_for(11)

    traces = by_trace(spans)
    assert len(traces) == 3  # the demo's three chats
    roots = []
    for chat in traces.values():
        roots.append(assert_one_conversation(chat))
    allowed = next(t for t in traces.values() if any(s.name == "execute_tool get_disk_usage" for s in t))
    assert {s.name for s in allowed} >= {
        ROOT,
        "invoke_agent ops_assistant",
        "check_tool get_disk_usage",
        "invoke_agent executor",
        "execute_tool get_disk_usage",
    }
    # Blocked chats: the root is ERROR (and exported); the allowed one is not.
    assert sorted(r.status_code for r in roots) == [0, 2, 2]
    assert sorted(r.attributes.get("execlave.policy.decision", "") for r in roots) == ["", "block", "block"]
    assert {r.attributes["gen_ai.agent.name"] for r in roots} == {"executor"}


def _pair(exe: Execlave, tools: Recorder, *replies: Any) -> tuple[Any, Any]:
    assistant = scripted_agent("assistant", Script(*replies))
    executor = executor_agent(
        "executor", {"get_status": tools.fn("get_status"), "delete_logs": tools.fn("delete_logs")}
    )
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    instrument_autogen_agent(executor, exe, agent_id="executor")
    return executor, assistant


@pytest.mark.parametrize("use_async", [False, True])
def test_chat_with_tool_execution_is_one_trace(
    exe: Execlave, exporter: InMemorySpanExporter, use_async: bool
) -> None:
    tools = Recorder()
    executor, assistant = _pair(
        exe, tools, {"content": None, "tool_calls": [tool_call("get_status", {}, "c1")]}, "done. TERMINATE"
    )
    if use_async:
        asyncio.run(executor.a_initiate_chat(assistant, message="status?", max_turns=2, silent=True))
    else:
        executor.initiate_chat(assistant, message="status?", max_turns=2, silent=True)
    assert tools.calls == [("get_status", {})]
    spans = list(exporter.get_finished_spans())
    root = assert_one_conversation(spans)
    assert root.attributes["execlave.conversation.kind"] == (
        "a_initiate_chat" if use_async else "initiate_chat"
    )
    assert root.attributes["execlave.conversation.recipient"] == "assistant"
    assert {s.name for s in spans} >= {
        "execute_tool get_status",
        "check_tool get_status",
        "invoke_agent assistant",
    }


def test_each_chat_is_its_own_trace_and_session_id_is_the_conversation_id(
    exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    assistant = scripted_agent("assistant", Script("one", "two"))
    user = executor_agent("user", {})
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    instrument_autogen_agent(user, exe, agent_id="user", session_id="s-42")
    user.initiate_chat(assistant, message="a", max_turns=1, silent=True)
    user.initiate_chat(assistant, message="b", max_turns=1, silent=True)
    traces = by_trace(list(exporter.get_finished_spans()))
    assert len(traces) == 2
    for chat in traces.values():
        assert assert_one_conversation(chat).attributes["gen_ai.conversation.id"] == "s-42"


def test_group_chat_is_one_trace(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    tools = Recorder()
    planner = scripted_agent("planner", Script("Checking the host next."))
    operator = scripted_agent(
        "operator", Script({"content": None, "tool_calls": [tool_call("delete_logs", {}, "g1")]})
    )
    executor = executor_agent("executor", {"delete_logs": tools.fn("delete_logs")})
    agents = [executor, planner, operator]
    for agent in agents:
        instrument_autogen_agent(agent, exe, agent_id=agent.name)
    group = autogen.GroupChat(agents=agents, messages=[], max_round=4, speaker_selection_method="round_robin")
    manager = autogen.GroupChatManager(groupchat=group, llm_config=False)
    instrument_autogen_agent(manager, exe, agent_id="manager")
    with pytest.raises(PolicyBlockedError):
        executor.initiate_chat(manager, message="Free some disk space", silent=True)
    assert tools.calls == []
    spans = list(exporter.get_finished_spans())
    root = assert_one_conversation(spans)
    assert root.status.status_code is StatusCode.ERROR
    names = {s.name for s in spans}
    assert {
        "invoke_agent chat_manager",
        "invoke_agent planner",
        "invoke_agent operator",
        "check_tool delete_logs",
    } <= names


def test_nested_chats_stay_in_the_outer_trace(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    writer = scripted_agent("writer", Script("draft"))
    reviewer = scripted_agent("reviewer", Script("looks good"))
    lead = executor_agent("lead", {})
    user = executor_agent("user", {})
    lead.register_nested_chats(
        [{"recipient": reviewer, "message": "review this", "max_turns": 1, "summary_method": "last_msg"}],
        trigger=user,
    )
    for agent in (writer, reviewer, lead, user):
        instrument_autogen_agent(agent, exe, agent_id=agent.name)
    user.initiate_chat(lead, message="write a note", max_turns=1, silent=True)
    spans = list(exporter.get_finished_spans())
    assert_one_conversation(spans)
    assert "invoke_agent reviewer" in {s.name for s in spans}  # the nested chat's round


def test_sequential_chats_grouped_with_conversation(exe: Execlave, exporter: InMemorySpanExporter) -> None:
    first = scripted_agent("first", Script("one"))
    second = scripted_agent("second", Script("two"))
    user = executor_agent("user", {})
    for agent in (first, second, user):
        instrument_autogen_agent(agent, exe, agent_id=agent.name)
    queue = [
        {"sender": user, "recipient": first, "message": "a", "max_turns": 1, "summary_method": "last_msg"},
        {"sender": user, "recipient": second, "message": "b", "max_turns": 1, "summary_method": "last_msg"},
    ]
    with conversation(exe, name="nightly") as conv:
        autogen.initiate_chats(queue)
    spans = list(exporter.get_finished_spans())
    root = assert_one_conversation(spans)
    assert root.attributes["gen_ai.conversation.id"] == conv.id
    assert {"invoke_agent first", "invoke_agent second"} <= {s.name for s in spans}
    if callable(getattr(user, "initiate_chats", None)):  # pyautogen 0.2.x has the method
        exporter.clear()
        user.initiate_chats([{k: v for k, v in q.items() if k != "sender"} for q in queue])
        assert_one_conversation(list(exporter.get_finished_spans()))


def test_conversation_nests_under_the_apps_span(
    exe: Execlave, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    assistant = scripted_agent("assistant", Script("hi"))
    user = executor_agent("user", {})
    for agent in (assistant, user):
        instrument_autogen_agent(agent, exe, agent_id=agent.name)
    with provider.get_tracer("app").start_as_current_span("POST /chat") as app_span:
        user.initiate_chat(assistant, message="hello", max_turns=1, silent=True)
    ours = [s for s in exporter.get_finished_spans() if s.name != "POST /chat"]
    assert_one_conversation(ours, parent=app_span.get_span_context().span_id)
    assert {s.context.trace_id for s in ours} == {app_span.get_span_context().trace_id}


@pytest.mark.parametrize("kind", ["noop", "sampled_out"])
def test_enforcement_does_not_depend_on_the_root_span(kind: str) -> None:
    tp: Any = NoOpTracerProvider() if kind == "noop" else TracerProvider(sampler=ALWAYS_OFF)
    exe = Execlave(policies=[TOOL_DENY, INJECTION_BLOCK], tracer_provider=tp)
    try:
        tools = Recorder()
        executor, assistant = _pair(
            exe, tools, {"content": None, "tool_calls": [tool_call("delete_logs", {}, "x")]}
        )
        with pytest.raises(PolicyBlockedError):
            executor.initiate_chat(assistant, message="free space", max_turns=2, silent=True)
        assert tools.calls == []
        assert trace.get_current_span() is trace.INVALID_SPAN or not trace.get_current_span().is_recording()
    finally:
        exe.shutdown(timeout=1.0)


def test_uninstrument_restores_conversation_entry_points(
    exe: Execlave, exporter: InMemorySpanExporter
) -> None:
    assistant = scripted_agent("assistant", Script("hi"))
    user = executor_agent("user", {})
    instrument_autogen_agent(user, exe, agent_id="user")
    instrument_autogen_agent(user, exe, agent_id="user")  # idempotent
    assert "initiate_chat" in vars(user)
    uninstrument_autogen_agent(user)
    assert "initiate_chat" not in vars(user) and "a_initiate_chat" not in vars(user)
    user.initiate_chat(assistant, message="hello", max_turns=1, silent=True)
    assert not [s for s in exporter.get_finished_spans() if s.name == ROOT]


def _settle_background() -> None:
    """Wait for AG2's ``run`` threads to finish (the root ends when the background chat ends)."""
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and "initiate_chat" in thread.name:
            thread.join(30)


async def _settle_tasks() -> None:
    others = asyncio.all_tasks() - {asyncio.current_task()}
    await asyncio.gather(*others, return_exceptions=True)


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize("single_agent", [False, True])
def test_ag2_run_is_one_trace_under_the_apps_span(
    exe: Execlave,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    use_async: bool,
    single_agent: bool,
) -> None:
    """AG2's ``run`` / ``a_run`` chat in a background thread / task and return at once; the chat is
    still one conversation beneath the caller's span. Single-agent form: a temporary executor
    (not instrumented) starts the chat with the instrumented agent."""
    if not callable(getattr(autogen.ConversableAgent, "run", None)):
        pytest.skip("this AutoGen line has no ConversableAgent.run (pyautogen 0.2 / ag2 0.3)")
    tools = Recorder()
    executor, assistant = _pair(
        exe, tools, {"content": None, "tool_calls": [tool_call("get_status", {}, "r1")]}, "done. TERMINATE"
    )
    starter, kwargs = (assistant, {}) if single_agent else (executor, {"recipient": assistant})
    with provider.get_tracer("app").start_as_current_span("POST /run") as app_span:
        if use_async:

            async def go() -> None:
                response = await starter.a_run(message="status?", max_turns=2, silent=True, **kwargs)
                await response.process()
                await _settle_tasks()

            asyncio.run(go())
        else:
            starter.run(message="status?", max_turns=2, silent=True, **kwargs).process()
            _settle_background()
    ours = [s for s in exporter.get_finished_spans() if s.name != "POST /run"]
    root = assert_one_conversation(ours, parent=app_span.get_span_context().span_id)
    assert root.attributes["execlave.conversation.kind"] == ("a_run" if use_async else "run")
    assert root.attributes["gen_ai.agent.name"] == starter.name
    assert "invoke_agent assistant" in {s.name for s in ours}
    if not single_agent:
        assert tools.calls == [("get_status", {})]
        assert "execute_tool get_status" in {s.name for s in ours}

"""Concurrency through the classic adapter on one shared client: 16 threads each driving their own
instrumented agents, and 100 concurrent async chats. No decision or span crosses between chats,
rate-limit counts are exact, and a deadlock fails the test (every join / gather is bounded)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import INPUTS
from support.requires import require
from support.spans import spans_named

from .conftest import RATE_LIMITED, TIMEOUT, Chat, assert_chat_trees, span_names

autogen = require("autogen")
pytestmark = pytest.mark.classic

THREADS = 16
CHATS_PER_THREAD = 6
ASYNC_CHATS = 100
RATE_CALLS_PER_THREAD = 5
BAD_INPUT = INPUTS["injection"][0]


def call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


class Script:
    """Scripted model; ``yield_to_loop`` makes its async form await, so async chats interleave."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls = 0

    def _next(self) -> tuple[bool, Any]:
        self.calls += 1
        return True, (self.replies.pop(0) if self.replies else "TERMINATE")

    def sync(self, recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        return self._next()

    async def a_sync(
        self, recipient: Any, messages: Any = None, sender: Any = None, config: Any = None
    ) -> Any:
        await asyncio.sleep(0)
        return self._next()


def chat_agents(
    exe: Execlave, suffix: str, script: Script, ran: list[str], use_async: bool
) -> tuple[Any, Any]:
    """An assistant (scripted) and an executor (one real tool) with per-chat agent ids."""
    assistant = autogen.ConversableAgent(
        "assistant", llm_config=False, human_input_mode="NEVER", code_execution_config=False
    )
    assistant.register_reply([autogen.Agent, None], script.a_sync if use_async else script.sync, position=0)

    def get_status(chat: str) -> str:
        ran.append(chat)
        return f"{chat}: healthy"

    executor = autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={"get_status": get_status, "delete_database": lambda **kw: ran.append("DELETED")},
        max_consecutive_auto_reply=3,
        default_auto_reply="TERMINATE",
    )
    instrument_autogen_agent(assistant, exe, agent_id=f"assistant-{suffix}")
    instrument_autogen_agent(executor, exe, agent_id=f"executor-{suffix}")
    return assistant, executor


def plan(key: str, index: int) -> tuple[str, Script, str]:
    """Chat ``index``: good (every third is bad input, every third bad tool call)."""
    kind = ("good", "bad_input", "bad_tool")[index % 3]
    if kind == "bad_tool":
        script = Script({"content": None, "tool_calls": [call("delete_database", {"db": key}, f"{key}-c")]})
    else:
        script = Script(
            {"content": None, "tool_calls": [call("get_status", {"chat": key}, f"{key}-c")]}, "done"
        )
    message = f"[{key}] {BAD_INPUT}" if kind == "bad_input" else f"[{key}] how is the service?"
    return kind, script, message


def chat_spans(exporter: InMemorySpanExporter) -> list[Any]:
    """Every span except the rate-limited agent's rounds (which belong to no chat)."""
    return [s for s in exporter.get_finished_spans() if s.name != f"invoke_agent {RATE_LIMITED}"]


def reference_tree(exe: Execlave, exporter: InMemorySpanExporter, tracer: Any) -> list[str]:
    """The span names one good chat produces when run alone."""
    ran: list[str] = []
    _, script, message = plan("ref", 0)
    assistant, executor = chat_agents(exe, "ref", script, ran, use_async=False)
    with tracer.start_as_current_span("chat ref"):
        executor.initiate_chat(assistant, message=message, max_turns=2, silent=True)
    names = span_names(spans_named(exporter, ""))
    names = [n for n in names if n != "chat ref"]
    exporter.clear()
    assert ran == ["ref"] and "execute_tool get_status" in names
    return names


def run_one(exe: Execlave, tracer: Any, chat: Chat, script: Script, message: str, ran: list[str]) -> None:
    suffix = chat.key
    assistant, executor = chat_agents(exe, suffix, script, ran, use_async=False)
    with tracer.start_as_current_span(f"chat {chat.key}") as root:
        chat.root(root)
        try:
            executor.initiate_chat(assistant, message=message, max_turns=2, silent=True)
            chat.outcome = "ok"
        except PolicyBlockedError:
            chat.outcome = "blocked"


def test_sixteen_threads_share_one_client(
    shared_exe: Execlave, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    tracer = provider.get_tracer("app")
    expected_good = reference_tree(shared_exe, exporter, tracer)
    chats: list[Chat] = []
    ran: dict[str, list[str]] = {}
    rate_outcomes: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        try:
            barrier.wait(TIMEOUT)
            ran[f"t{t}"] = thread_ran = []
            for i in range(CHATS_PER_THREAD):
                key = f"t{t}-{i}"
                kind, script, message = plan(key, i)
                chat = Chat(key, {f"assistant-{key}", f"executor-{key}"}, bad=kind != "good")
                with lock:
                    chats.append(chat)
                run_one(shared_exe, tracer, chat, script, message, thread_ran)
                # interleaved with the chats: one round on a rate-limited agent (own instance, shared id)
                if i < RATE_CALLS_PER_THREAD:
                    limited = autogen.ConversableAgent(
                        "limited", llm_config=False, human_input_mode="NEVER", code_execution_config=False
                    )
                    limited.register_reply([autogen.Agent, None], Script("fine").sync, position=0)
                    instrument_autogen_agent(limited, shared_exe, agent_id=RATE_LIMITED)
                    try:
                        limited.generate_reply(messages=[{"role": "user", "content": f"[{key}] status"}])
                        outcome = "ok"
                    except PolicyBlockedError as exc:
                        assert [v["policyId"] for v in exc.violations] == ["rate-per-minute"]
                        outcome = "blocked"
                    with lock:
                        rate_outcomes.append(outcome)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "deadlock: a worker thread never finished"
    assert errors == []

    assert len(chats) == THREADS * CHATS_PER_THREAD
    grouped = assert_chat_trees(chat_spans(exporter), chats)
    for chat in chats:
        if not chat.bad:
            assert span_names(grouped[chat.key]) == expected_good, chat.key
    # each thread's tool ran exactly for its own good chats, with its own arguments
    for t in range(THREADS):
        good = [f"t{t}-{i}" for i in range(CHATS_PER_THREAD) if plan(f"t{t}-{i}", i)[0] == "good"]
        assert ran[f"t{t}"] == good
    # the rate limit (20 / minute on one agent id) is exact under 16 concurrent threads
    assert len(rate_outcomes) == THREADS * RATE_CALLS_PER_THREAD
    assert rate_outcomes.count("ok") == 20
    limited_spans = spans_named(exporter, "invoke_agent limited")
    assert len(limited_spans) == THREADS * RATE_CALLS_PER_THREAD
    assert sum(s.attributes["execlave.policy.decision"] == "allow" for s in limited_spans) == 20


async def test_hundred_concurrent_async_chats(
    shared_exe: Execlave, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    tracer = provider.get_tracer("app")
    expected_good = reference_tree(shared_exe, exporter, tracer)
    chats = [
        Chat(f"a{i}", {f"assistant-a{i}", f"executor-a{i}"}, bad=plan(f"a{i}", i)[0] != "good")
        for i in range(ASYNC_CHATS)
    ]
    ran: dict[str, list[str]] = {c.key: [] for c in chats}

    async def one(index: int, chat: Chat) -> None:
        _, script, message = plan(chat.key, index)
        assistant, executor = chat_agents(shared_exe, chat.key, script, ran[chat.key], use_async=True)
        with tracer.start_as_current_span(f"chat {chat.key}") as root:
            chat.root(root)
            try:
                await executor.a_initiate_chat(assistant, message=message, max_turns=2, silent=True)
                chat.outcome = "ok"
            except PolicyBlockedError:
                chat.outcome = "blocked"

    async def limited_round(i: int) -> str:
        limited = autogen.ConversableAgent(
            "limited", llm_config=False, human_input_mode="NEVER", code_execution_config=False
        )
        limited.register_reply([autogen.Agent, None], Script("fine").a_sync, position=0)
        instrument_autogen_agent(limited, shared_exe, agent_id=RATE_LIMITED)
        try:
            await limited.a_generate_reply(messages=[{"role": "user", "content": f"[r{i}] status"}])
            return "ok"
        except PolicyBlockedError:
            return "blocked"

    results = await asyncio.wait_for(
        asyncio.gather(*(one(i, c) for i, c in enumerate(chats)), *(limited_round(i) for i in range(50))),
        TIMEOUT,
    )
    grouped = assert_chat_trees(chat_spans(exporter), chats)
    for index, chat in enumerate(chats):
        kind = plan(chat.key, index)[0]
        assert ran[chat.key] == ([chat.key] if kind == "good" else []), chat.key
        if kind == "good":
            assert span_names(grouped[chat.key]) == expected_good, chat.key
    assert results[ASYNC_CHATS:].count("ok") == 20

"""Faults under the classic adapter: span export failing (collector or Execlave endpoint down,
hanging, answering 500) never stops the agent nor enforcement; an unexpected exception inside
execlave's own enforcement path fails closed with EnforcementUnavailableError (cause chained)
and the tool never runs. The agent only ever sees execlave.errors types."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from execlave import Execlave
from execlave.errors import EnforcementUnavailableError, ExeclaveError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import INPUTS
from support.requires import require
from support.spans import spans_named

from .conftest import ENGINE_ERRORS, Faulty, raise_in_engine

autogen = require("autogen")
pytestmark = pytest.mark.classic


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


class Script:
    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls = 0
        self.__name__ = "scripted_reply"

    def __call__(self, recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        self.calls += 1
        return True, (self.replies.pop(0) if self.replies else "TERMINATE")


def pair(
    exe: Execlave, script: Script, ran: list[str], governed: tuple[str, ...] = ("assistant", "executor")
) -> tuple[Any, Any]:
    assistant = autogen.ConversableAgent(
        "assistant", llm_config=False, human_input_mode="NEVER", code_execution_config=False
    )
    assistant.register_reply([autogen.Agent, None], script, position=0)
    executor = autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={
            "get_status": lambda service: ran.append(f"get_status {service}") or "healthy",
            "delete_database": lambda db: ran.append(f"delete_database {db}") or "deleted",
        },
        max_consecutive_auto_reply=3,
        default_auto_reply="TERMINATE",
    )
    for agent, agent_id in ((assistant, "assistant"), (executor, "executor")):
        if agent_id in governed:
            instrument_autogen_agent(agent, exe, agent_id=agent_id)
    return assistant, executor


def chat(assistant: Any, executor: Any, message: str, use_async: bool) -> Any:
    if use_async:
        return asyncio.run(executor.a_initiate_chat(assistant, message=message, max_turns=2, silent=True))
    return executor.initiate_chat(assistant, message=message, max_turns=2, silent=True)


# -- export faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_agent_works_and_enforcement_blocks_while_export_fails(
    faulty: Faulty, exporter: InMemorySpanExporter, use_async: bool
) -> None:
    exe = faulty.exe
    for attempt in range(2):  # before and after the exporter has failed
        ran: list[str] = []
        script = Script(
            {"content": None, "tool_calls": [call("get_status", {"service": "db"})]}, "db is healthy"
        )
        result = chat(*pair(exe, script, ran), "How is the db?", use_async)
        assert ran == ["get_status db"] and script.calls == 2
        assert any(m.get("content") == "db is healthy" for m in result.chat_history)

        ran = []
        script = Script({"content": None, "tool_calls": [call("delete_database", {"db": "prod"})]}, "never")
        with pytest.raises(PolicyBlockedError):
            chat(*pair(exe, script, ran), "Clean up prod.", use_async)
        assert ran == [] and script.calls == 1

        script = Script("never")
        with pytest.raises(PolicyBlockedError):
            chat(*pair(exe, script, ran), INPUTS["injection"][0], use_async)
        assert script.calls == 0
        if attempt == 0:
            faulty.assert_export_failed()
    decisions = [
        s.attributes["execlave.policy.decision"] for s in spans_named(exporter, "invoke_agent assistant")
    ]
    assert decisions.count("block") == 4  # recorded even though nothing could be exported


# -- an unexpected exception inside execlave ------------------------------------------------


@pytest.mark.parametrize("error", ENGINE_ERRORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_engine_failure_on_input_fails_closed(
    corpus_exe: Execlave,
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    error: type,
    use_async: bool,
) -> None:
    raised = raise_in_engine(corpus_exe, monkeypatch, error, only_tool_calls=False)
    ran: list[str] = []
    script = Script({"content": None, "tool_calls": [call("get_status", {"service": "db"})]}, "done")
    with pytest.raises(ExeclaveError) as info:
        chat(*pair(corpus_exe, script, ran), "How is the db?", use_async)
    assert type(info.value) is EnforcementUnavailableError
    assert type(info.value.__cause__) is error
    assert raised and script.calls == 0 and ran == []
    (span,) = spans_named(exporter, "invoke_agent assistant")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["execlave.enforcement.unavailable"] is True


@pytest.mark.parametrize("error", ENGINE_ERRORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("governed", ["assistant", "executor"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_engine_failure_on_tool_call_fails_closed_before_the_tool(
    corpus_exe: Execlave, monkeypatch: pytest.MonkeyPatch, error: type, governed: str, use_async: bool
) -> None:
    """The input round passes; checking the requested (allowed) tool call fails: the tool never runs."""
    raised = raise_in_engine(corpus_exe, monkeypatch, error, only_tool_calls=True)
    ran: list[str] = []
    script = Script({"content": None, "tool_calls": [call("get_status", {"service": "db"})]}, "done")
    with pytest.raises(ExeclaveError) as info:
        chat(*pair(corpus_exe, script, ran, governed=(governed,)), "How is the db?", use_async)
    assert type(info.value) is EnforcementUnavailableError
    assert type(info.value.__cause__) is error
    assert raised and all(r.tool_calls for r in raised)
    assert ran == [] and script.calls == 1


# -- the masker failing -----------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_masker_failure_never_breaks_the_agent_and_exports_nothing_unmasked(
    make_exe: Any, exporter: InMemorySpanExporter, use_async: bool
) -> None:
    """A masker that raises (a bug, or a pathological input): the round runs and is enforced as
    always; the texts that could not be masked are exported only as their length."""
    exe = make_exe(capture_content=True)

    def broken(text: str) -> str:
        raise RuntimeError("masker bug")

    exe._telemetry._masker = broken
    card = "4111 1111 1111 1111"
    ran: list[str] = []
    script = Script({"content": None, "tool_calls": [call("get_status", {"service": "db"})]}, "db is healthy")
    chat(*pair(exe, script, ran), "How is the db?", use_async)
    assert ran == ["get_status db"]
    (executed,) = spans_named(exporter, "execute_tool")  # its name could not be masked either
    assert "gen_ai.tool.call.result" not in executed.attributes  # content that could not be masked
    script = Script(
        {"content": None, "tool_calls": [call(f"delete_database {card}", {"db": "prod"})]}, "never"
    )
    with pytest.raises(PolicyBlockedError):
        chat(*pair(exe, script, ran), "Clean up prod.", use_async)
    spans = exporter.get_finished_spans()
    text = "\n".join(s.to_json(indent=None) for s in spans)
    assert card not in text and card.replace(" ", "") not in text
    (check,) = [
        s for s in spans if s.attributes.get("execlave.policy.decision") == "block" and "check_tool" in s.name
    ]
    assert check.attributes["gen_ai.tool.name"] == f"[{len('delete_database ' + card)} characters omitted]"

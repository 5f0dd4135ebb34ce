"""The adversarial corpus (``tests/adversarial/data``) through real instrumented classic AutoGen
agents (ag2 < 1.0 / pyautogen 0.2): every case must raise PolicyBlockedError before the reply
function (the "model") sees a blocked input and before any tool runs, sync and async."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import DATA, INPUTS, TOOL_CASES, TRANSFORMS, expected_policy_type, input_cases
from support.requires import require
from support.spans import spans_named

from .conftest import ARGUMENT_ENCODINGS

autogen = require("autogen")
pytestmark = pytest.mark.classic

ADAPTER_TRANSFORMS = ["plain", "zero_width", "fullwidth", "combined", "after_100000"]
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


class Script:
    """A scripted model: returns its replies in order and counts its calls."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls = 0
        self.__name__ = "scripted_reply"

    def __call__(self, recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        self.calls += 1
        return True, (self.replies.pop(0) if self.replies else "TERMINATE")


class Tools:
    """A function_map whose every tool records that it ran."""

    def __init__(self, names: list[str]) -> None:
        self.ran: list[str] = []
        # AutoGen accepts ASCII names only; a look-alike name is registered under its NFKC form.
        valid = {unicodedata.normalize("NFKC", n) for n in names}
        self.map = {name: self._tool(name) for name in valid if re.fullmatch(r"[A-Za-z0-9_-]+", name)}

    def _tool(self, name: str) -> Callable[..., str]:
        def tool(**kwargs: Any) -> str:
            self.ran.append(name)
            return "ok"

        return tool


def scripted_agent(name: str, script: Script) -> Any:
    agent = autogen.ConversableAgent(
        name, llm_config=False, human_input_mode="NEVER", code_execution_config=False
    )
    agent.register_reply([autogen.Agent, None], script, position=0)
    return agent


def executor_agent(tools: Tools) -> Any:
    return autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map=tools.map,
        max_consecutive_auto_reply=3,
        default_auto_reply="TERMINATE",
    )


def run_chat(executor: Any, assistant: Any, message: Any, use_async: bool) -> Any:
    if use_async:
        return asyncio.run(executor.a_initiate_chat(assistant, message=message, max_turns=2, silent=True))
    return executor.initiate_chat(assistant, message=message, max_turns=2, silent=True)


# -- inputs ---------------------------------------------------------------------------------

PLACEMENTS = ["str", "multimodal", "sender_history", "initiate_chat"]
INPUT_PARAMS = [
    pytest.param(kind, text, transform, placement, use_async, id=f"{kind}{i}-{transform}-{placement}-{mode}")
    for kind, i, text, transform in input_cases(ADAPTER_TRANSFORMS)
    for placement in PLACEMENTS
    for use_async, mode in ((False, "sync"), (True, "async"))
]


@pytest.mark.parametrize(("kind", "text", "transform", "placement", "use_async"), INPUT_PARAMS)
def test_injected_input_is_blocked_before_the_model(
    corpus_exe: Execlave,
    exporter: InMemorySpanExporter,
    kind: str,
    text: str,
    transform: str,
    placement: str,
    use_async: bool,
) -> None:
    payload = TRANSFORMS[transform](text)
    script = Script("must never be produced")
    agent = scripted_agent("assistant", script)
    instrument_autogen_agent(agent, corpus_exe, agent_id="assistant")
    with pytest.raises(PolicyBlockedError) as info:
        if placement == "initiate_chat":
            run_chat(executor_agent(Tools([])), agent, payload, use_async)
        else:
            kwargs: dict[str, Any]
            if placement == "str":
                kwargs = {"messages": [{"role": "user", "content": payload}]}
            elif placement == "multimodal":
                content = [
                    {"type": "text", "text": "Ticket attached."},
                    IMAGE,
                    {"type": "text", "text": payload},
                ]
                kwargs = {"messages": [{"role": "user", "content": content}]}
            else:  # messages=None: the round reads agent._oai_messages[sender]
                other = scripted_agent("user_proxy", Script())
                agent._oai_messages[other].append({"role": "user", "content": payload, "name": "user_proxy"})
                kwargs = {"sender": other}
            if use_async:
                asyncio.run(agent.a_generate_reply(**kwargs))
            else:
                agent.generate_reply(**kwargs)
    assert script.calls == 0
    assert expected_policy_type(kind) in {v["policyType"] for v in info.value.violations}
    assert {v["target"] for v in info.value.violations} == {"input"}
    (span,) = spans_named(exporter, "invoke_agent assistant")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["execlave.policy.decision"] == "block"


@pytest.mark.parametrize("text", INPUTS["injection"])
@pytest.mark.parametrize("transform", ["plain", "zero_width", "after_100000"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_injection_through_tool_output_never_reaches_the_model(
    corpus_exe: Execlave, text: str, transform: str, use_async: bool
) -> None:
    tools = Tools([])
    ran: list[str] = []

    def fetch_url(url: str) -> str:
        ran.append(url)
        return TRANSFORMS[transform](text)

    tools.map["fetch_url"] = fetch_url
    call = {"id": "c1", "type": "function", "function": {"name": "fetch_url", "arguments": '{"url": "u"}'}}
    script = Script({"content": None, "tool_calls": [call]}, "must never be produced")
    assistant = scripted_agent("assistant", script)
    instrument_autogen_agent(assistant, corpus_exe, agent_id="assistant")
    with pytest.raises(PolicyBlockedError) as info:
        run_chat(executor_agent(tools), assistant, "Summarise the page", use_async)
    assert ran == ["u"]  # the tool ran, its output was checked before the next model call
    assert script.calls == 1
    assert {v["target"] for v in info.value.violations} == {"tool_output"}


# -- tool calls -----------------------------------------------------------------------------


def _call(
    case_call: dict[str, Any], index: int, encode: Callable[[Any], Any], top_level: bool
) -> dict[str, Any]:
    name, arguments = case_call["name"], encode(case_call.get("arguments"))
    if top_level:  # no "function" key: name and arguments at the top level
        return {"id": f"call-{index}", "type": "function", "name": name, "arguments": arguments}
    return {"id": f"call-{index}", "type": "function", "function": {"name": name, "arguments": arguments}}


def reply_for(case: dict[str, Any], shape: str, encoding: str) -> dict[str, Any]:
    """One assistant reply requesting the case's calls, in the given message shape."""
    encode: Callable[[Any], Any] = (
        (lambda a: a if a is not None else {}) if encoding == "object" else ARGUMENT_ENCODINGS[encoding]
    )
    calls = [_call(c, i, encode, shape == "top_level_name") for i, c in enumerate(case["calls"])]
    if shape == "tool_calls_and_function_call":
        # The first call only in the legacy function_call, the rest in tool_calls: both are read.
        first = calls[0]
        return {"content": None, "function_call": first["function"], "tool_calls": calls[1:] or None}
    if shape == "function_call_decoy":
        # Every call in tool_calls, a harmless legacy function_call next to them.
        decoy = {"name": "get_status", "arguments": "{}"}
        return {"content": None, "tool_calls": calls, "function_call": decoy}
    return {"content": None, "tool_calls": calls}


SHAPES = ["tool_calls", "tool_calls_and_function_call", "function_call_decoy", "top_level_name"]
TOOL_PARAMS = [
    pytest.param(case, shape, encoding, id=f"{case['id']}-{shape}-{encoding}")
    for case in TOOL_CASES
    for shape in SHAPES
    for encoding in [*ARGUMENT_ENCODINGS, "object"]
]


@pytest.mark.parametrize(("case", "shape", "encoding"), TOOL_PARAMS)
@pytest.mark.parametrize("governed", ["assistant", "executor"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_tool_call_case_is_blocked_before_any_tool_runs(
    corpus_exe: Execlave,
    exporter: InMemorySpanExporter,
    case: dict[str, Any],
    shape: str,
    encoding: str,
    governed: str,
    use_async: bool,
) -> None:
    """``governed``: which side is instrumented. The requesting assistant checks the calls in
    its reply; an executor receiving them from an ungoverned agent checks them at round start."""
    tools = Tools([c["name"] for c in case["calls"]] + ["get_status"])
    script = Script(reply_for(case, shape, encoding), "must never be produced")
    assistant = scripted_agent("assistant", script)
    executor = executor_agent(tools)
    instrument_autogen_agent(
        assistant if governed == "assistant" else executor, corpus_exe, agent_id=governed
    )
    with pytest.raises(PolicyBlockedError) as info:
        run_chat(executor, assistant, "Do the maintenance.", use_async)
    assert tools.ran == []
    assert script.calls == 1
    blocked = {v["toolName"] for v in info.value.violations if v["target"] == "tool_call"}
    assert blocked == set(case["blocked_tools"])
    assert spans_named(exporter, "execute_tool") == []
    (round_span,) = [
        s
        for s in spans_named(exporter, f"invoke_agent {governed}")
        if s.status.status_code is StatusCode.ERROR
    ]
    assert round_span.attributes["execlave.policy.decision"] == "block"


# -- message shapes (data/message_shapes.yaml) -----------------------------------------------

SHAPES = yaml.safe_load((DATA / "message_shapes.yaml").read_text(encoding="utf-8"))["classic"]
SHAPE_PARAMS = [
    pytest.param(kind, text, shape, id=f"{kind}{i}-{shape['id']}")
    for kind, i, text, _ in input_cases(["plain"])
    for shape in SHAPES
]


def with_payload(value: Any, payload: str) -> Any:
    if isinstance(value, str):
        return value.replace("{payload}", payload)
    if isinstance(value, list):
        return [with_payload(v, payload) for v in value]
    if isinstance(value, dict):
        return {k: with_payload(v, payload) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("kind", "text", "shape"), SHAPE_PARAMS)
def test_corpus_input_in_every_message_shape_is_blocked_before_the_model(
    corpus_exe: Execlave, kind: str, text: str, shape: dict[str, Any]
) -> None:
    script = Script("must never be produced")
    agent = scripted_agent("assistant", script)
    instrument_autogen_agent(agent, corpus_exe, agent_id="assistant")
    sender = scripted_agent("sender", Script())
    with pytest.raises(PolicyBlockedError):
        sender.initiate_chat(agent, message=with_payload(shape["message"], text), max_turns=1, silent=True)
    assert script.calls == 0

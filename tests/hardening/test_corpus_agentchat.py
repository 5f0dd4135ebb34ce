"""The adversarial corpus (``tests/adversarial/data``) through real instrumented AgentChat
``AssistantAgent``s on the offline ReplayChatCompletionClient: every case must raise
PolicyBlockedError before the model sees a blocked input and before any tool (or handoff) runs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentchat.conftest import _quiet_replay_warnings, replay_client, require_agentchat, tool_calls  # noqa: F401
from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from support.adversarial import DATA, INPUTS, TOOL_CASES, TRANSFORMS, expected_policy_type, input_cases
from support.spans import spans_named

from .conftest import ARGUMENT_ENCODINGS

require_agentchat()

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.messages import MultiModalMessage, TextMessage  # noqa: E402
from autogen_core import CancellationToken, Image  # noqa: E402
from autogen_core.tools import FunctionTool  # noqa: E402

ADAPTER_TRANSFORMS = ["plain", "zero_width", "fullwidth", "combined", "after_100000"]
HANDOFF_PREFIX = "transfer_to_"


class Tools:
    """One real FunctionTool per name; each records that it ran."""

    def __init__(self, names: list[str], output: str = "ok") -> None:
        self.ran: list[str] = []
        self.output = output
        self.tools = [self._tool(name) for name in dict.fromkeys(names)]

    def _tool(self, name: str) -> FunctionTool:
        async def tool() -> str:
            self.ran.append(name)
            return self.output

        return FunctionTool(tool, description=f"The {name} tool.", name=name)


def model_calls(client: Any) -> int:
    return int(client._current_index)


def make_agent(responses: list[Any], tools: Tools, handoffs: list[str] | None = None) -> tuple[Any, Any]:
    client = replay_client(responses)
    kwargs: dict[str, Any] = {"handoffs": handoffs} if handoffs else {}
    agent = AssistantAgent("ops", model_client=client, tools=tools.tools, reflect_on_tool_use=True, **kwargs)
    return agent, client


# -- inputs ---------------------------------------------------------------------------------

PLACEMENTS = ["task", "multimodal", "second_message"]
INPUT_PARAMS = [
    pytest.param(kind, text, transform, placement, id=f"{kind}{i}-{transform}-{placement}")
    for kind, i, text, transform in input_cases(ADAPTER_TRANSFORMS)
    for placement in PLACEMENTS
]


@pytest.mark.parametrize(("kind", "text", "transform", "placement"), INPUT_PARAMS)
async def test_injected_input_is_blocked_before_the_model(
    corpus_exe: Execlave, exporter: InMemorySpanExporter, kind: str, text: str, transform: str, placement: str
) -> None:
    payload = TRANSFORMS[transform](text)
    tools = Tools(["get_status"])
    agent, client = make_agent(["must never be produced"], tools)
    instrument_autogen_agent(agent, corpus_exe, agent_id="ops-assistant")
    with pytest.raises(PolicyBlockedError) as info:
        if placement == "task":
            await agent.run(task=payload)
        elif placement == "multimodal":
            from PIL import Image as PILImage

            image = Image.from_pil(PILImage.new("RGB", (2, 2)))
            await agent.run(
                task=MultiModalMessage(content=["Ticket attached.", image, payload], source="user")
            )
        else:
            messages = [
                TextMessage(content="hello", source="user"),
                TextMessage(content=payload, source="user"),
            ]
            await agent.on_messages(messages, CancellationToken())
    assert model_calls(client) == 0
    assert tools.ran == []
    assert list(await agent._model_context.get_messages()) == []
    assert expected_policy_type(kind) in {v["policyType"] for v in info.value.violations}
    (span,) = spans_named(exporter, "invoke_agent ops")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["execlave.policy.decision"] == "block"


@pytest.mark.parametrize("text", INPUTS["injection"])
@pytest.mark.parametrize("transform", ["plain", "zero_width", "after_100000"])
async def test_injection_through_tool_output_never_reaches_the_model(
    corpus_exe: Execlave, text: str, transform: str
) -> None:
    tools = Tools(["fetch_url"], output=TRANSFORMS[transform](text))
    agent, client = make_agent([tool_calls(("c1", "fetch_url", "{}")), "must never be produced"], tools)
    instrument_autogen_agent(agent, corpus_exe, agent_id="ops-assistant")
    with pytest.raises(PolicyBlockedError) as info:
        await agent.run(task="Summarise the page")
    assert tools.ran == ["fetch_url"]
    assert model_calls(client) == 1  # the reflection call never happened
    assert {v["target"] for v in info.value.violations} == {"tool_output"}


# -- tool calls and handoffs ----------------------------------------------------------------

TOOL_PARAMS = [
    pytest.param(case, encoding, id=f"{case['id']}-{encoding}")
    for case in TOOL_CASES
    for encoding in ARGUMENT_ENCODINGS
]


@pytest.mark.parametrize(("case", "encoding"), TOOL_PARAMS)
async def test_tool_call_case_is_blocked_before_any_tool_runs(
    corpus_exe: Execlave, exporter: InMemorySpanExporter, case: dict[str, Any], encoding: str
) -> None:
    names = [c["name"] for c in case["calls"]]
    # transfer_to_* names are the agent's real handoffs; every other name is a real tool.
    handoffs = [n[len(HANDOFF_PREFIX) :] for n in names if n.startswith(HANDOFF_PREFIX)]
    tools = Tools([n for n in names if not n.startswith(HANDOFF_PREFIX)] + ["get_status"])
    encode = ARGUMENT_ENCODINGS[encoding]
    request = tool_calls(
        *((f"c{i}", c["name"], encode(c.get("arguments"))) for i, c in enumerate(case["calls"]))
    )
    agent, client = make_agent([request, "must never be produced"], tools, handoffs=handoffs)
    instrument_autogen_agent(agent, corpus_exe, agent_id="ops-assistant")
    events: list[str] = []
    with pytest.raises(PolicyBlockedError) as info:
        async for event in agent.run_stream(task="Do the maintenance."):
            events.append(type(event).__name__)
    assert tools.ran == []
    assert "ToolCallExecutionEvent" not in events and "HandoffMessage" not in events
    assert model_calls(client) == 1
    assert {v["toolName"] for v in info.value.violations} == set(case["blocked_tools"])
    checks = spans_named(exporter, "check_tool")
    assert {s.attributes["gen_ai.tool.name"] for s in checks} == set(names)
    for name in handoffs:
        (handoff_span,) = spans_named(exporter, f"check_tool {HANDOFF_PREFIX}{name}")
        assert handoff_span.attributes["execlave.tool.handoff"] is True
        assert handoff_span.status.status_code == StatusCode.ERROR


# -- message shapes (data/message_shapes.yaml) -----------------------------------------------

SHAPES = [
    shape["id"]
    for shape in yaml.safe_load((DATA / "message_shapes.yaml").read_text(encoding="utf-8"))["agentchat"]
]
SHAPE_PARAMS = [
    pytest.param(kind, text, shape, id=f"{kind}{i}-{shape}")
    for kind, i, text, _ in input_cases(["plain"])
    for shape in SHAPES
]


def _handoff(payload: str, shape: str) -> Any:
    import json

    from autogen_agentchat.messages import HandoffMessage
    from autogen_core import FunctionCall
    from autogen_core.models import (
        AssistantMessage,
        FunctionExecutionResult,
        FunctionExecutionResultMessage,
        UserMessage,
    )

    if "context" not in HandoffMessage.model_fields:
        pytest.skip("this autogen-agentchat's HandoffMessage carries no context")
    if shape == "handoff-context-user-message":
        context: list[Any] = [UserMessage(content=payload, source="user")]
    else:
        if shape == "handoff-context-thought":
            if "thought" not in AssistantMessage.model_fields:
                pytest.skip("this autogen-core's AssistantMessage has no thought")
            call = AssistantMessage(
                content=[FunctionCall(id="1", name="note", arguments="{}")], thought=payload, source="p"
            )
        else:
            arguments = json.dumps({"text": payload})
            call = AssistantMessage(
                content=[FunctionCall(id="1", name="note", arguments=arguments)], source="p"
            )
        result = FunctionExecutionResult(content="noted", call_id="1", name="note", is_error=False)
        context = [call, FunctionExecutionResultMessage(content=[result])]
    return HandoffMessage(content="over to you", target="ops", source="planner", context=context)


async def _custom_agent_run(corpus_exe: Execlave, payload: str) -> list[str]:
    from autogen_agentchat.agents import BaseChatAgent
    from autogen_agentchat.base import Response

    seen: list[str] = []

    class Custom(BaseChatAgent):
        @property
        def produced_message_types(self) -> Any:
            return (TextMessage,)

        async def on_messages(self, messages: Any, cancellation_token: Any) -> Any:
            seen.extend(str(m.content) for m in messages)
            return Response(chat_message=TextMessage(content="done", source=self.name))

        async def on_reset(self, cancellation_token: Any) -> None:
            pass

    agent = Custom("custom", "logic in on_messages")
    instrument_autogen_agent(agent, corpus_exe, agent_id="custom")
    with pytest.raises(PolicyBlockedError):
        await agent.run(task=payload)
    return seen


@pytest.mark.parametrize(("kind", "text", "shape"), SHAPE_PARAMS)
async def test_corpus_input_in_every_message_shape_is_blocked_before_the_model(
    corpus_exe: Execlave, kind: str, text: str, shape: str
) -> None:
    if shape == "custom-on-messages-agent":
        assert await _custom_agent_run(corpus_exe, text) == []
        return
    memory: list[Any] = []
    task: Any = "go on"
    if shape == "memory":
        try:
            from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
        except ImportError:
            pytest.skip("this autogen-core has no memory")
        store = ListMemory()
        await store.add(MemoryContent(content=text, mime_type=MemoryMimeType.TEXT))
        memory = [store]
    else:
        task = [_handoff(text, shape)]
    client = replay_client(["must never be produced"])
    kwargs: dict[str, Any] = {"memory": memory} if memory else {}
    agent = AssistantAgent("ops", model_client=client, **kwargs)
    instrument_autogen_agent(agent, corpus_exe, agent_id="ops")
    with pytest.raises(PolicyBlockedError):
        await agent.run(task=task)
    assert model_calls(client) == 0

"""Second red-team pass over the adapters, one test per finding, asserting the SECURE behaviour
through real agents (classic: ag2 / pyautogen ``ConversableAgent``; AgentChat: autogen-agentchat).
Each failed on the code before its fix. Classic tests skip without ``autogen``, AgentChat tests
without ``autogen_agentchat`` (an error where a nox session requires the framework)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from execlave.errors import PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent
from redteam.test_holes import (
    INJECTION,
    PII_BLOCK,
    _executor,
    _FakeModelClient,
    _model_agent,
    _model_saw,
    _Ran,
)
from support.classic_agents import scripted_classic as _plain
from support.policies import INJECTION_BLOCK, TOOL_DENY
from support.requires import require

SSN = "123-45-6789"


@pytest.fixture
def exe(provider: TracerProvider) -> Iterator[Execlave]:
    client = Execlave(policies=[TOOL_DENY, INJECTION_BLOCK, PII_BLOCK], tracer_provider=provider)
    yield client
    client.shutdown(timeout=1.0)


def _call(name: str, arguments: Any, call_id: str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


# == classic: the agent's own last reply is recognised by who sent it ==============================


@pytest.mark.parametrize(
    "helper_content", [None, INJECTION], ids=["user-injection", "injection-beside-tool-call"]
)
def test_classic_groupchat_tool_call_message_ends_input_scan(exe: Execlave, helper_content: Any) -> None:
    autogen = require("autogen")
    writer = _model_agent(autogen, "writer")
    instrument_autogen_agent(writer, exe, agent_id="writer")
    user_text = INJECTION if helper_content is None else "please look this up"
    user = _plain(autogen, "user")
    helper = _plain(
        autogen, "helper", {"content": helper_content, "tool_calls": [_call("search", {"q": "x"}, "c1")]}
    )
    ran = _Ran()
    executor = _executor(autogen, ran)
    group = autogen.GroupChat(
        agents=[user, helper, executor, writer],
        messages=[],
        max_round=4,
        speaker_selection_method="round_robin",
    )
    manager = autogen.GroupChatManager(groupchat=group, llm_config=False)

    with pytest.raises(PolicyBlockedError):
        user.initiate_chat(manager, message=user_text, silent=True)
    assert ran.calls, "the helper's tool call ran (the setup reached the writer)"
    assert not _model_saw(INJECTION)


def test_classic_two_agent_injection_beside_tool_call_reaches_model(exe: Execlave) -> None:
    autogen = require("autogen")
    # The instrumented agent has a model and no tool for the call: the model answers the message.
    writer = _model_agent(autogen, "writer")
    instrument_autogen_agent(writer, exe, agent_id="writer")
    sender = _plain(autogen, "sender")

    with pytest.raises(PolicyBlockedError):
        sender.initiate_chat(
            writer,
            message={"content": INJECTION, "tool_calls": [_call("search", {}, "c1")]},
            max_turns=1,
            silent=True,
        )
    assert not _model_saw(INJECTION)


def test_classic_override_role_assistant_skips_input_scan(exe: Execlave) -> None:
    autogen = require("autogen")
    assistant = _model_agent(autogen, "assistant")
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    user = _plain(autogen, "user")

    with pytest.raises(PolicyBlockedError):
        user.initiate_chat(
            assistant, message={"content": INJECTION, "override_role": "assistant"}, max_turns=1, silent=True
        )
    assert not _model_saw(INJECTION)


def test_classic_own_reply_still_ends_the_scan(exe: Execlave) -> None:
    """Not a hole: what the agent itself said earlier (sent by it) is not scanned again as input."""
    autogen = require("autogen")
    assistant = _model_agent(autogen, "assistant")
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    user = _plain(autogen, "user", "thanks")
    # The agent's own first message quotes the phrase (e.g. explaining what it refuses).
    assistant.initiate_chat(user, message=f"I will never {INJECTION}.", max_turns=2, silent=True)
    assert _FakeModelClient.seen, "the assistant's model was called for the second turn"


# == classic: sender-shaped tool messages ==========================================================


def _sent_to_model(autogen: Any, exe: Execlave, message: dict[str, Any]) -> None:
    assistant = _model_agent(autogen, "assistant")
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    user = _plain(autogen, "user")
    user.initiate_chat(assistant, message=message, max_turns=1, silent=True)


def test_classic_function_role_with_tool_responses_hides_own_text(exe: Execlave) -> None:
    autogen = require("autogen")
    message = {
        "role": "function",
        "name": "search",
        "content": INJECTION,
        "tool_responses": [{"tool_call_id": "c1", "role": "tool", "content": "fine"}],
    }
    with pytest.raises(PolicyBlockedError):
        _sent_to_model(autogen, exe, message)
    assert not _model_saw(INJECTION)


def test_classic_user_message_carrying_tool_responses_skips_scan(exe: Execlave) -> None:
    autogen = require("autogen")
    message = {
        "content": "see results",
        "tool_responses": [{"tool_call_id": "c1", "role": "tool", "content": INJECTION}],
    }
    with pytest.raises(PolicyBlockedError):
        _sent_to_model(autogen, exe, message)
    assert not _model_saw(INJECTION)


def test_classic_sender_set_tool_role_skips_pii_check(exe: Execlave) -> None:
    autogen = require("autogen")
    message = {"role": "tool", "tool_call_id": "c9", "content": f"customer ssn {SSN}"}
    with pytest.raises(PolicyBlockedError):
        _sent_to_model(autogen, exe, message)
    assert not _model_saw(SSN)


# == classic: tool arguments as AutoGen really passes them ========================================


@pytest.mark.parametrize(
    "split",
    ["123-45-\n6789", "AKIAIOSFODNN7\nEXAMPLE", "ghp_aBcDeFgHiJkLmNoPqRsTuVw\nXyZ0123456789"],
    ids=["ssn", "aws-key", "github-token"],
)
def test_classic_autogen_argument_repair_joins_pii_the_scan_saw_split(exe: Execlave, split: str) -> None:
    autogen = require("autogen")
    ran = _Ran()
    executor = _executor(autogen, ran)
    instrument_autogen_agent(executor, exe, agent_id="executor")
    # AutoGen's own formatting loses track of quotes after an escaped backslash and deletes the
    # raw newline inside the next string: the tool gets the value joined ("123-45-6789").
    arguments = '{"q": "C:\\\\", "value": "' + split + '"}'
    message = {"content": None, "tool_calls": [_call("search", arguments, "c1")]}

    with pytest.raises(PolicyBlockedError):
        executor.generate_reply(messages=[message])
    assert not ran.calls


# == AgentChat: every public entry point is governed ==============================================


def _custom_agent_class() -> Any:
    """An agent as the AgentChat tutorial writes one: all its logic in ``on_messages``."""
    require("autogen_agentchat")
    from autogen_agentchat.agents import BaseChatAgent
    from autogen_agentchat.base import Response
    from autogen_agentchat.messages import TextMessage

    class Echo(BaseChatAgent):
        def __init__(self, name: str) -> None:
            super().__init__(name, "echoes what it is told")
            self.seen: list[str] = []

        @property
        def produced_message_types(self) -> Any:
            return (TextMessage,)

        async def on_messages(self, messages: Any, cancellation_token: Any) -> Any:
            self.seen.extend(str(m.content) for m in messages)
            return Response(chat_message=TextMessage(content="echo", source=self.name))

        async def on_reset(self, cancellation_token: Any) -> None:
            self.seen.clear()

    return Echo


async def _drive(agent: Any, entry: str, text: str) -> None:
    from autogen_agentchat.messages import TextMessage
    from autogen_core import CancellationToken

    message = TextMessage(content=text, source="user")
    if entry == "run":
        await agent.run(task=text)
    elif entry == "run_stream":
        async for _ in agent.run_stream(task=text):
            pass
    elif entry == "on_messages":
        await agent.on_messages([message], CancellationToken())
    else:
        async for _ in agent.on_messages_stream([message], CancellationToken()):
            pass


ENTRIES = ["run", "run_stream", "on_messages", "on_messages_stream"]


@pytest.mark.parametrize("entry", ENTRIES)
async def test_agentchat_custom_on_messages_agent_input_unchecked(exe: Execlave, entry: str) -> None:
    agent = _custom_agent_class()("echo")
    instrument_autogen_agent(agent, exe, agent_id="echo")
    with pytest.raises(PolicyBlockedError):
        await _drive(agent, entry, INJECTION)
    assert agent.seen == []


@pytest.mark.parametrize("entry", ENTRIES)
async def test_agentchat_custom_on_messages_agent_runs_while_paused(exe: Execlave, entry: str) -> None:
    from execlave.errors import AgentPausedError

    agent = _custom_agent_class()("echo")
    instrument_autogen_agent(agent, exe, agent_id="echo")
    exe.pause_agent("echo")
    with pytest.raises(AgentPausedError):
        await _drive(agent, entry, "hello")
    assert agent.seen == []


async def test_agentchat_custom_agent_allowed_turn_still_answers(exe: Execlave) -> None:
    agent = _custom_agent_class()("echo")
    instrument_autogen_agent(agent, exe, agent_id="echo")
    result = await agent.run(task="hello")
    assert result.messages[-1].content == "echo"
    assert agent.seen == ["hello"]


async def test_agentchat_builtin_user_proxy_is_governed_through_run(exe: Execlave) -> None:
    """Not a hole (a guard for the built-ins): UserProxyAgent, CodeExecutorAgent and
    SocietyOfMindAgent implement on_messages by reading their own on_messages_stream."""
    require("autogen_agentchat")
    from autogen_agentchat.agents import UserProxyAgent

    asked: list[str] = []

    def input_func(prompt: str) -> str:
        asked.append(prompt)
        return "typed"

    agent = UserProxyAgent("human", input_func=input_func)
    instrument_autogen_agent(agent, exe, agent_id="human")
    with pytest.raises(PolicyBlockedError):
        await agent.run(task=INJECTION)
    assert asked == []


@pytest.mark.parametrize("entry", ENTRIES)
async def test_agentchat_message_filter_agent_input_unchecked(exe: Execlave, entry: str) -> None:
    agents = require("autogen_agentchat").agents
    if not hasattr(agents, "MessageFilterAgent"):
        pytest.skip("this autogen-agentchat has no MessageFilterAgent")
    from autogen_agentchat.agents import AssistantAgent, MessageFilterAgent, MessageFilterConfig

    from agentchat.conftest import replay_client

    inner = AssistantAgent("writer", model_client=replay_client(["ok", "ok"]))
    agent = MessageFilterAgent("filtered", wrapped_agent=inner, filter=MessageFilterConfig(per_source=[]))
    instrument_autogen_agent(agent, exe, agent_id="filtered")
    with pytest.raises(PolicyBlockedError):
        await _drive(agent, entry, INJECTION)
    assert INJECTION not in "\n".join(str(m.content) for m in await inner.model_context.get_messages())


# == AgentChat: handoff context and memory =========================================================


async def test_agentchat_handoff_context_thought_and_call_arguments_unscanned(exe: Execlave) -> None:
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.messages import HandoffMessage
    from autogen_core import FunctionCall
    from autogen_core.models import AssistantMessage, FunctionExecutionResult, FunctionExecutionResultMessage

    from agentchat.conftest import replay_client

    if "context" not in HandoffMessage.model_fields or "thought" not in AssistantMessage.model_fields:
        pytest.skip(
            "this autogen-agentchat's HandoffMessage carries no context (or AssistantMessage no thought)"
        )
    for carried in (
        AssistantMessage(
            content=[FunctionCall(id="1", name="note", arguments="{}")], thought=INJECTION, source="p"
        ),
        AssistantMessage(
            content=[FunctionCall(id="1", name="note", arguments=json.dumps({"text": INJECTION}))], source="p"
        ),
    ):
        agent = AssistantAgent("writer", model_client=replay_client(["ok"]))
        instrument_autogen_agent(agent, exe, agent_id="writer")
        result = FunctionExecutionResult(content="noted", call_id="1", name="note", is_error=False)
        handoff = HandoffMessage(
            content="over to you",
            target="writer",
            source="planner",
            context=[carried, FunctionExecutionResultMessage(content=[result])],
        )
        with pytest.raises(PolicyBlockedError):
            await agent.run(task=[handoff])
        assert INJECTION not in str(await agent.model_context.get_messages())


async def test_agentchat_memory_content_reaches_model_unscanned(exe: Execlave) -> None:
    require("autogen_agentchat")
    try:
        from autogen_core.memory import ListMemory, MemoryContent, MemoryMimeType
    except ImportError:
        pytest.skip("this autogen-core has no memory")
    from autogen_agentchat.agents import AssistantAgent

    from agentchat.conftest import replay_client

    memory = ListMemory()
    await memory.add(MemoryContent(content=INJECTION, mime_type=MemoryMimeType.TEXT))
    client = replay_client(["ok", "ok"])
    try:
        agent = AssistantAgent("writer", model_client=client, memory=[memory])
    except TypeError:
        pytest.skip("this autogen-agentchat's AssistantAgent takes no memory")
    instrument_autogen_agent(agent, exe, agent_id="writer")
    with pytest.raises(PolicyBlockedError):
        await agent.run(task="what do you remember?")
    assert client._current_index == 0, "the model was not called"
    assert INJECTION not in str(await agent.model_context.get_messages())


# == wrong arguments and a second binding: clear errors ============================================


def _any_agent(kind: str) -> Any:
    if kind == "classic":
        autogen = require("autogen")
        return autogen.ConversableAgent(
            "a", llm_config=False, human_input_mode="NEVER", code_execution_config=False
        )
    return _custom_agent_class()("a")


KINDS = ["classic", "agentchat"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client", [None, "an-api-key", object()], ids=["none", "str", "object"])
def test_instrument_with_something_other_than_a_client_is_a_type_error(kind: str, client: Any) -> None:
    agent = _any_agent(kind)
    with pytest.raises(TypeError, match=r"Execlave\(\.\.\.\)"):
        instrument_autogen_agent(agent, client, agent_id="a")
    assert not getattr(agent, "_execlave_instrumented", False)


@pytest.mark.parametrize("kind", KINDS)
def test_instrument_without_an_agent_is_a_type_error(exe: Execlave, kind: str) -> None:
    with pytest.raises(TypeError, match="expected an AutoGen agent"):
        instrument_autogen_agent(None, exe, agent_id="a")


@pytest.mark.parametrize("kind", KINDS)
def test_second_instrument_with_another_binding_is_a_value_error(
    exe: Execlave, provider: TracerProvider, kind: str
) -> None:
    agent = _any_agent(kind)
    instrument_autogen_agent(agent, exe, agent_id="first")
    instrument_autogen_agent(agent, exe, agent_id="first")  # same binding: a no-op
    with pytest.raises(ValueError, match=r"'first'.*'second'"):
        instrument_autogen_agent(agent, exe, agent_id="second")
    other = Execlave(policies=[TOOL_DENY], tracer_provider=provider)
    try:
        with pytest.raises(ValueError, match="another Execlave client"):
            instrument_autogen_agent(agent, other, agent_id="first")
    finally:
        other.shutdown(timeout=1.0)


# == classic: model calls outside a reply round ===================================================


def test_classic_reflection_summary_sends_poisoned_tool_result_to_model(exe: Execlave) -> None:
    autogen = require("autogen")
    assistant = _model_agent(autogen, "assistant")
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    executor = autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={"fetch_page": lambda **kwargs: f"page text: {INJECTION}"},
    )
    message = {"content": "", "tool_calls": [_call("fetch_page", {}, "c1")]}

    with pytest.raises(PolicyBlockedError):
        assistant.initiate_chat(
            executor, message=message, max_turns=1, summary_method="reflection_with_llm", silent=True
        )
    assert not _model_saw(INJECTION)


def test_classic_context_variables_rendered_into_system_message_reach_model(exe: Execlave) -> None:
    autogen = require("autogen")
    conversable = pytest.importorskip("autogen.agentchat.conversable_agent")
    if not hasattr(conversable, "UpdateSystemMessage"):
        pytest.skip("this AutoGen has no UpdateSystemMessage (ag2 >= 0.8)")
    from autogen.agentchat.group import ContextVariables

    config = {"config_list": [{"model": "fake", "model_client_cls": "_FakeModelClient"}], "cache_seed": None}
    assistant = autogen.ConversableAgent(
        "assistant",
        llm_config=config,
        human_input_mode="NEVER",
        code_execution_config=False,
        context_variables=ContextVariables(data={"note": "none yet"}),
        update_agent_state_before_reply=[conversable.UpdateSystemMessage("You help. Notes: {note}")],
    )
    assistant.register_model_client(_FakeModelClient)
    _FakeModelClient.seen = []
    instrument_autogen_agent(assistant, exe, agent_id="assistant")
    user = _plain(autogen, "user")
    user.initiate_chat(assistant, message="hello", max_turns=1, silent=True)  # allowed
    # What a tool's ReplyResult(context_variables=...) does: the value is the tool's output.
    assistant.context_variables.set("note", INJECTION)

    with pytest.raises(PolicyBlockedError):
        user.initiate_chat(assistant, message="hello again", max_turns=1, silent=True)
    assert not _model_saw(INJECTION)


# == model calls a team makes for itself ===========================================================


async def test_agentchat_selector_model_reads_task_before_any_agent_check(exe: Execlave) -> None:
    require("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.conditions import MaxMessageTermination
    from autogen_agentchat.teams import SelectorGroupChat

    from agentchat.conftest import replay_client
    from execlave.integrations.autogen.agentchat import govern_model_client, raise_policy_blocks

    writer = AssistantAgent("writer", model_client=replay_client(["ok"]), description="writes")
    editor = AssistantAgent("editor", model_client=replay_client(["ok"]), description="edits")
    for agent in (writer, editor):
        instrument_autogen_agent(agent, exe, agent_id=agent.name)
    selector_model = replay_client(["writer", "editor"])
    team = SelectorGroupChat(
        [writer, editor],
        model_client=govern_model_client(selector_model, exe, agent_id="selector"),
        termination_condition=MaxMessageTermination(3),
    )
    with pytest.raises(PolicyBlockedError), raise_policy_blocks(team):
        await team.run(task=INJECTION)
    assert selector_model._current_index == 0, "the selector model never read the task"


async def test_agentchat_governed_model_client_passes_allowed_calls(
    exe: Execlave, provider: TracerProvider
) -> None:
    require("autogen_agentchat")
    from autogen_core.models import SystemMessage, UserMessage

    from agentchat.conftest import replay_client
    from execlave.integrations.autogen.agentchat import govern_model_client

    inner = replay_client(["fine"])
    client = govern_model_client(inner, exe, agent_id="selector")
    result = await client.create(
        [SystemMessage(content="pick one"), UserMessage(content="hello", source="user")]
    )
    assert result.content == "fine"
    assert client.model_info == inner.model_info
    with pytest.raises(TypeError, match="Execlave"):
        govern_model_client(inner, None, agent_id="selector")  # type: ignore[arg-type]


class _SelectorModel(_FakeModelClient):
    """The speaker-selection model: answers the next speaker's name from a script."""

    script: ClassVar[list[str]] = []
    read: ClassVar[list[str]] = []

    def create(self, params: dict[str, Any]) -> Any:
        type(self).read.extend(str(m.get("content")) for m in params["messages"])
        response = super().create(params)
        response.choices[0].message["content"] = self.script.pop(0) if self.script else "writer"
        return response


def test_classic_groupchat_auto_speaker_selection_reads_poisoned_tool_result(exe: Execlave) -> None:
    autogen = require("autogen")
    import dataclasses

    if "select_speaker_auto_model_client_cls" not in {f.name for f in dataclasses.fields(autogen.GroupChat)}:
        pytest.skip("this AutoGen cannot give auto speaker selection an offline model client (pyautogen 0.2)")
    config = {"config_list": [{"model": "fake", "model_client_cls": "_SelectorModel"}], "cache_seed": None}
    _SelectorModel.script = ["helper", "executor", "writer"]
    _SelectorModel.read = []
    user = _plain(autogen, "user")
    helper = _plain(autogen, "helper", {"content": None, "tool_calls": [_call("fetch_page", {}, "c1")]})
    executor = autogen.ConversableAgent(
        "executor",
        llm_config=False,
        human_input_mode="NEVER",
        code_execution_config=False,
        function_map={"fetch_page": lambda **kwargs: f"page text: {INJECTION}"},
    )
    writer = _plain(autogen, "writer", "done")
    group = autogen.GroupChat(
        agents=[user, helper, executor, writer],
        messages=[],
        max_round=5,
        speaker_selection_method="auto",
        select_speaker_auto_llm_config=config,
        select_speaker_auto_model_client_cls=_SelectorModel,
    )
    manager = autogen.GroupChatManager(groupchat=group, llm_config=config)
    manager.register_model_client(_SelectorModel)
    instrument_autogen_agent(manager, exe, agent_id="manager")

    with pytest.raises(PolicyBlockedError):
        user.initiate_chat(manager, message="summarise the page", silent=True)
    assert _SelectorModel.read, "the selector model was asked (the setup reached speaker selection)"
    assert not any(INJECTION in text for text in _SelectorModel.read)

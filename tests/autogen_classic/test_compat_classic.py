"""The classic AutoGen privates the adapter touches (integrations/autogen/_compat_classic.py),
checked against the installed release: a release that moves one fails here, naming it and the file
to change. Runs on every classic line of the nox matrix (pyautogen 0.2.35, ag2 0.3.2, ag2 0.14.0)."""

from __future__ import annotations

import inspect

from execlave.integrations.autogen import _compat_classic as compat
from support.requires import require

autogen = require("autogen")

WHERE = "the classic adapter's privates live in src/execlave/integrations/autogen/_compat_classic.py"


def agent(name: str = "a") -> object:
    return autogen.ConversableAgent(name, llm_config=False, human_input_mode="NEVER")


def test_every_patched_private_method_exists_with_the_parameters_the_adapter_reads() -> None:
    for name in compat.PATCHED_PRIVATES:
        assert callable(getattr(autogen.ConversableAgent, name, None)), (
            f"ConversableAgent.{name} is gone; {WHERE}"
        )
    append = inspect.signature(autogen.ConversableAgent._append_oai_message).parameters
    assert "conversation_id" in append and ("is_sending" in append or "role" in append), (
        f"_append_oai_message{tuple(append)} changed; {WHERE}"
    )
    reflect = inspect.signature(autogen.ConversableAgent._reflection_with_llm).parameters
    assert {"prompt", "messages"} <= set(reflect), f"_reflection_with_llm{tuple(reflect)} changed; {WHERE}"


def test_the_message_store_holds_each_partners_messages() -> None:
    a, b = agent("a"), agent("b")
    assert compat.has_message_store(a), f"ConversableAgent.{compat.MESSAGE_STORE} is gone; {WHERE}"
    a.send("hello", b, request_reply=False)
    assert compat.stored_messages(a, b)[-1]["content"] == "hello"
    assert compat.stored_messages(b, a)[-1]["content"] == "hello"


def test_tool_arguments_are_repaired_as_autogen_parses_them() -> None:
    assert callable(getattr(agent(), compat.FORMAT_JSON, None)), f"{compat.FORMAT_JSON} is gone; {WHERE}"
    assert compat.repair_arguments(agent(), '{"q": "x"}') == '{"q": "x"}'


def test_a_managers_reply_functions_carry_its_group_chat() -> None:
    members = [agent("a"), agent("b")]
    groupchat = autogen.GroupChat(agents=members, messages=[], max_round=2)
    manager = autogen.GroupChatManager(groupchat=groupchat, llm_config=False)
    configs = compat.reply_func_configs(manager)
    assert any(getattr(c, "messages", None) is groupchat.messages for c in configs), (
        f"GroupChatManager.{compat.REPLY_FUNCS} no longer holds the group chat; {WHERE}"
    )
    assert callable(getattr(groupchat, "select_speaker", None))

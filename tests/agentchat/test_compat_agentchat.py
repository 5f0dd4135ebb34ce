"""The autogen-agentchat privates the adapter touches (integrations/autogen/_compat_agentchat.py),
checked against the installed release: a release that moves one fails here, naming it and the file
to change. Runs on every AgentChat line of the nox matrix (0.4.2, 0.7.5, pyautogen 0.10.0)."""

from __future__ import annotations

import asyncio
from typing import Any

from execlave.integrations.autogen import _compat_agentchat as compat

from .conftest import replay_client, require_agentchat

require_agentchat()

WHERE = "the AgentChat adapter's privates live in src/execlave/integrations/autogen/_compat_agentchat.py"


def assistant(**kwargs: Any) -> Any:
    from autogen_agentchat.agents import AssistantAgent

    return AssistantAgent(kwargs.pop("name", "helper"), model_client=replay_client(["ok"]), **kwargs)


def test_the_model_context_keeps_a_mutable_message_list() -> None:
    from autogen_core.models import UserMessage

    agent = assistant()
    assert compat.model_context(agent) is not None, f"AssistantAgent.{compat.MODEL_CONTEXT} is gone; {WHERE}"
    asyncio.run(compat.model_context(agent).add_message(UserMessage(content="hi", source="user")))
    messages = compat.context_messages(agent)
    assert messages is not None, f"the model context's {compat.CONTEXT_MESSAGES} list is gone; {WHERE}"
    assert [m.content for m in messages] == ["hi"]


def test_handoffs_are_named_by_their_tool() -> None:
    agent = assistant(handoffs=["billing"])
    assert compat.handoff_names(agent) == {"transfer_to_billing"}, (
        f"AssistantAgent.{compat.HANDOFFS} moved; {WHERE}"
    )


def test_a_team_lists_its_participants() -> None:
    from autogen_agentchat.teams import RoundRobinGroupChat

    first, second = assistant(), assistant(name="other")
    team = RoundRobinGroupChat([first, second])
    assert compat.participants(team) == [first, second], f"the team's {compat.PARTICIPANTS} moved; {WHERE}"

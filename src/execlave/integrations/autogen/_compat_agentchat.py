"""Every private of autogen-agentchat the AgentChat adapter touches, in one place.
``tests/agentchat/test_compat_agentchat.py`` checks each against the installed release, so a
release that moves one fails there, naming it.

Tested against: autogen-agentchat 0.4.2 and 0.7.5, and what pyautogen 0.10.0 installs (the nox
``agentchat`` lines).
"""

from __future__ import annotations

from typing import Any

MODEL_CONTEXT = "_model_context"  # AssistantAgent: its ChatCompletionContext
CONTEXT_MESSAGES = "_messages"  # the buffered contexts' list of LLM messages
HANDOFFS = "_handoffs"  # AssistantAgent: {tool name: Handoff}
PARTICIPANTS = "_participants"  # a team's agents (and nested teams)


def model_context(agent: Any) -> Any:
    """The agent's model context, or None."""
    return getattr(agent, MODEL_CONTEXT, None)


def context_messages(agent: Any) -> list[Any] | None:
    """The model context's own message list (mutable) when it keeps one, else None."""
    messages = getattr(getattr(agent, MODEL_CONTEXT, None), CONTEXT_MESSAGES, None)
    return messages if isinstance(messages, list) else None


def handoff_names(agent: Any) -> frozenset[str]:
    """The tool names of the agent's handoffs (``transfer_to_*`` by default)."""
    handoffs = getattr(agent, HANDOFFS, None)
    return frozenset(handoffs) if isinstance(handoffs, dict) else frozenset()


def participants(team: Any) -> list[Any]:
    """A team's direct participants (agents or nested teams)."""
    return list(getattr(team, PARTICIPANTS, None) or ())


# on_messages_stream implementations known never to call the agent's on_messages back.
_SELF_CONTAINED_STREAMS = frozenset(
    {("autogen_agentchat.agents._assistant_agent", "AssistantAgent.on_messages_stream")}
)


def stream_is_self_contained(stream: Any) -> bool:
    """Whether ``stream`` (an agent's bound ``on_messages_stream``) is AgentChat's own
    ``AssistantAgent.on_messages_stream``, which never calls ``on_messages`` back (``BaseChatAgent``'s
    default does). Unknown implementations: False."""
    func = getattr(stream, "__func__", None)
    return (getattr(func, "__module__", None), getattr(func, "__qualname__", None)) in _SELF_CONTAINED_STREAMS

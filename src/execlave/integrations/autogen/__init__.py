"""AutoGen integration: ``instrument_autogen_agent(agent, exe, agent_id=...)``.

Classic AutoGen (pyautogen 0.2.x, AG2 below 1.0: ``ConversableAgent``) is supported today; the
AgentChat line (``BaseChatAgent``) dispatches here once its adapter lands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ...client import validate_agent_id
from .classic import MARKER, instrument_classic_agent, is_classic_agent, uninstrument_classic_agent

if TYPE_CHECKING:
    from ...client import Execlave

__all__ = ["instrument_autogen_agent", "uninstrument_autogen_agent"]

A = TypeVar("A")


def _is_agentchat_agent(agent: object) -> bool:
    return callable(getattr(agent, "on_messages_stream", None)) and callable(
        getattr(agent, "on_messages", None)
    )


def instrument_autogen_agent(
    agent: A, exe: Execlave, *, agent_id: str, session_id: str | None = None, user_id: str | None = None
) -> A:
    """Govern and trace ``agent``; returns it. Call once per agent, before its first reply.

    Idempotent: an ``_execlave_instrumented`` marker is set, and a second call is a no-op.
    Raises ``ValueError`` for an agent_id that is not lowercase kebab-case and ``TypeError`` for
    an object that is not a classic AutoGen agent.
    """
    validate_agent_id(agent_id)
    if is_classic_agent(agent):
        return instrument_classic_agent(agent, exe, agent_id=agent_id, session_id=session_id, user_id=user_id)  # type: ignore[no-any-return]
    if _is_agentchat_agent(agent):
        # Dispatch point for the AgentChat adapter (autogen-agentchat BaseChatAgent).
        raise TypeError(
            f"{type(agent).__name__} is an AgentChat agent (autogen-agentchat); this version of execlave "
            "instruments classic AutoGen agents only (ConversableAgent from pyautogen 0.2.x or ag2 < 1.0)"
        )
    raise TypeError(
        "instrument_autogen_agent expected a classic AutoGen agent (a ConversableAgent from pyautogen 0.2.x "
        f"or ag2 < 1.0, with generate_reply and _oai_messages); got {type(agent).__name__}"
    )


def uninstrument_autogen_agent(agent: A) -> A:
    """Restore the agent's original methods; a no-op on an agent that is not instrumented."""
    if getattr(agent, MARKER, False):
        uninstrument_classic_agent(agent)
    return agent

"""AutoGen integration: ``instrument_autogen_agent(agent, exe, agent_id=...)``.

One entry point for both AutoGen lines: classic agents (pyautogen 0.2.x, AG2 below 1.0:
``ConversableAgent``) go to :mod:`.classic`, AgentChat agents (autogen-agentchat 0.4–0.7, which
``pip install pyautogen`` 0.10 installs: ``BaseChatAgent``) to :mod:`.agentchat`, AG2 1.x agents
(``ag2.Agent``) to :mod:`execlave.integrations.ag2` (its middleware). No AutoGen package is
imported here: agents are recognised by shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..._ids import validate_agent_id
from .._base import MARKER, require_client
from .agentchat import (
    instrument_agentchat_agent,
    is_agentchat_agent,
    raise_policy_blocks,
    uninstrument_agentchat_agent,
)
from .classic import instrument_classic_agent, is_classic_agent, uninstrument_classic_agent
from .conversation import conversation, instrument_conversations, uninstrument_conversations

if TYPE_CHECKING:
    from ...client import Execlave

__all__ = ["conversation", "instrument_autogen_agent", "raise_policy_blocks", "uninstrument_autogen_agent"]

A = TypeVar("A")


def instrument_autogen_agent(
    agent: A,
    exe: Execlave,
    *,
    agent_id: str,
    enforce: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
) -> A:
    """Govern and trace ``agent``; returns it. Call once per agent, before its first reply.

    ``enforce=False`` traces only: no policy is evaluated, nothing is sent to Execlave's enforce
    API, the kill switch and rate limits do not apply, and nothing raises; the spans carry
    ``execlave.enforcement.enabled=false``. Use it to watch an agent before enforcing on it.

    Idempotent: an ``_execlave_instrumented`` marker is set, and a second call with the same
    client, agent_id and ``enforce`` is a no-op; a second call with another agent_id, client or
    ``enforce`` raises ``ValueError`` naming both bindings (``uninstrument_autogen_agent`` first
    to rebind).
    Raises ``ValueError`` for an agent_id that is not lowercase kebab-case, ``TypeError`` when
    ``exe`` is not an ``Execlave`` client, and ``TypeError`` for an object that is not a
    classic AutoGen, AgentChat or AG2 1.x agent.
    """
    validate_agent_id(agent_id)
    require_client(exe, "instrument_autogen_agent")
    from ..ag2 import instrument_ag2_agent, is_ag2_agent  # AG2 1.x (`import ag2`): its middleware API

    if is_ag2_agent(agent):
        instrument_ag2_agent(
            agent, exe, agent_id=agent_id, enforce=enforce, session_id=session_id, user_id=user_id
        )
    elif is_classic_agent(agent):
        instrument_classic_agent(
            agent, exe, agent_id=agent_id, enforce=enforce, session_id=session_id, user_id=user_id
        )
        instrument_conversations(
            agent, exe, agent_id=agent_id, session_id=session_id, user_id=user_id, agentchat=False
        )
    elif is_agentchat_agent(agent):
        instrument_agentchat_agent(
            agent, exe, agent_id=agent_id, enforce=enforce, session_id=session_id, user_id=user_id
        )
        instrument_conversations(
            agent, exe, agent_id=agent_id, session_id=session_id, user_id=user_id, agentchat=True
        )
    else:
        raise TypeError(
            "instrument_autogen_agent expected an AutoGen agent: a classic ConversableAgent (pyautogen "
            "0.2.x or ag2 < 1.0, with generate_reply and _oai_messages), an AgentChat agent "
            "(autogen-agentchat BaseChatAgent, with on_messages_stream) or an AG2 1.x ag2.Agent; "
            f"got {type(agent).__name__}"
        )
    return agent


def uninstrument_autogen_agent(agent: A) -> A:
    """Restore the agent's original methods; a no-op on an agent that is not instrumented."""
    from ..ag2 import is_ag2_agent, uninstrument_ag2_agent

    if is_ag2_agent(agent):
        uninstrument_ag2_agent(agent)
    elif getattr(agent, MARKER, False):
        uninstrument_conversations(agent)
        if is_agentchat_agent(agent):
            uninstrument_agentchat_agent(agent)
        else:
            uninstrument_classic_agent(agent)
    return agent

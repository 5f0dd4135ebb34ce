"""The adapter interface: what a framework adapter needs besides the :class:`~execlave.Execlave`
client's adapter methods (``decide``, ``adecide``, ``prepare_check``, ``aprepare_check``,
``round_span``, ``tool_span``, ``model_span``). The guide is ``docs/adapters.md``.

An :class:`AgentIdentity` names one governed agent once; the client turns it into check requests
and span attributes, so an adapter writes no attribute key and no span name itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from ._ids import validate_agent_id
from .policy.types import CheckRequest, Decision, ToolCall, ToolOutput

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

__all__ = ["AgentIdentity", "Check", "CheckRequest", "Decision", "ToolCall", "ToolOutput"]

Check = Callable[[], Decision]
"""A decision to make inside a governed span (:meth:`Execlave.prepare_check` builds one)."""


@dataclass(frozen=True)
class AgentIdentity:
    """One governed agent: its Execlave ``agent_id`` (lowercase kebab-case; checked here), the
    ``name`` its spans show (default: the id), and optionally the conversation and the user it
    serves (recorded as ``gen_ai.conversation.id`` / ``user.id`` and sent with every check as
    ``session_id`` / ``user_id`` metadata). ``enforced=False`` makes the agent trace only: the
    client's spans for it run no check (nothing is evaluated or sent to Execlave) and carry
    ``execlave.enforcement.enabled=false``."""

    agent_id: str
    name: str | None = None
    conversation_id: str | None = None
    user_id: str | None = None
    enforced: bool = True
    attributes: Mapping[str, AttributeValue] = field(init=False, repr=False, compare=False)
    metadata: Mapping[str, str] | None = field(init=False, repr=False, compare=False)
    round_attributes: Mapping[str, AttributeValue] = field(init=False, repr=False, compare=False)
    """The attributes of this agent's ``invoke_agent`` spans."""
    round_span_name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from .telemetry import names  # OpenTelemetry is loaded only once an identity is made

        validate_agent_id(self.agent_id)
        if not (isinstance(self.name, str) and self.name):
            object.__setattr__(self, "name", self.agent_id)
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_AGENT_NAME: self.display_name,
            names.GEN_AI_AGENT_ID: self.agent_id,
        }
        metadata: dict[str, str] = {}
        if self.conversation_id is not None:
            object.__setattr__(self, "conversation_id", str(self.conversation_id))
            attributes[names.GEN_AI_CONVERSATION_ID] = self.conversation_id
            metadata["session_id"] = str(self.conversation_id)
        if self.user_id is not None:
            object.__setattr__(self, "user_id", str(self.user_id))
            attributes[names.USER_ID] = self.user_id
            metadata["user_id"] = str(self.user_id)
        if not self.enforced:
            attributes[names.ENFORCEMENT_ENABLED] = False
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "metadata", metadata or None)
        # The same on every round: built once (never mutated; telemetry copies what it bounds).
        round_attributes: dict[str, AttributeValue] = {names.GEN_AI_OPERATION_NAME: names.OP_INVOKE_AGENT}
        round_attributes.update(attributes)
        object.__setattr__(self, "round_attributes", MappingProxyType(round_attributes))
        object.__setattr__(self, "round_span_name", names.span_name(names.OP_INVOKE_AGENT, self.display_name))

    @property
    def display_name(self) -> str:
        """The name in span names (``invoke_agent {display_name}``)."""
        return self.name or self.agent_id

    def request(
        self,
        environment: str | None = None,
        *,
        input: str | None = None,
        tool_calls: tuple[ToolCall, ...] = (),
        tool_outputs: tuple[ToolOutput, ...] = (),
        count_request: bool = False,
    ) -> CheckRequest:
        """A :class:`~execlave.policy.CheckRequest` for this agent (``input=``, ``tool_calls=``,
        ``tool_outputs=``, ``count_request=``); the client's ``check_request`` fills ``environment``."""
        return CheckRequest(
            self.agent_id, input, tool_calls, tool_outputs, environment, self.metadata, count_request
        )

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


def test_the_stream_switches_opentelemetry_context_like_attach_and_detach() -> None:
    """The stream makes the turn's span current on every event through OpenTelemetry's own
    context variable when OpenTelemetry runs on its default runtime context (else attach/detach)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext

    from execlave.integrations.autogen.agentchat import _context_switch

    attach, detach = _context_switch()
    assert attach is not otel_context.attach, (
        "opentelemetry's default runtime context is no longer a ContextVar in "
        "_RUNTIME_CONTEXT._current_context: the stream falls back to attach/detach "
        "(src/execlave/integrations/autogen/agentchat.py, _context_switch)"
    )
    span = NonRecordingSpan(SpanContext(trace_id=1, span_id=2, is_remote=False))
    before = otel_context.get_current()
    token = attach(trace.set_span_in_context(span))
    assert trace.get_current_span() is span
    detach(token)
    assert otel_context.get_current() is before


def test_assistant_agents_stream_is_known_never_to_call_on_messages_back() -> None:
    """AssistantAgent's own on_messages_stream is recognised (its turn needs no nesting mark);
    BaseChatAgent's default, which calls on_messages back, and any override are not."""
    import inspect

    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.base import Response
    from autogen_agentchat.messages import TextMessage

    source = inspect.getsource(AssistantAgent.on_messages_stream)
    assert "on_messages(" not in source.replace("on_messages_stream(", ""), (
        f"AssistantAgent.on_messages_stream now calls on_messages; {WHERE}"
    )
    assert compat.stream_is_self_contained(assistant().on_messages_stream)

    class Subclass(AssistantAgent):
        async def on_messages_stream(self, messages: Any, cancellation_token: Any) -> Any:  # type: ignore[override]
            async for event in super().on_messages_stream(messages, cancellation_token):
                yield event

    sub = Subclass("sub", model_client=replay_client(["ok"]))
    assert not compat.stream_is_self_contained(sub.on_messages_stream)

    from autogen_agentchat.agents import BaseChatAgent

    class Echo(BaseChatAgent):
        @property
        def produced_message_types(self) -> Any:
            return (TextMessage,)

        async def on_messages(self, messages: Any, cancellation_token: Any) -> Response:
            return Response(chat_message=TextMessage(content="echo", source=self.name))

        async def on_reset(self, cancellation_token: Any) -> None:
            return None

    assert not compat.stream_is_self_contained(Echo("echo", "echo agent").on_messages_stream)

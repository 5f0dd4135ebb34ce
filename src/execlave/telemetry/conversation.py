"""One conversation = one trace: the ``execlave.conversation`` root span and the conversation id.

A :class:`ConversationScope` opens the root span (a child of the application's current span when
there is one) and puts a :class:`Conversation` in the OpenTelemetry context next to it. Every
governed span started beneath it carries ``gen_ai.conversation.id``, and an enforcement error
that passes through any of them (even one a framework swallows) marks the root ERROR.

Enforcement never depends on this span: with a no-op provider, a sampled-out root or a tracer
that fails, the scope still runs (the span is then non-recording) and every check still runs in
the adapters' governed spans. A scope opened while a conversation is already current joins it
(nested and sequential chats stay in the caller's trace). OpenTelemetry only: no AutoGen here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ..errors import AgentPausedError, ExeclaveError, PolicyBlockedError
from . import names
from .bounds import Masker, exception_attributes, status_text

logger = logging.getLogger("execlave")

CONVERSATION_SPAN = names.CONVERSATION_SPAN
CONVERSATION_ID = names.GEN_AI_CONVERSATION_ID
_KEY = otel_context.create_key("execlave.conversation")


class Conversation:
    """The conversation a span belongs to: its id and the first enforcement error seen in it."""

    __slots__ = ("error", "id", "masker", "span")

    def __init__(self, conversation_id: str, span: Span) -> None:
        self.id = conversation_id
        self.span = span
        self.error: BaseException | None = None
        self.masker: Masker | None = None  # the client's, learnt from the first governed span


def current_conversation(context: otel_context.Context | None = None) -> Conversation | None:
    try:
        if context is None:
            context = otel_context.get_current()
        value = context.get(_KEY)  # get_value(_KEY, context), one call less per span
    except Exception:
        return None
    return value if isinstance(value, Conversation) else None


def conversation_context(conversation_id: str) -> otel_context.Context | None:
    """A context carrying a conversation that has no root span (for frameworks where no span can
    wrap a conversation, e.g. one continued later), or None when one is current (join that)."""
    if current_conversation() is not None:
        return None
    try:
        return otel_context.set_value(_KEY, Conversation(conversation_id, INVALID_SPAN))
    except Exception:
        logger.debug("execlave: could not build the conversation context", exc_info=True)
        return None


def with_conversation_id(
    attributes: Mapping[str, AttributeValue] | None,
    masker: Masker | None = None,
    context: otel_context.Context | None = None,
) -> Mapping[str, AttributeValue] | None:
    """``attributes`` plus ``gen_ai.conversation.id`` of the conversation current in ``context``
    (default: the current context), if any (``masker``, the client's, is what the root's error
    texts are later masked with)."""
    conversation = current_conversation(context)
    if conversation is None:
        return attributes
    if masker is not None and conversation.masker is None:
        conversation.masker = masker
    return {**(attributes or {}), CONVERSATION_ID: conversation.id}


def note_error(exc: BaseException | None) -> None:
    """Remember an execlave error (a block, a paused agent, an outage) on the current conversation,
    so its root ends ERROR even when the framework swallows the error."""
    if exc is None or not isinstance(exc, ExeclaveError):
        return
    conversation = current_conversation()
    if conversation is not None and conversation.error is None:
        conversation.error = exc


class ConversationScope:
    """The root span of one conversation, made current step by step.

    ``with scope:`` makes the root (and the conversation) current; it can be entered again for
    each step of an async generator, so nothing leaks into the consumer across a ``yield``.
    :meth:`end` ends the root once (ERROR if ``exc`` or a noted execlave error). When a
    conversation is already current the scope joins it: no span, nothing to end.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        *,
        kind: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        conversation_id: str | None = None,
    ) -> None:
        self._token: Any = None
        self._ended = False
        outer = current_conversation()
        self.joined = outer is not None
        if outer is not None:
            self.conversation = outer
            self._context: Any = None
            return
        conversation_id = conversation_id or uuid.uuid4().hex
        attrs: dict[str, AttributeValue] = {
            **(attributes or {}),
            names.CONVERSATION_KIND: kind,
            CONVERSATION_ID: conversation_id,
        }
        try:
            span: Span = tracer.start_span(CONVERSATION_SPAN, kind=SpanKind.INTERNAL, attributes=attrs)
        except Exception:
            logger.warning("execlave: could not start the conversation span", exc_info=True)
            span = INVALID_SPAN
        self.conversation = Conversation(conversation_id, span)
        try:
            # No root (a tracer that never records): the caller's span stays current beneath.
            ctx = trace.set_span_in_context(span) if span.get_span_context().is_valid else None
            self._context = otel_context.set_value(_KEY, self.conversation, ctx)
        except Exception:
            logger.debug("execlave: could not build the conversation context", exc_info=True)
            self._context = None

    def __enter__(self) -> Conversation:
        if self._context is not None and not self._ended:
            try:
                self._token = otel_context.attach(self._context)
            except Exception:
                logger.debug("execlave: could not make the conversation current", exc_info=True)
        return self.conversation

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception:
                logger.debug("execlave: could not detach the conversation context", exc_info=True)

    def end(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            note_error_on(self.conversation, exc)
        if self.joined or self._ended:
            return
        self._ended = True
        span = self.conversation.span
        error = exc if exc is not None else self.conversation.error
        try:
            if error is not None:
                # Never the raw text (it may quote data or carry huge model-chosen names): bounded.
                masker = self.conversation.masker
                if isinstance(error, Exception):
                    span.add_event("exception", exception_attributes(error, masker=masker))
                span.set_status(Status(StatusCode.ERROR, status_text(error, masker)))
                halted = self.conversation.error
                if isinstance(halted, ExeclaveError):
                    span.set_attribute(names.CONVERSATION_HALTED, True)
                if isinstance(halted, (PolicyBlockedError, AgentPausedError)):
                    # The conversation was stopped by policy (Execlave's trace status policy_blocked).
                    span.set_attribute(names.POLICY_DECISION, "block")
            span.end()
        except Exception:
            logger.debug("execlave: could not end the conversation span", exc_info=True)


def note_error_on(conversation: Conversation, exc: BaseException) -> None:
    if isinstance(exc, ExeclaveError) and conversation.error is None:
        conversation.error = exc

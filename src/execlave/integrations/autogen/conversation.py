"""One conversation = one trace, for instrumented AutoGen agents.

The entry points of a conversation get an ``execlave.conversation`` root span (see
:mod:`execlave.telemetry.conversation`); every round, check and tool execution of instrumented
agents beneath it lands in the same trace with ``gen_ai.conversation.id``:

* classic (``ConversableAgent``): the instance's ``initiate_chat``, ``a_initiate_chat`` and, where
  the version has them, ``initiate_chats`` / ``a_initiate_chats`` and AG2's ``run`` / ``a_run``
  (their background thread or task carries the root, which ends with the chat). Group chats (``initiate_chat``
  to a ``GroupChatManager``) and nested chats run inside the initiator's call, so they join;
* AgentChat: the agent's own ``run`` / ``run_stream``, and team ``run`` / ``run_stream``
  (``BaseGroupChat``, patched once on the class when the first AgentChat agent is instrumented;
  it opens a conversation only when a participant is instrumented, else it passes through).

:func:`conversation` groups anything else (e.g. the module-level ``initiate_chats``, or a chat
started by an agent that is not instrumented) into one trace. The id is the initiating agent's
``session_id`` when it has one, else a fresh random id. AutoGen is never imported here, except
the AgentChat team base class, lazily and only when an AgentChat agent is instrumented.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from ...telemetry import names
from ...telemetry.conversation import Conversation, ConversationScope
from .._base import MARKER
from . import _background
from ._compat_agentchat import participants

if TYPE_CHECKING:
    from ...client import Execlave


_ORIGINALS = "_execlave_conversation_originals"
_CLIENT = "_execlave_client"
_CLASSIC = ("initiate_chat", "a_initiate_chat", "initiate_chats", "a_initiate_chats")
_CLASSIC_RUN = ("run", "a_run")  # AG2 0.4+: the chat runs in a background thread / task
_AGENTCHAT_ASYNC = ("run",)
_AGENTCHAT_STREAM = ("run_stream",)
_ABSENT = object()


@contextlib.contextmanager
def conversation(
    exe: Execlave, *, name: str | None = None, conversation_id: str | None = None
) -> Iterator[Conversation]:
    """Group what runs inside into one conversation (one trace)::

        with conversation(exe, name="nightly-ops"):
            autogen.initiate_chats([...])

    Joins the current conversation if there is one. Yields the :class:`Conversation` (``.id``).
    """
    attributes: dict[str, AttributeValue] = {}
    if name:
        attributes[names.GEN_AI_AGENT_NAME] = name
    scope = ConversationScope(
        exe.tracer, kind="explicit", attributes=attributes, conversation_id=conversation_id
    )
    try:
        with scope as conv:
            yield conv
    except BaseException as exc:
        scope.end(exc)
        raise
    scope.end()


def _attributes(agent: Any, agent_id: str | None) -> dict[str, AttributeValue]:
    name = getattr(agent, "name", None)
    attrs: dict[str, AttributeValue] = {}
    if isinstance(name, str) and name:
        attrs[names.GEN_AI_AGENT_NAME] = name
    if agent_id:
        attrs[names.GEN_AI_AGENT_ID] = agent_id
    return attrs


class _Opener:
    """Opens a conversation for one initiating agent."""

    def __init__(
        self, exe: Execlave, agent: Any, agent_id: str | None, session_id: str | None, user_id: str | None
    ) -> None:
        self.exe = exe
        self.attributes = _attributes(agent, agent_id)
        if user_id is not None:
            self.attributes[names.USER_ID] = str(user_id)
        self.session_id = None if session_id is None else str(session_id)

    def scope(self, kind: str, recipient: Any = None) -> ConversationScope:
        attrs = dict(self.attributes)
        peer = getattr(recipient, "name", None)
        if isinstance(peer, str) and peer:
            attrs[names.CONVERSATION_RECIPIENT] = peer
        return ConversationScope(
            self.exe.tracer, kind=kind, attributes=attrs, conversation_id=self.session_id
        )


def _recipient(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs.get("recipient", args[0] if args else None)


def _wrap_sync(opener: _Opener, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = opener.scope(kind, _recipient(args, kwargs) if kind == "initiate_chat" else None)
        try:
            with scope:
                result = original(*args, **kwargs)
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.end()
        return result

    return wrapper


def _wrap_async(opener: _Opener, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = opener.scope(kind, _recipient(args, kwargs) if kind == "a_initiate_chat" else None)
        try:
            with scope:
                result = await original(*args, **kwargs)
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.end()
        return result

    return wrapper


async def _stream(scope: ConversationScope, inner: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """Drive ``inner`` with the conversation current during each step only (never across a yield)."""
    try:
        while True:
            with scope:
                try:
                    item = await inner.__anext__()
                except StopAsyncIteration:
                    break
            try:
                yield item
            except GeneratorExit:
                break
    except BaseException as exc:
        with scope, contextlib.suppress(Exception):
            await inner.aclose()
        scope.end(exc)
        raise
    with scope, contextlib.suppress(Exception):
        await inner.aclose()
    scope.end()


def _wrap_stream(opener: _Opener, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        scope = opener.scope(kind)
        with scope:
            inner = original(*args, **kwargs)
        return _stream(scope, inner)

    return wrapper


def _module_of(agent: Any, name: str) -> Any:
    """The module that defines the class method ``name`` of ``agent`` (AG2's conversable_agent)."""
    import sys

    function = getattr(type(agent), name, None)
    return sys.modules.get(getattr(function, "__module__", "") or "")


def _wrap_run(opener: _Opener, kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """AG2's ``run`` / ``a_run`` return at once and chat in a background thread / task: the root
    opens here (under the caller's span) and ends when that background chat ends."""
    if kind == "a_run":

        @functools.wraps(original)
        async def arun(*args: Any, **kwargs: Any) -> Any:
            scope = opener.scope(kind, _recipient(args, kwargs))
            return await _background.arun_in_scope(scope, lambda: original(*args, **kwargs))

        return arun

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        scope = opener.scope(kind, _recipient(args, kwargs))
        return _background.run_in_scope(scope, lambda: original(*args, **kwargs))

    return run


def instrument_conversations(
    agent: Any,
    exe: Execlave,
    *,
    agent_id: str,
    session_id: str | None,
    agentchat: bool,
    user_id: str | None = None,
) -> None:
    """Wrap the agent's conversation entry points (instance attributes); idempotent."""
    if getattr(agent, _ORIGINALS, None) is not None:
        return
    opener = _Opener(exe, agent, agent_id, session_id, user_id)
    wrappers: dict[str, Any] = {}
    if agentchat:
        for name in _AGENTCHAT_ASYNC:
            original = getattr(agent, name, None)
            if callable(original):
                wrappers[name] = _wrap_async(opener, f"agent.{name}", original)
        for name in _AGENTCHAT_STREAM:
            original = getattr(agent, name, None)
            if callable(original):
                wrappers[name] = _wrap_stream(opener, f"agent.{name}", original)
        setattr(agent, _CLIENT, exe)  # a team run traces with its instrumented participant's client
        patch_team_class()
    else:
        for name in _CLASSIC:
            original = getattr(agent, name, None)
            if callable(original):
                wrap = _wrap_async if name.startswith("a_") else _wrap_sync
                wrappers[name] = wrap(opener, name, original)
        for name in _CLASSIC_RUN:
            original = getattr(agent, name, None)
            if callable(original):
                wrappers[name] = _wrap_run(opener, name, original)
                _background.install(_module_of(agent, name))
    instance_dict = getattr(agent, "__dict__", {})
    saved = {name: instance_dict.get(name, _ABSENT) for name in wrappers}
    for name, wrapper in wrappers.items():
        setattr(agent, name, wrapper)
    setattr(agent, _ORIGINALS, saved)


def uninstrument_conversations(agent: Any) -> None:
    saved = getattr(agent, _ORIGINALS, None)
    if not isinstance(saved, dict):
        return
    for name, previous in saved.items():
        if previous is _ABSENT:
            agent.__dict__.pop(name, None)
        else:
            setattr(agent, name, previous)
    agent.__dict__.pop(_ORIGINALS, None)
    agent.__dict__.pop(_CLIENT, None)


# -- AgentChat teams -------------------------------------------------------------------------------

_TEAM_PATCH = "_execlave_team_run_stream"
_PREPARERS: list[Callable[[Any], None]] = []


def _instrumented_member(team: Any) -> Any:
    """The first instrumented participant (nested teams included), or None."""
    for member in participants(team):
        if getattr(member, MARKER, False):
            return member
        found = _instrumented_member(member)
        if found is not None:
            return found
    return None


def _team_class() -> Any:
    try:
        from autogen_agentchat.teams import BaseGroupChat  # type: ignore[import-not-found,unused-ignore]
    except Exception:
        return None
    return BaseGroupChat


def add_team_preparer(prepare: Callable[[Any], None]) -> None:
    """``prepare(agent)`` runs on every participant when a team run starts (the instrumentor uses
    it to instrument participants before their conversation opens)."""
    if prepare not in _PREPARERS:
        _PREPARERS.append(prepare)


def remove_team_preparer(prepare: Callable[[Any], None]) -> None:
    if prepare in _PREPARERS:
        _PREPARERS.remove(prepare)


def _prepare_members(team: Any) -> None:
    for member in participants(team):
        for prepare in list(_PREPARERS):
            prepare(member)
        _prepare_members(member)


def patch_team_class() -> bool:
    """Wrap ``BaseGroupChat.run_stream`` once (``run`` goes through it): a run with an instrumented
    participant is one conversation, traced with that participant's execlave client. True when
    this call installed the wrapper."""
    cls = _team_class()
    if cls is None or _TEAM_PATCH in cls.__dict__:
        return False
    original = cls.run_stream

    @functools.wraps(original)
    def run_stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _PREPARERS:
            _prepare_members(self)
        member = _instrumented_member(self)
        client = getattr(member, _CLIENT, None) if member is not None else None
        if client is None:
            return original(self, *args, **kwargs)
        name = getattr(self, "name", None) or type(self).__name__
        attrs: dict[str, AttributeValue] = {names.GEN_AI_AGENT_NAME: str(name)}
        scope = ConversationScope(client.tracer, kind="team.run_stream", attributes=attrs)
        with scope:
            inner = original(self, *args, **kwargs)
        return _stream(scope, inner)

    setattr(cls, _TEAM_PATCH, original)
    cls.run_stream = run_stream
    return True


def unpatch_team_class() -> None:
    cls = _team_class()
    if cls is None or _TEAM_PATCH not in cls.__dict__:
        return
    cls.run_stream = cls.__dict__[_TEAM_PATCH]
    delattr(cls, _TEAM_PATCH)

"""AgentChat adapter: autogen-agentchat 0.4–0.7 (``AssistantAgent`` and other ``BaseChatAgent``s),
which is also what ``pip install pyautogen`` (0.10.0) installs today.

AgentChat is async only. ``run_stream`` and a team's agent container call the instance's
``on_messages_stream``; ``run`` calls ``on_messages``, which many agents (custom agents as the
AgentChat tutorial writes them, ``MessageFilterAgent``, ``FileSurfer``) implement themselves.
Both are patched on the instance, whatever the class overrides: a governed ``on_messages``
runs the turn through the governed ``on_messages_stream`` (which, in ``BaseChatAgent``, calls
the agent's own ``on_messages`` back: that nested call runs the agent's logic unchanged). In
``on_messages_stream``:

* the incoming messages are checked (input policies) before the inner call, so a blocked
  message never reaches the agent's model context or its model;
* each ``ToolCallRequestEvent`` has every call checked (one ``check_tool`` child span each)
  while the inner generator is suspended, i.e. before ANY of the calls runs; on a block the
  inner generator is closed, the model context is repaired, and ``PolicyBlockedError`` raised;
* each ``ToolCallExecutionEvent`` (tool results) is scanned by ``scan_output`` policies before
  the generator is resumed, i.e. before the reflection model call sees the results;
* each ``MemoryQueryEvent`` (what ``memory=[...]`` adds to the model context) gets the input
  checks before the generator is resumed, i.e. before the model call.

Handoffs (``transfer_to_*``) are tool calls for AgentChat and get the same check. Default: a
``tool_invocation`` policy with an ``allow`` list blocks handoffs it does not match, so list
``transfer_to_*`` (or the specific targets) in it to permit them; a ``deny`` list can block one
handoff target. With no ``tool_invocation`` policy, handoffs are allowed.

A team's own model calls (``SelectorGroupChat``'s selector model) are made by no agent: pass the
team a client wrapped by :func:`govern_model_client` to check what that model reads.

AgentChat teams turn an agent's exception into a ``RuntimeError`` string; wrap a team run in
:func:`raise_policy_blocks` to get the original ``PolicyBlockedError`` (with violations) back.

``autogen_agentchat`` is never imported: agents and events are duck-typed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from ..._ids import validate_agent_id
from ...adapter import Check
from ...errors import EnforcementHaltError
from ...policy.types import CheckRequest, ToolCall, ToolOutput
from ...telemetry import names
from .._base import AgentGovernor, EventKinds, already_bound, patch_instance, require_client, restore_instance
from ._compat_agentchat import (
    context_messages,
    handoff_names,
    model_context,
    participants,
    stream_is_self_contained,
)
from ._messages import parse_arguments

if TYPE_CHECKING:
    from ...client import Execlave
    from ...telemetry import GovernedSpan

__all__ = ["govern_model_client"]

_LAST_BLOCK = "_execlave_last_block"
# Errors an instrumented agent raised, for raise_policy_blocks(); a list per team run.
_BLOCK_SINK: ContextVar[list[tuple[int, BaseException]] | None] = ContextVar(
    "execlave_block_sink", default=None
)
_SEQ = itertools.count(1)
# The governors whose turn is running in this context: a nested on_messages call is the agent's own.
_IN_TURN: ContextVar[frozenset[int]] = ContextVar("execlave_in_turn", default=frozenset())
_GOVERNANCE_ERRORS = (EnforcementHaltError,)  # all that stops a round
_UNSEEN = object()


def is_agentchat_agent(obj: object) -> bool:
    """Duck-typed: an AgentChat ``BaseChatAgent`` has async ``on_messages_stream`` and
    ``on_messages`` and no classic ``generate_reply``."""
    return (
        callable(getattr(obj, "on_messages_stream", None))
        and callable(getattr(obj, "on_messages", None))
        and not callable(getattr(obj, "generate_reply", None))
    )


# -- message shapes ----------------------------------------------------------------------------

# (class, attribute) -> True when no instance of the class can have the attribute (see _attr).
_ABSENT: dict[tuple[type, str], bool] = {}


def _surely_absent(cls: type, name: str) -> bool:
    """Whether instances of ``cls`` cannot have attribute ``name``: a pydantic model class (AgentChat's
    messages and events are) where ``name`` is no field and no class attribute, extra fields are not
    allowed and the only ``__getattr__`` is pydantic's own. Anything else: False (ask ``getattr``)."""
    fields = getattr(cls, "__pydantic_fields__", None)
    if fields is None:  # pydantic before 2.10
        fields = getattr(cls, "model_fields", None)
    if not isinstance(fields, dict) or name in fields:
        return False
    if any(name in vars(c) for c in cls.__mro__):
        return False
    config = getattr(cls, "model_config", None)
    if not isinstance(config, dict) or config.get("extra") == "allow":
        return False
    owner = next((c for c in cls.__mro__ if "__getattr__" in vars(c)), None)
    return owner is not None and owner.__module__ == "pydantic.main" and owner.__name__ == "BaseModel"


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, without pydantic's miss path: a model's ``__getattr__`` raises
    a formatted ``AttributeError`` for every absent attribute (~2 µs; a turn asks several times
    for a ``context`` that only a ``HandoffMessage`` has). Decided once per class and name."""
    key = (type(obj), name)
    absent = _ABSENT.get(key)
    if absent is None:
        absent = _ABSENT[key] = _surely_absent(key[0], name)
    return None if absent else getattr(obj, name, None)


def _text(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = [p if isinstance(p, str) else _attr(p, "text") for p in content]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    dump = _attr(content, "model_dump_json")  # StructuredMessage: a pydantic model
    if callable(dump):
        text = dump()
        return text if isinstance(text, str) else None
    return None


def _is_result_message(message: Any) -> bool:
    return type(message).__name__ == "FunctionExecutionResultMessage"


def _carried_texts(message: Any, texts: list[str]) -> None:
    """What an LLM message carried in a handoff puts in front of the model, appended to ``texts``:
    its text content, an ``AssistantMessage.thought``, and the name and arguments of each
    ``FunctionCall`` it holds."""
    content = getattr(message, "content", None)
    text = _text(content)
    if text:
        texts.append(text)
    thought = _attr(message, "thought")
    if isinstance(thought, str) and thought:
        texts.append(thought)
    if isinstance(content, (list, tuple)):
        for part in content:
            if isinstance(part, str) or _attr(part, "text") is not None:
                continue
            for field in ("name", "arguments"):
                value = _attr(part, field)
                if isinstance(value, str) and value:
                    texts.append(value)


def turn_input(messages: Any) -> tuple[str | None, tuple[ToolOutput, ...]]:
    """What the incoming chat messages put in front of the model, in one walk: all their text
    (str, multimodal or structured content), joined, including the LLM messages a
    ``HandoffMessage`` carries in ``context`` (AssistantAgent adds them to its model context);
    and the tool results carried there (``scan_output`` policies see them before the model does)."""
    texts: list[str] = []
    outputs: list[ToolOutput] = []
    for message in messages or ():
        text = _text(getattr(message, "content", None))
        if text:
            texts.append(text)
        carried = _attr(message, "context")  # a HandoffMessage's
        if carried:
            _llm_messages(carried, texts, outputs)
    return ("\n".join(texts) if texts else None), tuple(outputs)


def _llm_messages(messages: Any, texts: list[str], outputs: list[ToolOutput]) -> None:
    """A list of LLM messages: tool results to ``outputs``, every other text to ``texts``."""
    for message in messages or ():
        if _is_result_message(message):
            outputs.extend(execution_outputs(message))
        else:
            _carried_texts(message, texts)


def memory_text(event: Any) -> str | None:
    """The text of a ``MemoryQueryEvent``: every ``MemoryContent`` it adds to the model context."""
    texts: list[str] = []
    for item in getattr(event, "content", None) or ():
        content = getattr(item, "content", item)
        text = content if isinstance(content, str) else _text(content)
        if text is None and content is not None:
            text = str(content)
        if text:
            texts.append(text)
    return "\n".join(texts) if texts else None


def request_calls(event: Any, *, parse: bool = True) -> list[ToolCall]:
    """The ``FunctionCall`` list of a ``ToolCallRequestEvent`` as ``ToolCall``s (arguments parsed
    when they parse, as in the classic adapter; the name is checked either way). ``parse=False``
    (trace only: nothing looks at the arguments) keeps them as given."""
    calls: list[ToolCall] = []
    for call in getattr(event, "content", None) or ():
        call_id = getattr(call, "id", None)
        arguments = getattr(call, "arguments", None)
        calls.append(
            ToolCall(
                str(getattr(call, "name", None)),
                parse_arguments(arguments) if parse else arguments,
                None if call_id is None else str(call_id),
            )
        )
    return calls


def execution_outputs(event: Any) -> list[ToolOutput]:
    """The ``FunctionExecutionResult`` list of a ``ToolCallExecutionEvent`` (or a
    ``FunctionExecutionResultMessage``) as ``ToolOutput``s."""
    outputs: list[ToolOutput] = []
    for result in getattr(event, "content", None) or ():
        content = getattr(result, "content", None)
        if not isinstance(content, str):
            content = _text(content) or ("" if content is None else str(content))
        call_id = getattr(result, "call_id", None)
        name = _attr(result, "name")  # new in autogen-core 0.4.8
        outputs.append(ToolOutput(content, name, None if call_id is None else str(call_id)))
    return outputs


# request / execution / memory / response: the AgentChat events the adapter acts on.
_kind = EventKinds(
    {
        "ToolCallRequestEvent": "request",
        "ToolCallExecutionEvent": "execution",
        "MemoryQueryEvent": "memory",
        "Response": "response",
    }
)


def _dangling(message: Any) -> bool:
    """A message a blocked turn leaves behind: the assistant's tool-call message, the results, or
    the system message memory added."""
    kind = type(message).__name__
    if kind in ("FunctionExecutionResultMessage", "SystemMessage"):
        return True
    return kind == "AssistantMessage" and isinstance(getattr(message, "content", None), list)


# -- the governor --------------------------------------------------------------------------------


class _AgentChatGovernor(AgentGovernor):
    def __init__(
        self, agent: Any, exe: Execlave, agent_id: str, session_id: str | None, user_id: str | None
    ) -> None:
        super().__init__(agent, exe, agent_id, session_id, user_id)
        self.handoff_names = handoff_names(agent)

    def is_handoff(self, call: ToolCall) -> bool:
        return call.name in self.handoff_names or call.name.startswith("transfer_to_")

    def _input_request(self, messages: Any) -> CheckRequest:
        text, outputs = turn_input(messages)
        return self.request(input=text, tool_outputs=outputs, count_request=True)

    def ready(self) -> bool:
        """Whether this turn's checks need no awaiting (trace only, or decided in-process): then
        the stream takes them from :meth:`check` / :meth:`check_requested`, without coroutines."""
        return not self.enforce or self.exe.decides_in_process

    # Builders of the checks' requests (run inside the span, by the check).
    def input_build(self, messages: Any) -> Callable[[], CheckRequest]:
        return lambda: self._input_request(messages)

    def memory_build(self, event: Any) -> Callable[[], CheckRequest]:
        return lambda: self.request(input=memory_text(event))

    def output_build(self, event: Any) -> Callable[[], CheckRequest]:
        return lambda: self.request(tool_outputs=tuple(execution_outputs(event)))

    # Awaitables of the checks (no coroutine of their own: one frame less per check).
    def input_check(self, messages: Any) -> Awaitable[Check]:
        return self.acheck(self.input_build(messages))

    def memory_check(self, event: Any) -> Awaitable[Check]:
        return self.acheck(self.memory_build(event))

    def output_check(self, event: Any) -> Awaitable[Check]:
        return self.acheck(self.output_build(event))

    async def repair_context(self, mark: int | None) -> None:
        """Drop the tool-call / tool-result messages a blocked turn left in the model context,
        so the next turn starts from a valid history (no assistant tool call without results)."""
        ctx = model_context(self.agent)
        messages = context_messages(self.agent)
        if messages is not None:
            floor = mark if mark is not None else 0
            while len(messages) > floor and _dangling(messages[-1]):
                messages.pop()
            return
        if ctx is None:
            return
        current = list(await ctx.get_messages())
        kept = list(current)
        while kept and _dangling(kept[-1]):
            kept.pop()
        if len(kept) != len(current):
            await ctx.clear()
            for message in kept:
                await ctx.add_message(message)

    def context_mark(self) -> int | None:
        messages = context_messages(self.agent)
        return len(messages) if messages is not None else None

    def record_error(self, exc: BaseException) -> None:
        entry = (next(_SEQ), exc)
        with contextlib.suppress(Exception):
            setattr(self.agent, _LAST_BLOCK, entry)
        sink = _BLOCK_SINK.get()
        if sink is not None:
            sink.append(entry)


def _end(ctx: contextvars.Context, cm: AbstractContextManager[GovernedSpan], exc: BaseException) -> None:
    """End the turn's span with ``exc`` (in its private context); ``exc`` is what the caller raises next."""
    with contextlib.suppress(type(exc)):
        ctx.run(cm.__exit__, type(exc), exc, exc.__traceback__)


def _context_switch() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """OpenTelemetry's ``context.attach`` / ``detach``; when OpenTelemetry runs on its default
    runtime context (a ``ContextVar``), that variable's own ``set`` / ``reset``: the same effect
    without two Python frames each way (the stream switches on every event)."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if type(runtime).__name__ == "ContextVarsRuntimeContext" and isinstance(var, ContextVar):
        return var.set, var.reset
    return otel_context.attach, otel_context.detach


def _make_stream(gov: _AgentChatGovernor, original: Callable[..., AsyncGenerator[Any, None]]) -> Any:
    """The governed ``on_messages_stream``.

    The turn's span is kept out of the consumer's context: an async generator runs each step in
    its consumer's context, and a consumer may close it from another task; a span made current
    across ``yield`` would leak into the consumer and be detached from the wrong context. So the
    span is entered and exited in a private context copy and made current only while the inner
    generator (or a check) runs."""
    me = frozenset((id(gov),))
    attach, detach = _context_switch()
    # The turn is marked (so the agent's own on_messages calls run unchanged) only when the inner
    # stream may call on_messages back: AssistantAgent's never does, and a nested call that is not
    # marked is governed again (never less), so skipping the mark there only saves the per-event
    # context switches.
    mark_turn = not stream_is_self_contained(original)
    kinds = _kind.cache

    @functools.wraps(original)
    async def on_messages_stream(messages: Any, cancellation_token: Any, *args: Any, **kwargs: Any) -> Any:
        enforce = gov.enforce  # False: trace only, nothing is checked (no decision on the span)
        ready = gov.ready()  # nothing to await: checks taken synchronously (the same checks)
        try:
            if not enforce:
                check = None
            elif ready:
                check = gov.check(gov.input_build(messages))  # decided inside the span
            else:
                check = await gov.input_check(messages)  # before the inner call
            ctx = contextvars.copy_context()
            cm = gov.round_span(check)
            governed = ctx.run(cm.__enter__)
        except _GOVERNANCE_ERRORS as exc:
            gov.record_error(exc)
            raise
        # No span (a tracer that never records): nothing to make current; the consumer's stays.
        span = governed.span
        span_context = None if span is trace.INVALID_SPAN else trace.set_span_in_context(span)
        ended = False
        mark = gov.context_mark()
        inner = original(messages, cancellation_token, *args, **kwargs)
        step = inner.__anext__
        exhausted = False
        outer: frozenset[int] | None = None  # the consumer's _IN_TURN, and it with this governor
        in_turn = me
        try:
            while True:
                # the turn's span is current while the inner step runs
                token = None if span_context is None else attach(span_context)
                try:
                    if mark_turn:
                        current = _IN_TURN.get()
                        if current is not outer:
                            outer, in_turn = current, current | me
                        active = _IN_TURN.set(in_turn)
                        try:
                            event = await step()
                        except StopAsyncIteration:
                            exhausted = True
                            break
                        finally:
                            _IN_TURN.reset(active)
                    else:
                        try:
                            event = await step()
                        except StopAsyncIteration:
                            exhausted = True
                            break
                    # The inner generator is suspended here: no tool has run for a request
                    # event, and the reflection call has not been made for an execution event.
                    kind = kinds.get(type(event), _UNSEEN)  # None for most events (chunks, thoughts, ...)
                    if kind is _UNSEEN:
                        kind = _kind(event)
                    if kind is None:
                        pass
                    elif kind == "request":  # a check_tool span per call, traced even when not enforced
                        if ready:
                            gov.check_requested(request_calls(event, parse=enforce))
                        else:
                            await gov.acheck_requested(request_calls(event, parse=enforce))
                    elif kind == "execution" or kind == "memory":  # what reaches the model next
                        if ready:
                            if enforce:
                                build = gov.output_build if kind == "execution" else gov.memory_build
                                governed.check(gov.check(build(event)))
                        else:
                            acheck = gov.output_check if kind == "execution" else gov.memory_check
                            governed.check(await acheck(event))
                    elif kind == "response":
                        # on_messages() stops consuming at the Response and never closes the
                        # stream: the turn ends here, not when the generator is collected.
                        ended = True
                        ctx.run(cm.__exit__, None, None, None)
                        span_context = None  # ended: not made current for the rest of the stream
                finally:
                    if token is not None:
                        detach(token)
                try:
                    yield event
                except GeneratorExit:
                    # The consumer stopped early (before the Response): not an error; the span
                    # still ends. After the Response (on_messages stops there) it already has.
                    if not ended:
                        with contextlib.suppress(Exception):
                            governed.span.set_attribute(names.STREAM_CLOSED_EARLY, True)
                    break
        except _GOVERNANCE_ERRORS as exc:
            await inner.aclose()
            await gov.repair_context(mark)
            gov.record_error(exc)
            if not ended:
                ended = True
                _end(ctx, cm, exc)
            raise
        except BaseException as exc:
            await inner.aclose()
            if not ended:
                ended = True
                _end(ctx, cm, exc)
            raise
        if not exhausted:
            await inner.aclose()  # the consumer stopped early
        if not ended:
            ctx.run(cm.__exit__, None, None, None)

    return on_messages_stream


def _make_on_messages(
    gov: _AgentChatGovernor, original: Callable[..., Any], stream: Callable[..., Any]
) -> Any:
    """``on_messages`` governed whatever the class does in it: called from outside a turn, it runs
    the turn through the governed ``stream``; called back from inside one (``BaseChatAgent``'s
    ``on_messages_stream`` calls ``on_messages``), it is the agent's own logic, run unchanged."""

    @functools.wraps(original)
    async def on_messages(messages: Any, cancellation_token: Any, *args: Any, **kwargs: Any) -> Any:
        if id(gov) in _IN_TURN.get():
            return await original(messages, cancellation_token, *args, **kwargs)
        events = stream(messages, cancellation_token, *args, **kwargs)
        try:
            async for event in events:
                if _kind(event) == "response":
                    return event
        finally:
            await events.aclose()
        raise RuntimeError(f"agent {gov.agent_name!r}: on_messages_stream ended without a Response")

    return on_messages


def instrument_agentchat_agent(
    agent: Any,
    exe: Execlave,
    *,
    agent_id: str,
    enforce: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
) -> Any:
    """Govern and trace an AgentChat agent; returns it. Idempotent for the same client and agent_id;
    another binding raises ``ValueError`` (see ``instrument_autogen_agent``)."""
    agent_id = validate_agent_id(agent_id)
    if not is_agentchat_agent(agent):
        raise TypeError(
            "instrument_agentchat_agent expected an AgentChat agent (a BaseChatAgent from autogen-agentchat "
            f"0.4-0.7, with on_messages_stream); got {type(agent).__name__}"
        )
    require_client(exe, "instrument_autogen_agent")
    if already_bound(agent, exe, agent_id, enforce, "uninstrument_autogen_agent"):
        return agent
    gov = _AgentChatGovernor(agent, exe, agent_id, session_id, user_id)
    if not enforce:
        gov.trace_only()
    stream = _make_stream(gov, agent.on_messages_stream)
    on_messages = _make_on_messages(gov, agent.on_messages, stream)
    patch_instance(
        agent, {"on_messages_stream": stream, "on_messages": on_messages}, (agent_id, exe, enforce)
    )
    return agent


def uninstrument_agentchat_agent(agent: Any) -> Any:
    """Restore ``on_messages_stream`` and ``on_messages``; a no-op on an agent that is not instrumented."""
    return restore_instance(agent, _LAST_BLOCK)


class _GovernedModelClient:
    """An AgentChat ``ChatCompletionClient`` whose ``create`` / ``create_stream`` check the
    messages first; every other attribute is the wrapped client's."""

    def __init__(self, client: Any, gov: AgentGovernor) -> None:
        self._execlave_client = client
        self._execlave_gov = gov

    def __getattr__(self, name: str) -> Any:
        return getattr(self._execlave_client, name)

    def __repr__(self) -> str:
        return f"govern_model_client({self._execlave_client!r})"

    def _span(self, check: Check) -> Any:
        gov = self._execlave_gov
        return gov.exe.model_span(gov.identity, check=check)

    async def _check(self, messages: Any) -> Check:
        gov = self._execlave_gov
        return await gov.acheck(lambda: _model_request(gov, messages))

    async def create(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        check = await self._check(messages)
        with self._span(check):
            return await self._execlave_client.create(messages, *args, **kwargs)

    async def create_stream(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        check = await self._check(messages)
        with self._span(check):
            pass  # checked (and recorded) before the first chunk is requested
        async for chunk in self._execlave_client.create_stream(messages, *args, **kwargs):
            yield chunk


def _model_request(gov: AgentGovernor, messages: Any) -> CheckRequest:
    """Every text of a list of LLM messages a model is about to read as input, their tool
    results as tool outputs."""
    texts: list[str] = []
    outputs: list[ToolOutput] = []
    _llm_messages(messages, texts, outputs)
    return gov.request(input="\n".join(texts) if texts else None, tool_outputs=tuple(outputs))


def govern_model_client(
    client: Any, exe: Execlave, *, agent_id: str, session_id: str | None = None, user_id: str | None = None
) -> Any:
    """Wrap an AgentChat model client so every ``create`` / ``create_stream`` call is checked first
    (input policies on the text of every message, ``scan_output`` on tool results; a ``chat
    {agent_id}`` span each). For model calls no agent makes, e.g. ``SelectorGroupChat``'s selector::

        team = SelectorGroupChat(agents, model_client=govern_model_client(client, exe, agent_id="selector"))

    A block raises ``PolicyBlockedError`` from the call (wrap the team run in
    :func:`raise_policy_blocks` to get it back from a team)."""
    agent_id = validate_agent_id(agent_id)
    require_client(exe, "govern_model_client")
    if not callable(getattr(client, "create", None)):
        raise TypeError(
            "govern_model_client expected an AgentChat model client (a ChatCompletionClient with create "
            f"and create_stream); got {type(client).__name__}"
        )
    return _GovernedModelClient(client, AgentGovernor(client, exe, agent_id, session_id, user_id))


def _participants(team: Any) -> list[Any]:
    found: list[Any] = []
    for member in participants(team):
        found.append(member)
        found.extend(_participants(member))  # nested teams
    return found


def _recorded(sink: list[tuple[int, BaseException]], team: Any, start: int) -> BaseException | None:
    candidates = list(sink)
    if team is not None:
        for member in _participants(team):
            entry = getattr(member, _LAST_BLOCK, None)
            if isinstance(entry, tuple) and len(entry) == 2 and entry[0] > start:
                candidates.append(entry)
    if not candidates:
        return None
    return min(candidates, key=lambda e: e[0])[1]  # the first one stopped the team


@contextlib.contextmanager
def raise_policy_blocks(team: Any = None) -> Iterator[None]:
    """Around a team run (``RoundRobinGroupChat``, ``SelectorGroupChat``, ...): if an instrumented
    agent raised ``PolicyBlockedError`` (or ``AgentPausedError`` / ``EnforcementUnavailableError``)
    during the run, that error is raised here, violations intact:

    * autogen-agentchat 0.6+/0.7 turns the agent's error into a ``RuntimeError`` string: the
      original error is raised instead, chained ``from`` the ``RuntimeError``;
    * autogen-agentchat 0.4.2 logs the agent's error and ends the run without raising: the
      original error is raised when the block exits (0.4.9 re-raises it itself; it passes through).

    Other failures pass through unchanged::

        with raise_policy_blocks(team):
            result = await team.run(task="...")

    Works for ``run_stream`` too (iterate inside the block). Passing ``team`` also finds errors
    raised on a runtime started outside this block (through the team's participants).
    """
    sink: list[tuple[int, BaseException]] = []
    start = next(_SEQ)
    token = _BLOCK_SINK.set(sink)
    try:
        yield
    except _GOVERNANCE_ERRORS:
        raise
    except Exception as exc:
        error = _recorded(sink, team, start)
        if error is None:
            raise
        raise error.with_traceback(None) from exc
    finally:
        _BLOCK_SINK.reset(token)
    error = _recorded(sink, team, start)
    if error is not None:
        raise error.with_traceback(None)

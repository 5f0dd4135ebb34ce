"""AG2 1.x adapter (``import ag2``, ``ag2.Agent``): governance and traces through AG2's own
middleware API, no patching.

Add :class:`ExeclaveMiddleware` to an agent yourself::

    from ag2 import Agent, Middleware
    from execlave.integrations.ag2 import ExeclaveMiddleware

    agent = Agent("ops", config=cfg, tools=[...],
                  middleware=[Middleware(ExeclaveMiddleware, exe=exe, agent_id="ops-assistant")])

or let ``instrument_autogen_agent(agent, exe, agent_id=...)`` append it (same thing). AG2 builds
a fresh middleware instance per turn; the hooks do:

* ``on_turn``: one ``invoke_agent {agent}`` span per turn; the kill switch and rate limits are
  checked (one request per turn) before anything else runs. A turn continues a conversation that
  no span can wrap (``reply.ask`` may come at any later time), so every span of the turn carries
  ``gen_ai.conversation.id`` (the bound ``session_id``, else AG2's stream id) instead of sharing
  a root span;
* ``on_llm_call``: every event the model is about to see that was not checked yet in this turn
  (user input, tool results, compaction summaries; the whole history on the turn's first call)
  is checked before the model is called; after the call, every tool call in the response is
  checked (a ``check_tool`` child span each) before any of them runs;
* ``on_tool_execution``: each execution is checked again and runs in an ``execute_tool {tool}``
  span. AG2 turns an exception raised here into a tool error the model would read, so a block is
  remembered, the tool reports only "blocked by policy", and the ``PolicyBlockedError`` is raised
  from the next ``on_llm_call`` (before the model sees anything) or at the end of the turn.

``ag2`` itself is never imported: agents and events are duck-typed (AG2 1.x only).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import context as otel_context

from .._ids import validate_agent_id
from ..client import Execlave as _Execlave
from ..errors import EnforcementHaltError
from ..policy.types import ToolCall, ToolOutput
from ..telemetry import names
from ..telemetry.conversation import conversation_context
from ._base import MARKER, AgentGovernor, EventKinds, set_error
from ._compat_ag2 import factory_parts, middleware_list
from .autogen._messages import parse_arguments

if TYPE_CHECKING:
    from ..client import Execlave
    from ..telemetry import GovernedSpan

__all__ = ["ExeclaveMiddleware"]

_GOVERNANCE_ERRORS = (EnforcementHaltError,)  # all that stops a round
_AGENT_KEY = "__ag2_agent__"  # where ag2 puts the running Agent in context.dependencies
# The execlave middleware that governs each running turn, by id(context): a second one bound to
# the same client and agent id in the same turn (agent-level and per-call) stays inert, so
# nothing is checked, counted or recorded twice.
_ACTIVE: dict[int, ExeclaveMiddleware] = {}


class ToolCallBlocked(RuntimeError):
    """What the tool reports when execlave stopped its execution. AG2 turns it into a tool error
    event; the ``PolicyBlockedError`` itself (with the violations) is raised from the turn. The
    message names the tool only, never what matched."""


def is_ag2_agent(obj: object) -> bool:
    """Duck-typed: an AG2 1.x ``Agent`` (module ``ag2``) with a middleware list."""
    module = getattr(type(obj), "__module__", "") or ""
    return (
        module.split(".", 1)[0] == "ag2"
        and callable(getattr(obj, "add_middleware", None))
        and middleware_list(obj) is not None
        and callable(getattr(obj, "ask", None))
    )


# -- event shapes ----------------------------------------------------------------------------

_kind = EventKinds(
    {
        "ModelRequest": "request",
        "ToolResultsEvent": "results",
        "ToolResultEvent": "result",
        "CompactionSummary": "summary",
    }
)


def _data_text(data: Any) -> str:
    """Every string, key and number inside a ``DataInput``'s data, one per line. The model gets
    the data as JSON, where escapes (``\\t``, ``\\uXXXX``) would hide text from the patterns;
    the leaves are what the model reads. Iterative, so deep nesting cannot overflow."""
    leaves: list[str] = []
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            leaves.append(item)
        elif isinstance(item, (bool, int, float)) or item is None:
            leaves.append(str(item))
        elif isinstance(item, (bytes, bytearray)):
            continue
        elif isinstance(item, dict):
            for key, value in reversed(list(item.items())):
                stack.append(value)
                stack.append(key)
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(reversed(list(item)))
        else:
            dump = getattr(item, "model_dump", None)
            if callable(dump):
                try:
                    stack.append(dump(mode="json"))
                    continue
                except Exception:
                    pass
            fields = getattr(item, "__dataclass_fields__", None)
            if isinstance(fields, dict):
                stack.append({name: getattr(item, name, None) for name in fields})
            else:
                leaves.append(str(item))
    return "\n".join(leaves)


def _part_text(part: Any) -> str | None:
    """Text of one input part as the model reads it: ``TextInput.content``, the contents of
    ``DataInput.data``, a URL; binary parts have none."""
    content = getattr(part, "content", None)
    if isinstance(content, str):
        return content
    data = getattr(part, "data", None)
    if data is not None and not isinstance(data, (bytes, bytearray)):
        return _data_text(data)
    url = getattr(part, "url", None)
    return url if isinstance(url, str) else None


def _parts_text(parts: Any) -> str | None:
    texts = [t for t in (_part_text(p) for p in parts or ()) if t]
    return "\n".join(texts) if texts else None


def _result_output(result: Any) -> ToolOutput | None:
    text = _parts_text(getattr(getattr(result, "result", None), "parts", None))
    if text is None:
        return None
    name = getattr(result, "name", None)
    call_id = getattr(result, "parent_id", None)
    return ToolOutput(text, None if name is None else str(name), None if call_id is None else str(call_id))


def _tool_call(event: Any) -> ToolCall:
    call_id = getattr(event, "id", None)
    return ToolCall(
        str(getattr(event, "name", "")),
        parse_arguments(getattr(event, "arguments", None)),
        None if call_id is None else str(call_id),
    )


def _response_calls(response: Any) -> list[ToolCall]:
    """Every tool call of a ``ModelResponse`` (``tool_calls`` is a ``ToolCallsEvent``)."""
    container = getattr(response, "tool_calls", None)
    calls = getattr(container, "calls", container)
    if not calls or isinstance(calls, (str, bytes)):
        return []
    try:
        return [_tool_call(call) for call in calls]
    except TypeError:
        return []


# -- the governor ------------------------------------------------------------------------------


class _Named:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _AG2Governor(AgentGovernor):
    def binding(self) -> str:
        return f"agent_id={self.agent_id!r} on {_describe_client(self.exe)}"


@functools.lru_cache(maxsize=256)
def _governor(
    exe: Execlave,
    agent_id: str,
    session_id: str | None,
    user_id: str | None,
    agent_name: str,
    enforce: bool = True,
) -> _AG2Governor:
    gov = _AG2Governor(_Named(agent_name), exe, agent_id, session_id, user_id)
    if not enforce:
        gov.trace_only()
    return gov


def _describe_client(exe: Any) -> str:
    return f"{type(exe).__name__} at 0x{id(exe):x}"


class _Conversation:
    """Makes the turn's conversation current: AG2 can continue a reply at any later time, so no
    span wraps a conversation; its turns share ``gen_ai.conversation.id`` instead (the bound
    ``session_id``, else AG2's stream id). Joins a conversation already current (a sub-agent)."""

    __slots__ = ("_context", "_token")

    def __init__(self, gov: _AG2Governor, context: Any) -> None:
        bound = gov.identity.conversation_id
        stream_id = getattr(getattr(context, "stream", None), "id", None)
        conversation_id = bound if bound is not None else stream_id
        self._context = None if conversation_id is None else conversation_context(str(conversation_id))
        self._token: Any = None

    def __enter__(self) -> None:
        if self._context is not None:
            try:
                self._token = otel_context.attach(self._context)
            except Exception:
                self._token = None

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(Exception):
                otel_context.detach(token)


# -- the middleware ------------------------------------------------------------------------------


class ExeclaveMiddleware:
    """AG2 1.x middleware: ``Middleware(ExeclaveMiddleware, exe=exe, agent_id="ops-assistant")``.

    Options: ``exe`` (the :class:`~execlave.Execlave` client), ``agent_id`` (lowercase
    kebab-case), optional ``session_id`` / ``user_id`` (span attributes and request metadata) and
    ``agent_name`` (span names; default: the agent's ``name``), ``enforce`` (``False``: trace only,
    nothing is checked). Register it last (innermost) so
    ``on_llm_call`` sees exactly what the model gets: ``instrument_autogen_agent`` appends it.
    """

    def __init__(
        self,
        event: Any,
        context: Any,
        *,
        exe: Execlave,
        agent_id: str,
        session_id: str | None = None,
        user_id: str | None = None,
        agent_name: str | None = None,
        enforce: bool = True,
    ) -> None:
        validate_agent_id(agent_id)
        if not isinstance(exe, _Execlave):
            raise TypeError(
                "ExeclaveMiddleware needs exe=<an execlave.Execlave client>, e.g. "
                f"Middleware(ExeclaveMiddleware, exe=Execlave(), agent_id='ops-assistant'); got {exe!r}"
            )
        self.initial_event = event
        self.context = context
        if agent_name is None:
            agent = (getattr(context, "dependencies", None) or {}).get(_AGENT_KEY)
            name = getattr(agent, "name", None)
            agent_name = name if isinstance(name, str) and name else agent_id
        self._gov = _governor(
            exe,
            agent_id,
            None if session_id is None else str(session_id),
            None if user_id is None else str(user_id),
            agent_name,
            bool(enforce),
        )
        self._round: GovernedSpan | None = None
        self._inert = False
        self._blocked: BaseException | None = None
        self._seen: dict[int, Any] = {}  # events already checked this turn (held: ids stay unique)
        self._seen_results: set[str] = set()

    # -- hooks -----------------------------------------------------------------------------------

    async def on_turn(self, call_next: Callable[..., Awaitable[Any]], event: Any, context: Any) -> Any:
        key = id(context)
        active = _ACTIVE.get(key)
        if active is not None and active is not self:
            if active._gov.exe is not self._gov.exe or active._gov.agent_id != self._gov.agent_id:
                raise ValueError(
                    "two execlave middlewares with different bindings govern one AG2 turn: "
                    f"{active._gov.binding()} and {self._gov.binding()}; register one"
                )
            self._inert = True
            return await call_next(event, context)
        _ACTIVE[key] = self
        gov = self._gov
        conversation = _Conversation(gov, context)
        try:
            # Kill switch and rate limit: one request per turn, before anything runs.
            check = await gov.acheck(lambda: gov.request(count_request=True))
            with conversation, gov.round_span(check) as governed:
                self._round = governed
                try:
                    response = await call_next(event, context)
                except ToolCallBlocked:
                    self._raise_pending()
                    raise
                self._raise_pending()  # a tool blocked and no model call followed
                return response
        finally:
            self._round = None
            if _ACTIVE.get(key) is self:
                del _ACTIVE[key]

    async def on_llm_call(
        self, call_next: Callable[..., Awaitable[Any]], events: Sequence[Any], context: Any
    ) -> Any:
        if self._inert:
            return await call_next(events, context)
        self._raise_pending()
        if self._round is None:  # e.g. under a ConditionalMiddleware that skipped on_turn
            gov = self._gov
            check = await gov.acheck(lambda: gov.request(count_request=True))
            with _Conversation(gov, context), gov.round_span(check) as governed:
                return await self._llm_call(governed, call_next, events, context)
        return await self._llm_call(self._round, call_next, events, context)

    async def on_tool_execution(
        self, call_next: Callable[..., Awaitable[Any]], event: Any, context: Any
    ) -> Any:
        if self._inert:
            return await call_next(event, context)
        gov = self._gov
        call = _tool_call(event)
        if self._blocked is not None:  # a sibling call was blocked: nothing else runs
            raise ToolCallBlocked(f"tool call {call.name!r} was not run: the turn was blocked by policy")
        try:
            check = await gov.tool_acheck(call)
            with gov.execute_span(call, check) as governed:
                result = await call_next(event, context)
                _record_result(governed, result)
                return result
        except _GOVERNANCE_ERRORS as exc:
            if self._blocked is None:
                self._blocked = exc
        # Raised outside the except block so the tool error AG2 builds carries no chained context.
        raise ToolCallBlocked(f"tool call {call.name!r} was not run: blocked by policy")

    async def on_human_input(self, call_next: Callable[..., Awaitable[Any]], event: Any, context: Any) -> Any:
        return await call_next(event, context)

    # -- internals -------------------------------------------------------------------------------

    def _raise_pending(self) -> None:
        blocked = self._blocked
        if blocked is not None:
            raise blocked.with_traceback(None)

    async def _llm_call(
        self,
        governed: GovernedSpan,
        call_next: Callable[..., Awaitable[Any]],
        events: Sequence[Any],
        context: Any,
    ) -> Any:
        gov = self._gov
        text, outputs = self._unchecked(events)
        if text is not None or outputs:
            check = await gov.acheck(lambda: gov.request(input=text, tool_outputs=tuple(outputs)))
            governed.check(check)
        response = await call_next(events, context)
        calls = _response_calls(response)
        if calls:  # before any of them runs: the response has not reached the stream yet
            await gov.acheck_requested(calls)
        return response

    def _unchecked(self, events: Iterable[Any]) -> tuple[str | None, list[ToolOutput]]:
        """Input text and tool results among ``events`` not checked yet in this turn."""
        texts: list[str] = []
        outputs: list[ToolOutput] = []
        loose: list[Any] = []
        seen = self._seen
        for event in events:
            if id(event) in seen:
                continue
            seen[id(event)] = event
            kind = _kind(event)
            if kind == "request":
                text = _parts_text(getattr(event, "parts", None))
                if text:
                    texts.append(text)
            elif kind == "summary":
                summary = getattr(event, "summary", None)
                if isinstance(summary, str) and summary:
                    texts.append(summary)
            elif kind == "results":
                for result in getattr(event, "results", None) or ():
                    self._add_result(result, outputs)
            elif kind == "result":
                loose.append(event)
        for result in loose:  # results whose ToolResultsEvent wrapper is not in the history
            self._add_result(result, outputs)
        return ("\n".join(texts) if texts else None), outputs

    def _add_result(self, result: Any, outputs: list[ToolOutput]) -> None:
        parent = getattr(result, "parent_id", None)
        key = str(parent) if parent is not None else f"id:{id(result)}"
        if key in self._seen_results:
            return
        self._seen_results.add(key)
        output = _result_output(result)
        if output is not None:
            outputs.append(output)


def _record_result(governed: GovernedSpan, result: Any) -> None:
    if any(c.__name__ == "ToolErrorEvent" for c in type(result).__mro__):
        set_error(governed, "tool execution failed")
    output = _result_output(result)
    if output is not None:
        governed.record_content(names.GEN_AI_TOOL_CALL_RESULT, output.content)


# -- instrument_autogen_agent for ag2.Agent --------------------------------------------------------


def _execlave_factories(agent: Any) -> list[tuple[Any, dict[str, Any]]]:
    found: list[tuple[Any, dict[str, Any]]] = []
    for factory in middleware_list(agent) or ():
        cls, options = factory_parts(factory)
        if isinstance(cls, type) and issubclass(cls, ExeclaveMiddleware):
            found.append((factory, dict(options) if isinstance(options, dict) else {}))
    return found


def instrument_ag2_agent(
    agent: Any,
    exe: Execlave,
    *,
    agent_id: str,
    enforce: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
) -> Any:
    """Append ``Middleware(ExeclaveMiddleware, ...)`` to an ``ag2.Agent``; returns the agent.

    Idempotent: an agent that already carries an execlave middleware bound to the same client and
    agent id is returned unchanged; one bound to another client or agent id raises ValueError.
    """
    agent_id = validate_agent_id(agent_id)
    if not is_ag2_agent(agent):
        raise TypeError(
            f"instrument_ag2_agent expected an AG2 1.x agent (ag2.Agent); got {type(agent).__name__}"
        )
    for _, options in _execlave_factories(agent):
        bound_exe, bound_id = options.get("exe"), options.get("agent_id")
        bound_enforce = options.get("enforce", True)
        if bound_exe is exe and bound_id == agent_id and bound_enforce == enforce:
            with contextlib.suppress(Exception):
                setattr(agent, MARKER, True)
            return agent
        raise ValueError(
            f"AG2 agent {getattr(agent, 'name', '?')!r} is already governed by execlave as "
            f"agent_id={bound_id!r} (enforce={bound_enforce}) on {_describe_client(bound_exe)}; "
            f"it cannot also be instrumented as agent_id={agent_id!r} (enforce={enforce}) on "
            f"{_describe_client(exe)} "
            "(uninstrument it first)"
        )
    from ag2 import Middleware  # an AG2 agent exists, so ag2 imports

    binding: dict[str, Any] = {"exe": exe, "agent_id": agent_id}
    if session_id is not None:
        binding["session_id"] = session_id
    if user_id is not None:
        binding["user_id"] = user_id
    if not enforce:
        binding["enforce"] = False
    # ag2 types Middleware's class as its BaseMiddleware; this class has the same hooks, duck-typed.
    agent.add_middleware(cast(Any, Middleware)(ExeclaveMiddleware, **binding))
    setattr(agent, MARKER, True)
    return agent


def uninstrument_ag2_agent(agent: Any) -> Any:
    """Remove every execlave middleware from the agent; a no-op on an agent without one."""
    factories = {id(f) for f, _ in _execlave_factories(agent)}
    middleware = middleware_list(agent)
    if factories and middleware is not None:
        middleware[:] = [m for m in middleware if id(m) not in factories]
    with contextlib.suppress(Exception):
        agent.__dict__.pop(MARKER, None)
    return agent

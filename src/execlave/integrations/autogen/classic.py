"""Classic AutoGen adapter: pyautogen 0.2.x and AG2 below 1.0 (``ConversableAgent``).

Patches the instance's ``generate_reply`` / ``a_generate_reply`` (one ``invoke_agent`` span per
reply round, input/tool-output checks before any reply function or model runs, a
``check_tool`` child span per tool call in the reply) and ``execute_function`` /
``a_execute_function`` (an ``execute_tool`` span around each real execution, with the tool
call checked again before it runs). AutoGen is never imported: the agent is duck-typed.
"""

from __future__ import annotations

import functools
import inspect
import json
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..._ids import validate_agent_id
from ...adapter import Check
from ...errors import EnforcementHaltError
from ...policy.types import CheckRequest, ToolCall
from ...telemetry import names
from .._base import (
    MARKER,
    AgentGovernor,
    already_bound,
    patch_instance,
    require_client,
    restore_instance,
    set_error,
)
from . import _compat_classic as compat
from ._messages import extract_tool_calls, received, tool_name

if TYPE_CHECKING:
    from ...client import Execlave
    from ...telemetry import GovernedSpan


_PATCHED = (
    "generate_reply",
    "a_generate_reply",
    "execute_function",
    "a_execute_function",
    "chat_messages_for_summary",
    "process_all_messages_before_reply",
    *compat.PATCHED_PRIVATES,
)
_UNPARSED = object()
_STOPS = (EnforcementHaltError,)  # all that stops a round
# The reply round running in this context: (its governor, its span).
_ROUND: ContextVar[tuple[Any, GovernedSpan] | None] = ContextVar("execlave_classic_round", default=None)


def is_classic_agent(agent: object) -> bool:
    """Duck-typed: a classic ``ConversableAgent`` has ``generate_reply`` and ``_oai_messages``."""
    return callable(getattr(agent, "generate_reply", None)) and compat.has_message_store(agent)


class _ClassicGovernor(AgentGovernor):
    def __init__(
        self, agent: Any, exe: Execlave, agent_id: str, session_id: str | None, user_id: str | None
    ) -> None:
        super().__init__(agent, exe, agent_id, session_id, user_id)
        # The messages this agent sent, by identity (held, so an id is never reused): role cannot
        # tell them apart, since AutoGen stores any received tool-call message as "assistant".
        self.sent: dict[int, Any] = {}
        # A stop raised inside a summary: ag2 0.4+ turns it into a warning and an empty summary.
        self.summary_stop: Exception | None = None
        # The system message as last checked (or as the developer set it at instrument time).
        self.checked_system = self.system_message()
        # Group chat messages already checked for speaker selection (manager agents only).
        self.selection_checked = 0
        self.selection_pending = 0

    def system_message(self) -> str | None:
        try:
            text = self.agent.system_message
        except Exception:
            return None
        return text if isinstance(text, str) else None

    def check_system_message(self) -> None:
        """After AutoGen's own hooks ran (``update_agent_state``: ``UpdateSystemMessage`` renders
        context variables, which tools set, into the system message): a system message that
        changed since it was last checked gets the input checks before the model sees it."""
        if not self.enforce:  # trace only: nothing to check
            return
        try:  # as system_message(), inlined: this runs on every round
            current = self.agent.system_message
        except Exception:
            return
        if not isinstance(current, str) or current == self.checked_system:
            return
        check = self.check(lambda: self.request(input=current))
        current_round = _ROUND.get()
        if current_round is not None and current_round[0] is self:
            current_round[1].check(check)
        else:
            with self.round_span(check):
                pass
        self.checked_system = current

    # -- the agent's own messages --------------------------------------------------------

    def is_own(self, message: Any) -> bool:
        return self.sent.get(id(message)) is message

    def remember_sent(self, signature: inspect.Signature | None, args: Any, kwargs: Any) -> None:
        """After ``_append_oai_message`` stored a message: remember it if the agent was sending.
        Its parameters differ by version: ``(message, role, conversation_id, is_sending)``
        (pyautogen 0.2, ag2 < 0.4) or ``(message, conversation_id, role="assistant", name=None)``
        (receiving passes role "user"). Anything unexpected: not remembered (scanned as input)."""
        if signature is None:
            return
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            if "is_sending" in arguments:
                sending = arguments["is_sending"] is True
            else:
                sending = arguments.get("role") == "assistant"
            if not sending:
                return
            stored = compat.stored_messages(self.agent, arguments["conversation_id"])[-1]
            self.sent[id(stored)] = stored
        except Exception:
            return

    # -- requests ------------------------------------------------------------------------

    def _resolve(self, messages: Any, sender: Any) -> Any:
        if messages is not None:
            return messages
        if sender is None:
            return []
        try:
            return compat.stored_messages(self.agent, sender)
        except Exception:
            return []

    def round_request(self, messages: Any, sender: Any) -> CheckRequest:
        if messages is None:
            messages = self._resolve(messages, sender)
        last = messages[-1] if isinstance(messages, list) and messages else None
        text, outputs = received(messages, own=self.sent)
        if last is None or (
            type(last) is dict and last.get("tool_calls") is None and last.get("function_call") is None
        ):
            calls: tuple[ToolCall, ...] = ()  # what extract_tool_calls finds there, without the call
        else:
            calls = tuple(extract_tool_calls(last))
        identity = self.identity
        # = self.request(...), built directly: this runs on every round
        return CheckRequest(
            identity.agent_id, text, calls, tuple(outputs), self.exe.environment, identity.metadata, True
        )

    def summary_request(self, messages: Any, prompt: Any = None) -> CheckRequest:
        """``summary_method="reflection_with_llm"`` sends a chat (and a summary prompt) to a model
        outside any reply round: what the agent has not itself sent or already checked is
        checked here, as a round's input and tool results would be."""
        text, outputs = received(messages, own=self.sent)
        parts = [part for part in (text, prompt if isinstance(prompt, str) else None) if part]
        return self.request(
            input="\n".join(parts) if parts else None, tool_outputs=tuple(outputs), count_request=True
        )

    def selection_request(self, groupchat: Any) -> CheckRequest:
        """What a group chat's "auto" speaker selection is about to send to the selector model:
        the chat's messages this governor has not checked for a selection yet."""
        messages = getattr(groupchat, "messages", None)
        if not isinstance(messages, list):
            return self.request()
        if self.selection_checked > len(messages):  # the chat was reset
            self.selection_checked = 0
        text, outputs = received(messages, start=self.selection_checked)
        self.selection_pending = len(messages)
        return self.request(input=text, tool_outputs=tuple(outputs), count_request=True)

    def selection_span(self, check: Check) -> Any:
        return self.round_span(check, kind="speaker_selection")

    def round_check(self, messages: Any, sender: Any) -> Check | None:
        if not self.enforce:  # trace only: the round's span runs no check
            return None
        decide = self.exe.decide  # = exe.prepare_check(build), one frame less per round
        return lambda: decide(self.round_request(messages, sender))

    async def round_acheck(self, messages: Any, sender: Any) -> Check | None:
        if not self.enforce:
            return None
        return await self.acheck(lambda: self.round_request(messages, sender))

    # -- reply tool calls ----------------------------------------------------------------

    def reply_calls(self, reply: Any) -> list[ToolCall]:
        """The calls a reply requests; a trace-only agent's spans need their names and ids only."""
        if reply is None or isinstance(reply, str):
            return []
        return extract_tool_calls(reply, parse=self.enforce)

    # -- execution -----------------------------------------------------------------------

    def received_arguments(self, func_call: Any) -> Any:
        """The arguments exactly as AutoGen will pass them to the tool: its own repair
        (``_format_json_str``, which can join or drop text) then ``json.loads``. ``_UNPARSED``
        when that fails (AutoGen then runs nothing and reports the error)."""
        try:
            raw = func_call.get("arguments", "{}")
            return json.loads(compat.repair_arguments(self.agent, raw))
        except Exception:
            return _UNPARSED

    def executed_calls(
        self, func_call: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[ToolCall, ...]:
        """Every name the call carries (all are checked); the first is the one AutoGen runs,
        checked with the arguments the tool will really receive."""
        call_id = kwargs.get("call_id")
        if call_id is None and args and isinstance(args[0], str):
            call_id = args[0]  # ag2: execute_function(func_call, call_id=None, verbose=False)
        found = extract_tool_calls({"function_call": func_call}) or [ToolCall(name=tool_name(func_call))]
        if isinstance(func_call, dict) and func_call.get("name") is not None:
            arguments = self.received_arguments(func_call)
            if arguments is not _UNPARSED:
                found[0] = ToolCall(found[0].name, arguments, found[0].call_id)
        if call_id is None:
            return tuple(found)
        return tuple(ToolCall(c.name, c.arguments, str(call_id)) for c in found)

    @staticmethod
    def record_result(governed: GovernedSpan, result: Any) -> None:
        success: Any = None
        content: Any = result
        if isinstance(result, tuple) and len(result) == 2:
            success, payload = result
            content = payload.get("content") if isinstance(payload, dict) else payload
        if success is False:
            set_error(governed, "tool execution failed")
        if content is not None and governed is not None:
            governed.record_content(
                names.GEN_AI_TOOL_CALL_RESULT, content if isinstance(content, str) else repr(content)
            )


def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _prompt_and_messages(signature: inspect.Signature | None, args: Any, kwargs: Any) -> tuple[Any, Any]:
    """``_reflection_with_llm(prompt, messages, llm_agent=None, cache=None, role=None)``."""
    try:
        if signature is not None:
            bound = signature.bind(*args, **kwargs).arguments
            return bound.get("prompt"), bound.get("messages")
    except TypeError:
        pass
    return (args[0] if args else None), (args[1] if len(args) > 1 else kwargs.get("messages"))


def _make_wrappers(gov: _ClassicGovernor, originals: dict[str, Any]) -> dict[str, Any]:
    wrappers: dict[str, Any] = {}

    generate = originals.get("generate_reply")
    if generate is not None:

        @functools.wraps(generate)
        def generate_reply(messages: Any = None, sender: Any = None, *args: Any, **kwargs: Any) -> Any:
            # gov.round_span(...), one frame less per round
            with gov.exe.round_span(gov.identity, check=gov.round_check(messages, sender)) as governed:
                token = _ROUND.set((gov, governed))
                try:
                    reply = generate(messages, sender, *args, **kwargs)
                finally:
                    _ROUND.reset(token)
                if reply is not None and not isinstance(reply, str):  # a text reply requests no call
                    calls = extract_tool_calls(reply, parse=gov.enforce)  # = gov.reply_calls(reply)
                    if calls:
                        gov.check_requested(calls)
                return reply

        wrappers["generate_reply"] = generate_reply

    a_generate = originals.get("a_generate_reply")
    if a_generate is not None:

        @functools.wraps(a_generate)
        async def a_generate_reply(
            messages: Any = None, sender: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            # Decisions are awaited (a server-side decision uses httpx.AsyncClient) and replayed
            # inside the span, so the event loop is never blocked on the network.
            check = await gov.round_acheck(messages, sender)
            with gov.round_span(check) as governed:
                token = _ROUND.set((gov, governed))
                try:
                    reply = await a_generate(messages, sender, *args, **kwargs)
                finally:
                    _ROUND.reset(token)
                calls = gov.reply_calls(reply)
                if calls:
                    await gov.acheck_requested(calls)
                return reply

        wrappers["a_generate_reply"] = a_generate_reply

    execute = originals.get("execute_function")
    if execute is not None:

        @functools.wraps(execute)
        def execute_function(func_call: Any, *args: Any, **kwargs: Any) -> Any:
            calls = gov.executed_calls(func_call, args, kwargs)
            with gov.execute_span(calls[0], gov.tool_check(*calls)) as governed:
                result = execute(func_call, *args, **kwargs)
                gov.record_result(governed, result)
                return result

        wrappers["execute_function"] = execute_function

    a_execute = originals.get("a_execute_function")
    if a_execute is not None:

        @functools.wraps(a_execute)
        async def a_execute_function(func_call: Any, *args: Any, **kwargs: Any) -> Any:
            calls = gov.executed_calls(func_call, args, kwargs)
            with gov.execute_span(calls[0], await gov.tool_acheck(*calls)) as governed:
                result = await a_execute(func_call, *args, **kwargs)
                gov.record_result(governed, result)
                return result

        wrappers["a_execute_function"] = a_execute_function

    reflect = originals.get("_reflection_with_llm")
    if reflect is not None:
        reflect_signature = _signature(reflect)

        @functools.wraps(reflect)
        def _reflection_with_llm(*args: Any, **kwargs: Any) -> Any:
            prompt, messages = _prompt_and_messages(reflect_signature, args, kwargs)
            check = gov.check(lambda: gov.summary_request(messages, prompt))
            try:
                with gov.round_span(check, kind="summary"):
                    return reflect(*args, **kwargs)
            except _STOPS as exc:
                gov.summary_stop = exc
                raise

        wrappers["_reflection_with_llm"] = _reflection_with_llm

    summarize = originals.get("_summarize_chat")
    if summarize is not None:

        @functools.wraps(summarize)
        def _summarize_chat(*args: Any, **kwargs: Any) -> Any:
            gov.summary_stop = None
            summary = summarize(*args, **kwargs)
            stop, gov.summary_stop = gov.summary_stop, None
            if stop is not None:  # AutoGen swallowed it into an empty summary: the chat stops
                raise stop.with_traceback(None)
            return summary

        wrappers["_summarize_chat"] = _summarize_chat

    for_summary = originals.get("chat_messages_for_summary")
    if for_summary is not None:

        @functools.wraps(for_summary)
        def chat_messages_for_summary(*args: Any, **kwargs: Any) -> Any:
            messages = for_summary(*args, **kwargs)
            check = gov.check(lambda: gov.summary_request(messages))
            with gov.round_span(check, kind="summary"):
                return messages

        wrappers["chat_messages_for_summary"] = chat_messages_for_summary

    process_all = originals.get("process_all_messages_before_reply")
    if process_all is not None and gov.enforce:  # only checks: a trace-only agent needs no wrapper

        @functools.wraps(process_all)
        def process_all_messages_before_reply(*args: Any, **kwargs: Any) -> Any:
            # generate_reply calls this after the update_agent_state and last-message hooks,
            # right before the reply functions (and the model) run.
            processed = process_all(*args, **kwargs)
            gov.check_system_message()
            return processed

        wrappers["process_all_messages_before_reply"] = process_all_messages_before_reply

    append = originals.get("_append_oai_message")
    if append is not None:
        signature = _signature(append)

        @functools.wraps(append)
        def _append_oai_message(*args: Any, **kwargs: Any) -> Any:
            stored = append(*args, **kwargs)
            if stored:
                gov.remember_sent(signature, args, kwargs)
            return stored

        wrappers["_append_oai_message"] = _append_oai_message

    return wrappers


def _selection_wrappers(gov: _ClassicGovernor, groupchat: Any) -> dict[str, Any]:
    """For a ``GroupChatManager``: its group chat's ``select_speaker`` / ``a_select_speaker``
    check what the selector model ("auto" selection) will read before it runs."""
    wrappers: dict[str, Any] = {}
    select = getattr(groupchat, "select_speaker", None)
    if callable(select):

        @functools.wraps(select)
        def select_speaker(*args: Any, **kwargs: Any) -> Any:
            check = gov.check(lambda: gov.selection_request(groupchat))
            with gov.selection_span(check):
                gov.selection_checked = gov.selection_pending
                return select(*args, **kwargs)

        wrappers["select_speaker"] = select_speaker
    a_select = getattr(groupchat, "a_select_speaker", None)
    if callable(a_select):

        @functools.wraps(a_select)
        async def a_select_speaker(*args: Any, **kwargs: Any) -> Any:
            check = await gov.acheck(lambda: gov.selection_request(groupchat))
            with gov.selection_span(check):
                gov.selection_checked = gov.selection_pending
                return await a_select(*args, **kwargs)

        wrappers["a_select_speaker"] = a_select_speaker
    return wrappers


def instrument_classic_agent(
    agent: Any,
    exe: Execlave,
    *,
    agent_id: str,
    enforce: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
) -> Any:
    agent_id = validate_agent_id(agent_id)
    require_client(exe, "instrument_autogen_agent")
    if already_bound(agent, exe, agent_id, enforce, "uninstrument_autogen_agent"):
        return agent
    gov = _ClassicGovernor(agent, exe, agent_id, session_id, user_id)
    if not enforce:
        gov.trace_only()
    originals = {name: getattr(agent, name, None) for name in _PATCHED}
    wrappers = _make_wrappers(gov, {k: v for k, v in originals.items() if callable(v)})
    patch_instance(agent, wrappers, (agent_id, exe, enforce))
    for groupchat in _groupchats(agent):
        if not getattr(groupchat, MARKER, False):
            selection = _selection_wrappers(gov, groupchat)
            if selection:
                patch_instance(groupchat, selection)
    return agent


def _groupchats(agent: Any) -> list[Any]:
    """A manager's group chat and the copies of it AutoGen keeps as its reply functions'
    ``config`` (``register_reply`` stores ``copy.copy(config)``; the copies share the messages)."""
    found: dict[int, Any] = {}
    candidates = [getattr(agent, "groupchat", None), *compat.reply_func_configs(agent)]
    for candidate in candidates:
        if candidate is not None and callable(getattr(candidate, "select_speaker", None)):
            found.setdefault(id(candidate), candidate)
    return list(found.values())


def uninstrument_classic_agent(agent: Any) -> Any:
    for groupchat in _groupchats(agent):
        restore_instance(groupchat)
    return restore_instance(agent)

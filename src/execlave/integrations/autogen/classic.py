"""Classic AutoGen adapter: pyautogen 0.2.x and AG2 below 1.0 (``ConversableAgent``).

Patches the instance's ``generate_reply`` / ``a_generate_reply`` (one ``invoke_agent`` span per
reply round, input/tool-output checks before any reply function or model runs, a
``check_tool`` child span per tool call in the reply) and ``execute_function`` /
``a_execute_function`` (an ``execute_tool`` span around each real execution, with the tool
call checked again before it runs). AutoGen is never imported: the agent is duck-typed.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from ..._ids import validate_agent_id
from ...policy.types import CheckRequest, ToolCall
from ._common import MARKER, AgentGovernor, Check, patch_instance, restore_instance, set_error
from ._messages import extract_tool_calls, last_user_input, recent_tool_outputs, tool_name

if TYPE_CHECKING:
    from ...client import Execlave
    from ...telemetry import GovernedSpan

__all__ = ["instrument_classic_agent", "is_classic_agent", "uninstrument_classic_agent"]

_PATCHED = ("generate_reply", "a_generate_reply", "execute_function", "a_execute_function")


def is_classic_agent(agent: object) -> bool:
    """Duck-typed: a classic ``ConversableAgent`` has ``generate_reply`` and ``_oai_messages``."""
    return callable(getattr(agent, "generate_reply", None)) and hasattr(agent, "_oai_messages")


class _ClassicGovernor(AgentGovernor):
    # -- requests ------------------------------------------------------------------------

    def _resolve(self, messages: Any, sender: Any) -> Any:
        if messages is not None:
            return messages
        if sender is None:
            return []
        try:
            return self.agent._oai_messages[sender]
        except Exception:
            return []

    def round_request(self, messages: Any, sender: Any) -> CheckRequest:
        messages = self._resolve(messages, sender)
        last = messages[-1] if isinstance(messages, list) and messages else None
        return self.request(
            input=last_user_input(messages),
            tool_calls=tuple(extract_tool_calls(last)),
            tool_outputs=tuple(recent_tool_outputs(messages)),
            count_request=True,
        )

    def round_check(self, messages: Any, sender: Any) -> Check:
        return self.check_for(lambda: self.round_request(messages, sender))

    async def round_acheck(self, messages: Any, sender: Any) -> Check:
        return await self.acheck_for(lambda: self.round_request(messages, sender))

    # -- reply tool calls ----------------------------------------------------------------

    @staticmethod
    def reply_calls(reply: Any) -> list[ToolCall]:
        return [] if reply is None or isinstance(reply, str) else extract_tool_calls(reply)

    # -- execution -----------------------------------------------------------------------

    @staticmethod
    def executed_calls(func_call: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ToolCall, ...]:
        """Every name the call carries (all are checked); the first is the one AutoGen runs."""
        call_id = kwargs.get("call_id")
        if call_id is None and args and isinstance(args[0], str):
            call_id = args[0]  # ag2: execute_function(func_call, call_id=None, verbose=False)
        found = extract_tool_calls({"function_call": func_call}) or [ToolCall(name=tool_name(func_call))]
        if call_id is None:
            return tuple(found)
        return tuple(ToolCall(c.name, c.arguments, str(call_id)) for c in found)

    def execute_span(self, call: ToolCall, check: Check) -> Any:
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            **self.base_attributes,
        }
        if call.call_id is not None:
            attributes["gen_ai.tool.call.id"] = call.call_id
        return self.exe._telemetry.governed_span(
            f"execute_tool {call.name}", attributes=attributes, check=check
        )

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
                "gen_ai.tool.call.result", content if isinstance(content, str) else repr(content)
            )


def _make_wrappers(gov: _ClassicGovernor, originals: dict[str, Any]) -> dict[str, Any]:
    telemetry = gov.exe._telemetry
    wrappers: dict[str, Any] = {}

    generate = originals.get("generate_reply")
    if generate is not None:

        @functools.wraps(generate)
        def generate_reply(messages: Any = None, sender: Any = None, *args: Any, **kwargs: Any) -> Any:
            with telemetry.governed_span(
                gov.span_name, attributes=gov.round_attributes, check=gov.round_check(messages, sender)
            ):
                reply = generate(messages, sender, *args, **kwargs)
                gov.check_requested(gov.sync_checks(gov.reply_calls(reply)))
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
            with telemetry.governed_span(gov.span_name, attributes=gov.round_attributes, check=check):
                reply = await a_generate(messages, sender, *args, **kwargs)
                gov.check_requested(await gov.async_checks(gov.reply_calls(reply)))
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

    return wrappers


def instrument_classic_agent(
    agent: Any, exe: Execlave, *, agent_id: str, session_id: str | None = None, user_id: str | None = None
) -> Any:
    agent_id = validate_agent_id(agent_id)
    if getattr(agent, MARKER, False):
        return agent
    gov = _ClassicGovernor(agent, exe, agent_id, session_id, user_id)
    originals = {name: getattr(agent, name, None) for name in _PATCHED}
    patch_instance(agent, _make_wrappers(gov, {k: v for k, v in originals.items() if callable(v)}))
    return agent


def uninstrument_classic_agent(agent: Any) -> Any:
    return restore_instance(agent)

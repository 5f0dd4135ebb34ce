"""Classic AutoGen adapter: pyautogen 0.2.x and AG2 below 1.0 (``ConversableAgent``).

Patches the instance's ``generate_reply`` / ``a_generate_reply`` (one ``invoke_agent`` span per
reply round, input/tool-output checks before any reply function or model runs, a
``check_tool`` child span per tool call in the reply) and ``execute_function`` /
``a_execute_function`` (an ``execute_tool`` span around each real execution, with the tool
call checked again before it runs). AutoGen is never imported: the agent is duck-typed.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ...client import validate_agent_id
from ...errors import PolicyBlockedError
from ...policy.types import CheckRequest, Decision, ToolCall, Violation
from ._messages import extract_tool_calls, last_user_input, recent_tool_outputs, tool_name

if TYPE_CHECKING:
    from ...client import Execlave
    from ...telemetry import GovernedSpan

__all__ = ["instrument_classic_agent", "is_classic_agent", "uninstrument_classic_agent"]

MARKER = "_execlave_instrumented"
_ORIGINALS = "_execlave_originals"
_PATCHED = ("generate_reply", "a_generate_reply", "execute_function", "a_execute_function")
_ABSENT = object()


def is_classic_agent(agent: object) -> bool:
    """Duck-typed: a classic ``ConversableAgent`` has ``generate_reply`` and ``_oai_messages``."""
    return callable(getattr(agent, "generate_reply", None)) and hasattr(agent, "_oai_messages")


class _ClassicGovernor:
    """Everything one instrumented agent needs; built once at instrument time."""

    def __init__(
        self, agent: Any, exe: Execlave, agent_id: str, session_id: str | None, user_id: str | None
    ) -> None:
        self.agent = agent
        self.exe = exe
        self.agent_id = agent_id
        self.environment = exe.environment
        name = getattr(agent, "name", None)
        self.agent_name = name if isinstance(name, str) and name else agent_id
        self.span_name = f"invoke_agent {self.agent_name}"
        base: dict[str, AttributeValue] = {
            "gen_ai.agent.name": self.agent_name,
            "gen_ai.agent.id": agent_id,
        }
        metadata: dict[str, str] = {}
        if session_id is not None:
            base["gen_ai.conversation.id"] = str(session_id)
            metadata["session_id"] = str(session_id)
        if user_id is not None:
            base["user.id"] = str(user_id)
            metadata["user_id"] = str(user_id)
        self.base_attributes = base
        self.metadata = metadata or None
        self.round_attributes: dict[str, AttributeValue] = {"gen_ai.operation.name": "invoke_agent", **base}

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

    def round_request(self, messages: Any) -> CheckRequest:
        last = messages[-1] if isinstance(messages, list) and messages else None
        return CheckRequest(
            agent_id=self.agent_id,
            input=last_user_input(messages),
            tool_calls=tuple(extract_tool_calls(last)),
            tool_outputs=tuple(recent_tool_outputs(messages)),
            environment=self.environment,
            metadata=self.metadata,
            count_request=True,
        )

    def tool_request(self, call: ToolCall) -> CheckRequest:
        return CheckRequest(
            agent_id=self.agent_id, tool_calls=(call,), environment=self.environment, metadata=self.metadata
        )

    def round_check(self, messages: Any, sender: Any) -> Callable[[], Decision]:
        # Extraction runs inside the check, so a bug in it fails closed (EnforcementUnavailableError).
        return lambda: self.exe._check(self.round_request(self._resolve(messages, sender)))

    # -- reply tool calls ----------------------------------------------------------------

    def check_reply(self, reply: Any) -> None:
        """A ``check_tool`` child span per tool call in the reply; raise once with every block."""
        if reply is None or isinstance(reply, str):
            return
        telemetry = self.exe._telemetry
        blocking: list[Violation] = []
        for call in extract_tool_calls(reply):
            attributes: dict[str, AttributeValue] = {
                "gen_ai.operation.name": "check_tool",
                "execlave.tool.phase": "requested",
                "gen_ai.tool.name": call.name,
                **self.base_attributes,
            }
            if call.call_id is not None:
                attributes["gen_ai.tool.call.id"] = call.call_id
            with telemetry.governed_span(
                f"check_tool {call.name}",
                attributes=attributes,
                check=functools.partial(self.exe._check, self.tool_request(call)),
                raise_on_block=False,
            ) as governed:
                if governed.decision.blocked:
                    blocking.extend(governed.decision.blocking_violations)
                    _set_error(governed, f"tool call {call.name!r} blocked by policy")
        if blocking:
            raise PolicyBlockedError(blocking)

    # -- execution -----------------------------------------------------------------------

    def execute_span(self, func_call: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = tool_name(func_call)
        call_id = kwargs.get("call_id")
        if call_id is None and args and isinstance(args[0], str):
            call_id = args[0]  # ag2: execute_function(func_call, call_id=None, verbose=False)
        call = extract_tool_calls({"function_call": func_call})
        tool = call[0] if call else ToolCall(name=name)
        if call_id is not None:
            tool = ToolCall(tool.name, tool.arguments, str(call_id))
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            **self.base_attributes,
        }
        if call_id is not None:
            attributes["gen_ai.tool.call.id"] = str(call_id)
        return self.exe._telemetry.governed_span(
            f"execute_tool {name}",
            attributes=attributes,
            check=functools.partial(self.exe._check, self.tool_request(tool)),
        )

    @staticmethod
    def record_result(governed: GovernedSpan, result: Any) -> None:
        success: Any = None
        content: Any = result
        if isinstance(result, tuple) and len(result) == 2:
            success, payload = result
            content = payload.get("content") if isinstance(payload, dict) else payload
        if success is False:
            _set_error(governed, "tool execution failed")
        if content is not None and governed is not None:
            governed.record_content(
                "gen_ai.tool.call.result", content if isinstance(content, str) else repr(content)
            )


def _set_error(governed: GovernedSpan, description: str) -> None:
    with contextlib.suppress(Exception):  # telemetry faults never break the agent
        governed.span.set_status(Status(StatusCode.ERROR, description))


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
                gov.check_reply(reply)
                return reply

        wrappers["generate_reply"] = generate_reply

    a_generate = originals.get("a_generate_reply")
    if a_generate is not None:

        @functools.wraps(a_generate)
        async def a_generate_reply(
            messages: Any = None, sender: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            with telemetry.governed_span(
                gov.span_name, attributes=gov.round_attributes, check=gov.round_check(messages, sender)
            ):
                reply = await a_generate(messages, sender, *args, **kwargs)
                gov.check_reply(reply)
                return reply

        wrappers["a_generate_reply"] = a_generate_reply

    execute = originals.get("execute_function")
    if execute is not None:

        @functools.wraps(execute)
        def execute_function(func_call: Any, *args: Any, **kwargs: Any) -> Any:
            with gov.execute_span(func_call, args, kwargs) as governed:
                result = execute(func_call, *args, **kwargs)
                gov.record_result(governed, result)
                return result

        wrappers["execute_function"] = execute_function

    a_execute = originals.get("a_execute_function")
    if a_execute is not None:

        @functools.wraps(a_execute)
        async def a_execute_function(func_call: Any, *args: Any, **kwargs: Any) -> Any:
            with gov.execute_span(func_call, args, kwargs) as governed:
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
    instance_dict = getattr(agent, "__dict__", {})
    saved = {name: instance_dict.get(name, _ABSENT) for name in _PATCHED}
    originals = {name: getattr(agent, name, None) for name in _PATCHED}
    wrappers = _make_wrappers(gov, {k: v for k, v in originals.items() if callable(v)})
    for name, wrapper in wrappers.items():
        setattr(agent, name, wrapper)
    setattr(agent, _ORIGINALS, saved)
    setattr(agent, MARKER, True)
    return agent


def uninstrument_classic_agent(agent: Any) -> Any:
    saved = getattr(agent, _ORIGINALS, None)
    if not getattr(agent, MARKER, False) or not isinstance(saved, dict):
        return agent
    for name, previous in saved.items():
        if previous is _ABSENT:
            agent.__dict__.pop(name, None)
        else:
            setattr(agent, name, previous)
    for attr in (_ORIGINALS, MARKER):
        agent.__dict__.pop(attr, None)
    return agent

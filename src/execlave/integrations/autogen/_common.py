"""What the classic and AgentChat adapters share: the per-agent governor base (span attributes,
check requests, the ``check_tool`` span per requested call), instance patching, and settling an
async decision so async paths never make a blocking call on the event loop."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from ...client import Execlave as _Execlave
from ...errors import PolicyBlockedError
from ...policy.types import ALLOW, CheckRequest, Decision, ToolCall, Violation

if TYPE_CHECKING:
    from ...client import Execlave
    from ...telemetry import GovernedSpan

MARKER = "_execlave_instrumented"
_ORIGINALS = "_execlave_originals"
_BINDING = "_execlave_binding"
_ABSENT = object()

Check = Callable[[], Decision]


def _not_enforced() -> Decision:
    """The check of a trace-only agent (``enforce=False``): nothing is evaluated or sent."""
    return ALLOW


async def settle(decide: Callable[[], Awaitable[Decision]]) -> Check:
    """Await a decision now; return a check that replays it (or re-raises its failure) inside the
    governed span, where the usual pass-through / fail-closed rules apply."""
    try:
        decision = await decide()
    except Exception as exc:
        failure = exc

        def replay_failure() -> Decision:
            raise failure

        return replay_failure
    return lambda: decision


def set_error(governed: GovernedSpan, description: str) -> None:
    with contextlib.suppress(Exception):  # telemetry faults never break the agent
        governed.set_error(description)  # masked, escaped and bounded


class AgentGovernor:
    """Everything one instrumented agent needs; built once at instrument time."""

    enforce = True
    """``False`` (``instrument_autogen_agent(..., enforce=False)``): trace only. Every check is an
    allow without evaluation (no policies, no kill switch, no request to Execlave); spans carry
    ``execlave.enforcement.enabled=false``."""

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
        base: dict[str, AttributeValue] = {"gen_ai.agent.name": self.agent_name, "gen_ai.agent.id": agent_id}
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

    def trace_only(self) -> None:
        """Turn this governor into a trace-only one (see :attr:`enforce`)."""
        self.enforce = False
        self.base_attributes = {**self.base_attributes, "execlave.enforcement.enabled": False}
        self.round_attributes = {**self.round_attributes, "execlave.enforcement.enabled": False}

    def request(self, **fields: Any) -> CheckRequest:
        return CheckRequest(
            agent_id=self.agent_id, environment=self.environment, metadata=self.metadata, **fields
        )

    def check_for(self, build: Callable[[], CheckRequest]) -> Check:
        """A check of the request ``build`` makes; building runs inside the check, so a bug in
        extraction fails closed like any other error in execlave's path."""
        if not self.enforce:
            return _not_enforced
        return lambda: self.exe._check(build())

    async def acheck_for(self, build: Callable[[], CheckRequest]) -> Check:
        """:meth:`check_for` for async paths: when the decision may wait on Execlave's API it is
        awaited now (httpx.AsyncClient) and replayed in the span; in-process decisions need no await."""
        if not self.enforce or not self.exe._decides_remotely:
            return self.check_for(build)
        return await settle(lambda: self.exe._acheck(build()))

    def tool_check(self, *calls: ToolCall) -> Check:
        if not self.enforce:
            return _not_enforced
        return functools.partial(self.exe._check, self.request(tool_calls=calls))

    async def tool_acheck(self, *calls: ToolCall) -> Check:
        if not self.enforce or not self.exe._decides_remotely:
            return self.tool_check(*calls)
        return await settle(functools.partial(self.exe._acheck, self.request(tool_calls=calls)))

    def is_handoff(self, call: ToolCall) -> bool:
        return False

    def check_requested(self, checks: Iterable[tuple[ToolCall, Check]]) -> None:
        """A ``check_tool`` child span per requested call; every call is checked, then one raise
        with every blocking violation."""
        telemetry = self.exe._telemetry
        blocking: list[Violation] = []
        for call, check in checks:
            attributes: dict[str, AttributeValue] = {
                "gen_ai.operation.name": "check_tool",
                "execlave.tool.phase": "requested",
                "gen_ai.tool.name": call.name,
                **self.base_attributes,
            }
            if call.call_id is not None:
                attributes["gen_ai.tool.call.id"] = call.call_id
            if self.is_handoff(call):
                attributes["execlave.tool.handoff"] = True
            with telemetry.governed_span(
                f"check_tool {call.name}",
                attributes=attributes,
                check=check,
                raise_on_block=False,
                per_call=True,  # past the round's span budget, allowed calls are counted, not spanned
            ) as governed:
                if governed.decision.blocked:
                    blocking.extend(governed.decision.blocking_violations)
                    set_error(governed, f"tool call {call.name!r} blocked by policy")
        if blocking:
            raise PolicyBlockedError(blocking)

    def sync_checks(self, calls: Iterable[ToolCall]) -> list[tuple[ToolCall, Check]]:
        return [(call, self.tool_check(call)) for call in calls]

    async def async_checks(self, calls: Iterable[ToolCall]) -> list[tuple[ToolCall, Check]]:
        return [(call, await self.tool_acheck(call)) for call in calls]


def require_client(exe: object, caller: str) -> None:
    """A clear TypeError when the second argument is not the Execlave client."""
    if not isinstance(exe, _Execlave):
        raise TypeError(
            f"{caller}(agent, exe, agent_id=...) needs the Execlave client as its second argument: "
            f"exe = Execlave(...) (with api_key=... and/or policies=...), created once per process; "
            f"got {type(exe).__name__}"
        )


def already_bound(agent: Any, exe: object, agent_id: str, enforce: bool = True) -> bool:
    """True when ``agent`` is already instrumented with this client, agent_id and ``enforce``
    (instrumenting again is a no-op); ``ValueError`` naming both bindings when it is bound
    differently (so ``enforce=True`` after ``enforce=False`` is never silently ignored)."""
    if not getattr(agent, MARKER, False):
        return False
    bound = getattr(agent, _BINDING, None)
    if not (isinstance(bound, tuple) and len(bound) == 3):
        return True
    bound_id, bound_exe, bound_enforce = bound
    if bound_id == agent_id and bound_exe is exe and bound_enforce == enforce:
        return True
    client = "the same Execlave client" if bound_exe is exe else "another Execlave client"
    name = getattr(agent, "name", type(agent).__name__)
    raise ValueError(
        f"agent {name!r} is already instrumented as agent_id {bound_id!r} (enforce={bound_enforce}) with an "
        f"Execlave client; it cannot also be instrumented as agent_id {agent_id!r} (enforce={enforce}) with "
        f"{client}. Call uninstrument_autogen_agent(agent) first to rebind it, or use one binding per agent."
    )


def patch_instance(
    agent: Any, wrappers: dict[str, Any], binding: tuple[str, object, bool] | None = None
) -> None:
    """Set ``wrappers`` as instance attributes, remembering what the instance itself held (and the
    ``(agent_id, client, enforce)`` binding)."""
    instance_dict = getattr(agent, "__dict__", {})
    saved = {name: instance_dict.get(name, _ABSENT) for name in wrappers}
    for name, wrapper in wrappers.items():
        setattr(agent, name, wrapper)
    setattr(agent, _ORIGINALS, saved)
    if binding is not None:
        setattr(agent, _BINDING, binding)
    setattr(agent, MARKER, True)


def restore_instance(agent: Any, *extra: str) -> Any:
    """Undo :func:`patch_instance` (and drop ``extra`` instance attributes); a no-op otherwise."""
    saved = getattr(agent, _ORIGINALS, None)
    if not getattr(agent, MARKER, False) or not isinstance(saved, dict):
        return agent
    for name, previous in saved.items():
        if previous is _ABSENT:
            agent.__dict__.pop(name, None)
        else:
            setattr(agent, name, previous)
    for attr in (_ORIGINALS, MARKER, _BINDING, *extra):
        agent.__dict__.pop(attr, None)
    return agent

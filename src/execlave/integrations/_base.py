"""What every adapter shares, whatever the framework: the per-agent governor (check requests and
governed spans through the client's public adapter interface, one ``check_tool`` span per
requested call) and instance patching (wrappers set on the instance, remembered and undone).
No framework is named here; ``docs/adapters.md`` is the guide."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..adapter import AgentIdentity, Check
from ..client import Execlave as _Execlave
from ..policy.types import ALLOW, CheckRequest, Decision, ToolCall, ToolOutput

if TYPE_CHECKING:
    from ..client import Execlave
    from ..telemetry import GovernedSpan

MARKER = "_execlave_instrumented"
_ORIGINALS = "_execlave_originals"
_BINDING = "_execlave_binding"
_ABSENT = object()


def _not_enforced() -> Decision:
    """The check of a trace-only agent (``enforce=False``): nothing is evaluated or sent."""
    return ALLOW


def set_error(governed: GovernedSpan, description: str) -> None:
    """ERROR status on a governed span (a failed tool, a blocked call); never raises."""
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
        name = getattr(agent, "name", None)
        self.identity = AgentIdentity(
            agent_id, name if isinstance(name, str) and name else None, session_id, user_id
        )
        self.agent_id = agent_id
        self.agent_name = self.identity.display_name

    def trace_only(self) -> None:
        """Turn this governor into a trace-only one (see :attr:`enforce`)."""
        self.enforce = False
        self.identity = dataclasses.replace(self.identity, enforced=False)

    def request(
        self,
        *,
        input: str | None = None,
        tool_calls: tuple[ToolCall, ...] = (),
        tool_outputs: tuple[ToolOutput, ...] = (),
        count_request: bool = False,
    ) -> CheckRequest:
        # = exe.check_request(self.identity, ...), built directly: this runs for every check
        identity = self.identity
        return CheckRequest(
            identity.agent_id,
            input,
            tool_calls,
            tool_outputs,
            self.exe.environment,
            identity.metadata,
            count_request,
        )

    def check(self, build: Callable[[], CheckRequest]) -> Check:
        """A check of the request ``build`` makes, run inside the span (fails closed there)."""
        if not self.enforce:
            return _not_enforced
        return self.exe.prepare_check(build)

    async def acheck(self, build: Callable[[], CheckRequest]) -> Check:
        """:meth:`check` for async paths: a decision that may wait on Execlave is awaited now."""
        if not self.enforce:
            return _not_enforced
        return await self.exe.aprepare_check(build)

    def round_span(
        self, check: Check | None = None, kind: str | None = None
    ) -> AbstractContextManager[GovernedSpan]:
        return self.exe.round_span(self.identity, check=check, kind=kind)

    def execute_span(self, call: ToolCall, check: Check) -> AbstractContextManager[GovernedSpan]:
        return self.exe.tool_span(self.identity, call, check=check)

    def tool_check(self, *calls: ToolCall) -> Check:
        return self.check(lambda: self.request(tool_calls=calls))

    async def tool_acheck(self, *calls: ToolCall) -> Check:
        return await self.acheck(lambda: self.request(tool_calls=calls))

    def is_handoff(self, call: ToolCall) -> bool:
        return False

    def check_requested(self, calls: Iterable[ToolCall]) -> None:
        """A ``check_tool`` span per call a model requested; every call is checked, then one raise."""
        self.exe.check_requested(self.identity, calls, handoff=self.is_handoff)

    async def acheck_requested(self, calls: Iterable[ToolCall]) -> None:
        await self.exe.acheck_requested(self.identity, calls, handoff=self.is_handoff)


class EventKinds:
    """Classify framework events by class name (subclasses included, so a framework's own
    subclasses count), cached per class: ``EventKinds({"ToolCallRequestEvent": "request"})(event)``.
    Matching by name keeps the adapters free of framework imports at module level."""

    def __init__(self, kinds: dict[str, str]) -> None:
        self._kinds = kinds
        self.cache: dict[type, str | None] = {}
        """Classes seen so far and their kinds (read directly on hot paths; misses go through a call)."""

    def __call__(self, event: Any) -> str | None:
        cls = type(event)
        try:
            return self.cache[cls]
        except KeyError:
            kind = next((self._kinds[c.__name__] for c in cls.__mro__ if c.__name__ in self._kinds), None)
            self.cache[cls] = kind
            return kind


def require_client(exe: object, caller: str) -> None:
    """A clear TypeError when the second argument is not the Execlave client."""
    if not isinstance(exe, _Execlave):
        raise TypeError(
            f"{caller}(agent, exe, agent_id=...) needs the Execlave client as its second argument: "
            f"exe = Execlave(...) (with api_key=... and/or policies=...), created once per process; "
            f"got {type(exe).__name__}"
        )


def already_bound(agent: Any, exe: object, agent_id: str, enforce: bool, undo: str) -> bool:
    """True when ``agent`` is already instrumented with this client, agent_id and ``enforce``
    (instrumenting again is a no-op); ``ValueError`` naming both bindings (and ``undo``, the
    function that unbinds) when it is bound differently (so ``enforce=True`` after
    ``enforce=False`` is never silently ignored)."""
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
        f"{client}. Call {undo}(agent) first to rebind it, or use one binding per agent."
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

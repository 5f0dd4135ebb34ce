"""Zero-code setup: ``AutoGenInstrumentor``, an OpenTelemetry ``BaseInstrumentor``.

Registered under the ``opentelemetry_instrumentor`` entry point (name ``autogen``), so
``opentelemetry-instrument python app.py`` governs and traces AutoGen agents with no code change
(needs the ``instrumentation`` extra: ``pip install 'execlave-sdk[instrumentation]'``)::

    AutoGenInstrumentor().instrument(client=exe, agent_id=lambda agent: "ops-" + agent.name)

Agents created after ``instrument()`` (classic ``ConversableAgent`` and AgentChat
``BaseChatAgent`` subclasses) are instrumented at their first use, with
``instrument_autogen_agent`` and ``agent_id=resolver(agent)`` (default: kebab-case of the agent's
name). An agent already instrumented by hand is left as it is, so an explicit
``instrument_autogen_agent(agent, exe, agent_id=...)`` after creating the agent still wins.
``uninstrument()`` restores the classes and every agent it instrumented.

The client is ``client=`` if given, else one built from the environment (``EXECLAVE_API_KEY``,
``EXECLAVE_POLICY_FILE``, ...) with ``tracer_provider=`` / ``meter_provider=``. If that build
fails, the error is logged and every affected agent raises ``EnforcementUnavailableError`` at its
first use: governance never turns off silently.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
import weakref
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ..._ids import validate_agent_id
from ...errors import EnforcementUnavailableError
from .._base import MARKER
from .conversation import add_team_preparer, patch_team_class, remove_team_preparer, unpatch_team_class

if TYPE_CHECKING:
    from ...client import Execlave

__all__ = ["AutoGenInstrumentor"]

logger = logging.getLogger("execlave")

_CLASSIC_ENTRY = (
    "generate_reply",
    "a_generate_reply",
    "initiate_chat",
    "a_initiate_chat",
    "initiate_chats",
    "a_initiate_chats",
    "run",
    "a_run",
    "execute_function",
    "a_execute_function",
)
_AGENTCHAT_ENTRY = ("on_messages_stream", "on_messages", "run", "run_stream")
_TRAMPOLINES = "_execlave_trampolines"
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def default_agent_id(agent: Any) -> str:
    """Kebab-case of the agent's name: ``ops_assistant`` / ``OpsAssistant`` -> ``ops-assistant``."""
    name = getattr(agent, "name", None)
    words = _WORDS.findall(name) if isinstance(name, str) else []
    agent_id = "-".join(w.lower() for w in words)[:128].strip("-")
    return agent_id or "agent"


def _classic_class() -> Any:
    try:
        from autogen import ConversableAgent  # type: ignore[import-not-found,unused-ignore]
    except Exception:
        return None
    return ConversableAgent


def _agentchat_class() -> Any:
    try:
        from autogen_agentchat.agents import BaseChatAgent  # type: ignore[import-not-found,unused-ignore]
    except Exception:
        return None
    return BaseChatAgent


class AutoGenInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Govern and trace every AutoGen agent the application creates. See the module docs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._client: Execlave | None = None
        self._error: Exception | None = None
        self._resolver: Callable[[Any], str] = default_agent_id
        self._patched: list[tuple[Any, Any]] = []
        self._pending: weakref.WeakSet[Any] = weakref.WeakSet()
        self._instrumented: weakref.WeakSet[Any] = weakref.WeakSet()
        self._team_patched = False
        self._active = False

    def instrumentation_dependencies(self) -> Collection[str]:
        # Either AutoGen line will do (classic `autogen` or `autogen-agentchat`); the classes
        # present are found at instrument time, so no single package is required.
        return ()

    # -- BaseInstrumentor ------------------------------------------------------------------

    def _instrument(self, **kwargs: Any) -> None:
        resolver = kwargs.get("agent_id") or default_agent_id
        if not callable(resolver):
            raise TypeError("AutoGenInstrumentor: agent_id must be a callable agent -> agent id")
        self._resolver = resolver
        self._client = kwargs.get("client")
        self._error = None
        if self._client is None:
            try:
                from ...client import Execlave

                self._client = Execlave(
                    tracer_provider=kwargs.get("tracer_provider"), meter_provider=kwargs.get("meter_provider")
                )
            except Exception as exc:  # reported at each agent's first use, never silent
                logger.error(
                    "execlave: AutoGenInstrumentor could not create the Execlave client", exc_info=True
                )
                self._error = exc
        self._active = True
        for cls, names in ((_classic_class(), _CLASSIC_ENTRY), (_agentchat_class(), _AGENTCHAT_ENTRY)):
            if cls is not None:
                self._patch_init(cls, names)
        if _agentchat_class() is not None:
            self._team_patched = patch_team_class()
            add_team_preparer(self._prepare)

    def _uninstrument(self, **kwargs: Any) -> None:
        from . import uninstrument_autogen_agent

        self._active = False
        for cls, original in reversed(self._patched):
            cls.__init__ = original
        self._patched.clear()
        remove_team_preparer(self._prepare)
        if self._team_patched:
            unpatch_team_class()
            self._team_patched = False
        for agent in list(self._pending):
            self._drop_trampolines(agent)
        for agent in list(self._instrumented):
            uninstrument_autogen_agent(agent)
        self._pending = weakref.WeakSet()
        self._instrumented = weakref.WeakSet()

    # -- patching ----------------------------------------------------------------------------

    def _patch_init(self, cls: Any, names: tuple[str, ...]) -> None:
        original = cls.__dict__["__init__"]
        instrumentor = self

        @functools.wraps(original)
        def __init__(agent: Any, *args: Any, **kwargs: Any) -> None:
            original(agent, *args, **kwargs)
            if instrumentor._active:
                instrumentor._add_trampolines(agent, names)

        cls.__init__ = __init__
        self._patched.append((cls, original))

    def _add_trampolines(self, agent: Any, names: tuple[str, ...]) -> None:
        """Instance attributes that instrument the agent at its first use, then step aside."""
        if getattr(agent, MARKER, False) or getattr(agent, _TRAMPOLINES, None) is not None:
            return
        installed: list[str] = []
        for name in names:
            if name in getattr(agent, "__dict__", {}):
                continue  # the application set its own instance attribute: leave it alone
            cls_attr = getattr(type(agent), name, None)
            if not callable(cls_attr):
                continue
            setattr(agent, name, self._trampoline(agent, name, cls_attr))
            installed.append(name)
        agent.__dict__[_TRAMPOLINES] = installed
        self._pending.add(agent)

    def _trampoline(self, agent: Any, name: str, cls_attr: Any) -> Any:
        ref = weakref.ref(agent)
        instrumentor = self

        def target() -> Any:
            obj = ref()
            if obj is None:  # pragma: no cover - the agent is alive while its method runs
                raise ReferenceError("agent is gone")
            if instrumentor._ensure(obj):
                return getattr(obj, name)  # the instrumented wrapper (or the class method)
            return cls_attr.__get__(obj, type(obj))

        if inspect.iscoroutinefunction(cls_attr):

            @functools.wraps(cls_attr)
            async def async_trampoline(*args: Any, **kwargs: Any) -> Any:
                return await target()(*args, **kwargs)

            async_trampoline._execlave_trampoline = True  # type: ignore[attr-defined]
            return async_trampoline

        @functools.wraps(cls_attr)
        def trampoline(*args: Any, **kwargs: Any) -> Any:
            return target()(*args, **kwargs)

        trampoline._execlave_trampoline = True  # type: ignore[attr-defined]
        return trampoline

    def _ensure(self, agent: Any) -> bool:
        """Instrument ``agent`` now if it is not yet; True when the caller should look the method
        up again (it was just instrumented and its trampolines dropped)."""
        if getattr(agent, MARKER, False) or not self._active:
            return False
        with self._lock:
            if getattr(agent, MARKER, False):
                return False
            if self._error is not None or self._client is None:
                raise EnforcementUnavailableError(
                    "execlave's AutoGenInstrumentor could not create its Execlave client "
                    f"({type(self._error).__name__}: {self._error}); check EXECLAVE_* settings"
                ) from self._error
            from . import instrument_autogen_agent

            # A bad id raises here, with the trampolines still in place: every later call retries
            # (and raises again) instead of running ungoverned.
            agent_id = validate_agent_id(self._resolver(agent))
            names = list(agent.__dict__.get(_TRAMPOLINES) or ())
            self._drop_trampolines(agent)
            try:
                instrument_autogen_agent(agent, self._client, agent_id=agent_id)
            except BaseException:
                self._add_trampolines(agent, tuple(names))
                raise
            self._instrumented.add(agent)
            return True

    def _prepare(self, agent: Any) -> None:
        """A team is about to run: instrument its pending participants first (their conversation
        root needs them instrumented)."""
        if agent in self._pending:
            self._ensure(agent)

    @staticmethod
    def _drop_trampolines(agent: Any) -> None:
        # Only trampolines still in place: an agent instrumented by hand holds its own wrappers
        # under the same names, and those stay.
        installed = agent.__dict__.pop(_TRAMPOLINES, None)
        for name in installed or ():
            if getattr(agent.__dict__.get(name), "_execlave_trampoline", False):
                agent.__dict__.pop(name, None)

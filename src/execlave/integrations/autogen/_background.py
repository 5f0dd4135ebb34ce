"""Classic AG2 ``run`` / ``a_run``: one conversation across the background thread or task.

``ConversableAgent.run`` starts its chat in a ``threading.Thread`` and ``a_run`` in an
``asyncio`` task, then returns at once. A thread does not inherit the caller's context, so the
chat would lose the application's span, and the single-agent form (no recipient: a temporary
executor starts the chat) would have no conversation root at all.

:func:`run_in_scope` calls the original ``run`` / ``a_run`` with a :class:`ConversationScope`
current and offers it, through a context variable, to the first thread or task that call
starts. :func:`install` makes the ``threading`` / ``asyncio`` names of AG2's
``conversable_agent`` module start threads that run in a copy of the caller's context (as
``asyncio`` tasks always do) and let that thread or task claim the scope: the root then ends
when the background chat ends. Nothing else changes for AG2: with no scope on offer a thread only
gains the caller's context, a task is created exactly as before. AutoGen is never imported here.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import types
from collections.abc import Awaitable, Callable
from typing import Any

from ...telemetry.conversation import ConversationScope

__all__ = ["arun_in_scope", "install", "run_in_scope", "uninstall"]

logger = logging.getLogger("execlave")

_SAVED = "_execlave_background_saved"


class _Offer:
    """A conversation scope waiting for the background thread or task of one ``run`` call."""

    __slots__ = ("claimed", "scope")

    def __init__(self, scope: ConversationScope) -> None:
        self.scope = scope
        self.claimed = False

    def claim(self) -> ConversationScope | None:
        if self.claimed:
            return None
        self.claimed = True
        return self.scope


_OFFER: contextvars.ContextVar[_Offer | None] = contextvars.ContextVar("execlave_run_offer", default=None)


def _claim() -> ConversationScope | None:
    offer = _OFFER.get()
    return None if offer is None else offer.claim()


def _end(scope: ConversationScope | None, exc: BaseException | None = None) -> None:
    if scope is not None:
        scope.end(exc)


class _ContextThread(threading.Thread):
    """A thread that runs in a copy of its creator's context and owns the offered scope, if any."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._execlave_context = contextvars.copy_context()
        self._execlave_scope = _claim()

    def run(self) -> None:
        scope = self._execlave_scope
        try:
            self._execlave_context.run(super().run)
        except BaseException as exc:
            _end(scope, exc)
            raise
        _end(scope)


def _create_task(asyncio_module: Any) -> Callable[..., Any]:
    def create_task(coro: Any, *args: Any, **kwargs: Any) -> Any:
        scope = _claim()
        task = asyncio_module.create_task(coro, *args, **kwargs)
        if scope is not None:

            def done(finished: Any) -> None:
                exc = None if finished.cancelled() else finished.exception()
                _end(scope, exc)

            task.add_done_callback(done)
        return task

    return create_task


def _proxy(module: types.ModuleType, **overrides: Any) -> types.ModuleType:
    proxy = types.ModuleType(module.__name__)
    proxy.__dict__.update(module.__dict__)
    proxy.__dict__.update(overrides)
    return proxy


def install(module: Any) -> None:
    """Route ``module``'s ``threading.Thread`` / ``asyncio.create_task`` through the above; once."""
    if module is None or _SAVED in vars(module):
        return
    saved: dict[str, Any] = {}
    current = vars(module)
    threading_module = current.get("threading")
    if isinstance(threading_module, types.ModuleType):
        saved["threading"] = threading_module
        module.threading = _proxy(threading_module, Thread=_ContextThread)
    asyncio_module = current.get("asyncio")
    if isinstance(asyncio_module, types.ModuleType):
        saved["asyncio"] = asyncio_module
        module.asyncio = _proxy(asyncio_module, create_task=_create_task(asyncio_module))
    setattr(module, _SAVED, saved)


def uninstall(module: Any) -> None:
    saved = vars(module).get(_SAVED) if module is not None else None
    if not isinstance(saved, dict):
        return
    for name, original in saved.items():
        setattr(module, name, original)
    delattr(module, _SAVED)


def run_in_scope(scope: ConversationScope, call: Callable[[], Any]) -> Any:
    """``call()`` (the original ``run`` / ``a_run`` up to its return) with ``scope`` current and on
    offer; if no thread or task claimed it, the scope ends here."""
    offer = _Offer(scope)
    token = _OFFER.set(offer)
    try:
        with scope:
            result = call()
    except BaseException as exc:
        if offer.claim() is not None:
            scope.end(exc)
        raise
    finally:
        _OFFER.reset(token)
    if offer.claim() is not None:
        scope.end()
    return result


async def arun_in_scope(scope: ConversationScope, call: Callable[[], Awaitable[Any]]) -> Any:
    """:func:`run_in_scope` for ``a_run``: the task it creates claims ``scope``."""
    offer = _Offer(scope)
    token = _OFFER.set(offer)
    try:
        with scope:
            result = await call()
    except BaseException as exc:
        if offer.claim() is not None:
            scope.end(exc)
        raise
    finally:
        _OFFER.reset(token)
    if offer.claim() is not None:
        scope.end()
    return result

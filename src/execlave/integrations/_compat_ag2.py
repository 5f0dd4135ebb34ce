"""Every private of AG2 1.x the AG2 adapter touches, in one place. ``tests/ag2_v1/test_compat_ag2.py``
checks each against the installed release, so a release that moves one fails there, naming it.

Tested against: ag2 1.0.0 and 1.2.1 (the nox ``ag2`` lines).
"""

from __future__ import annotations

from typing import Any

MIDDLEWARE = "_middleware"  # Agent: its list of Middleware factories
FACTORY_CLASS = "_cls"  # Middleware(cls, **options): the class
FACTORY_OPTIONS = "_options"  # and the options


def middleware_list(agent: Any) -> list[Any] | None:
    """The agent's registered middleware factories (the live list), or None when it has none."""
    found = getattr(agent, MIDDLEWARE, None)
    return found if isinstance(found, list) else None


def factory_parts(factory: Any) -> tuple[Any, Any]:
    """``(class, options)`` of one ``Middleware(cls, **options)`` factory (None where absent)."""
    return getattr(factory, FACTORY_CLASS, None), getattr(factory, FACTORY_OPTIONS, None)

"""Import a framework the adapter tests need, or skip — unless the nox session says it is required.

Each nox session installs one AutoGen line and sets ``EXECLAVE_REQUIRE`` to the modules it put
there (comma-separated, e.g. ``autogen``, ``autogen_agentchat`` or ``ag2``). A required module that
does not import, or imports as another line than the one its tests are for, is then an error, not
a skip, so a session can never pass with its adapter's tests silently skipped. Elsewhere the tests
of other lines skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

# What a module must offer to be the line its tests are written for (AG2 0.x and 1.x are one
# distribution, ``ag2``, with different top-level modules).
_LINE = {
    "autogen": ("ConversableAgent", "the classic AutoGen line (pyautogen 0.2.x or ag2 < 1.0)"),
    "ag2": ("Middleware", "AG2 1.x (ag2 >= 1.0, ag2.Agent with middleware)"),
}


def require(module: str) -> ModuleType:
    required = {m.strip() for m in os.environ.get("EXECLAVE_REQUIRE", "").split(",") if m.strip()}
    found = importlib.import_module(module) if module in required else pytest.importorskip(module)
    attribute, line = _LINE.get(module, (None, ""))
    if attribute is not None and not hasattr(found, attribute):
        message = f"{module!r} imports but is not {line}: it has no {attribute}"
        if module in required:
            raise ImportError(message)
        pytest.skip(message, allow_module_level=True)
    return found

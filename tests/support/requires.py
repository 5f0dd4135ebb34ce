"""Import a framework the adapter tests need, or skip — unless the nox session says it is required.

Each nox session installs one AutoGen line and sets ``EXECLAVE_REQUIRE`` to the modules it put
there (comma-separated, e.g. ``autogen`` or ``autogen_agentchat``). A required module that does
not import is then an error, not a skip, so a session can never pass with its adapter's tests
silently skipped.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    required = {m.strip() for m in os.environ.get("EXECLAVE_REQUIRE", "").split(",") if m.strip()}
    if module in required:
        return importlib.import_module(module)
    return pytest.importorskip(module)

"""Fixtures for the AG2 1.x adapter: real ``ag2.Agent``s driven by ``ag2.testing.TestConfig``
(offline scripted model turns); ``provider`` / ``exporter`` come from tests/conftest.py.

``ag2`` 1.x is imported lazily: the other environments collect this directory too and the test
modules skip there (see ``require_ag2``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from support.policies import INJECTION_BLOCK, TOOL_DENY
from support.requires import require


def require_ag2() -> ModuleType:
    """Skip when AG2 1.x is absent (an error in the AG2 1.x nox sessions)."""
    return require("ag2")


@pytest.fixture
def exe(provider: TracerProvider) -> Iterator[Execlave]:
    client = Execlave(policies=[TOOL_DENY, INJECTION_BLOCK], tracer_provider=provider)
    yield client
    client.shutdown(timeout=1.0)


def call(name: str, call_id: str | None = None, **arguments: Any) -> Any:
    """A scripted model turn requesting one tool."""
    from ag2.events import ToolCallEvent

    extra = {"id": call_id} if call_id else {}
    return ToolCallEvent(name, arguments=json.dumps(arguments), **extra)


def calls(*items: tuple[str, str]) -> list[Any]:
    """A scripted model turn requesting several tools at once: (name, JSON arguments) each."""
    from ag2.events import ToolCallEvent

    return [ToolCallEvent(name, arguments=arguments) for name, arguments in items]


class Model:
    """A ``TestConfig`` that also records every event list the model was handed."""

    def __init__(self, *turns: Any) -> None:
        from ag2.testing import TestConfig

        self.config = _recording_config(TestConfig, self)(*turns)
        self.seen: list[list[Any]] = []

    @property
    def calls(self) -> int:
        return len(self.seen)

    def texts(self) -> list[str]:
        """Every text the model was shown (user input and tool results), all calls."""
        out: list[str] = []
        for events in self.seen:
            for event in events:
                for part in getattr(event, "parts", None) or ():
                    out.append(str(getattr(part, "content", "")))
                for result in getattr(event, "results", None) or ():
                    for part in getattr(getattr(result, "result", None), "parts", None) or ():
                        out.append(str(getattr(part, "content", "")))
        return out


def _recording_config(base: type, model: Model) -> type:
    class RecordingConfig(base):  # type: ignore[misc, valid-type]
        __test__ = False

        def create(self) -> Any:
            inner = super().create()

            async def client(messages: Any, context: Any, **kwargs: Any) -> Any:
                model.seen.append(list(messages))
                return await inner(messages, context, **kwargs)

            return client

    return RecordingConfig


class Tools:
    """Real AG2 tools that record that they ran."""

    def __init__(self, output: str = "ok") -> None:
        self.ran: list[str] = []
        self.output = output

    def make(self, name: str) -> Any:
        from ag2 import tool

        def run(host: str = "") -> str:
            self.ran.append(name)
            return self.output

        return tool(run, name=name, description=f"The {name} tool.")

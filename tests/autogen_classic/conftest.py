"""Fixtures for the classic AutoGen adapter: real ConversableAgents (llm_config=False) driven by
scripted reply functions; ``provider`` / ``exporter`` come from tests/conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from execlave.policy import baseline_policies, load_policies
from support.policies import INJECTION_BLOCK, TOOL_DENY


@pytest.fixture
def make_exe(provider: TracerProvider) -> Iterator[Callable[..., Execlave]]:
    created: list[Execlave] = []

    def make(policies: list[dict[str, Any]] | None = None, **kwargs: Any) -> Execlave:
        loaded = [*baseline_policies(), *load_policies(policies or [TOOL_DENY, INJECTION_BLOCK])]
        exe = Execlave(policies=loaded, tracer_provider=provider, **kwargs)
        created.append(exe)
        return exe

    yield make
    for exe in created:
        exe.shutdown(timeout=1.0)


@pytest.fixture
def exe(make_exe: Callable[..., Execlave]) -> Execlave:
    return make_exe()


def tool_call(name: str, arguments: Any, call_id: str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


class Script:
    """A scripted model: returns its replies in order and records every messages list it saw."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.seen: list[list[dict[str, Any]]] = []
        self.__name__ = "scripted_reply"

    def __call__(self, recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
        self.seen.append([dict(m) for m in (messages or [])])
        reply = self.replies.pop(0) if self.replies else "TERMINATE"
        return True, reply

    @property
    def calls(self) -> int:
        return len(self.seen)

"""Fixtures for the AgentChat adapter: real ``AssistantAgent``s driven by autogen-ext's offline
``ReplayChatCompletionClient`` (no key, no network); ``provider`` / ``exporter`` come from tests/conftest.py.

autogen_agentchat is imported lazily: the classic environments collect this directory too and
the test modules skip there (see ``require_agentchat``)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from execlave import Execlave
from support.policies import INJECTION_BLOCK, TOOL_DENY
from support.requires import require


def require_agentchat() -> ModuleType:
    """Skip when autogen-agentchat is absent (an error in the AgentChat nox sessions)."""
    return require("autogen_agentchat")


@pytest.fixture
def exe(provider: TracerProvider) -> Iterator[Execlave]:
    client = Execlave(policies=[TOOL_DENY, INJECTION_BLOCK], tracer_provider=provider)
    yield client
    client.shutdown(timeout=1.0)


def replay_client(responses: list[Any]) -> Any:
    """A ReplayChatCompletionClient that declares function calling (0.4.x has no model_info arg)."""
    from autogen_ext.models.replay import ReplayChatCompletionClient

    info = {
        "vision": False,
        "function_calling": True,
        "json_output": False,
        "family": "unknown",
        "structured_output": False,
    }
    try:
        return ReplayChatCompletionClient(responses, model_info=info)  # type: ignore[call-arg]
    except TypeError:
        client = ReplayChatCompletionClient(responses)
        client._model_info = info  # autogen-ext 0.4.x: fixed model_info without function calling
        return client


def tool_calls(*calls: tuple[str, str, str]) -> Any:
    """A model result requesting tools: (call id, name, JSON arguments) each."""
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, RequestUsage

    return CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id=i, name=n, arguments=a) for i, n, a in calls],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )


@pytest.fixture(autouse=True)
def _quiet_replay_warnings() -> Iterator[None]:
    """autogen-ext 0.4.2's replay client logs a warning with mismatched %-args on tool-call
    history; pytest's log capture turns that formatting error into a failure."""
    import logging

    events = logging.getLogger("autogen_core.events")
    previous = events.level
    events.setLevel(logging.ERROR)
    yield
    events.setLevel(previous)

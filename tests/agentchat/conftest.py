"""Fixtures for the AgentChat adapter: real ``AssistantAgent``s driven by autogen-ext's offline
``ReplayChatCompletionClient`` (no key, no network), an SDK TracerProvider with an in-memory exporter.

autogen_agentchat is imported lazily: the classic environments collect this directory too and
the test modules skip there (see ``require_agentchat``)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from support.requires import require

TOOL_DENY = {
    "id": "deny-destructive",
    "name": "No destructive tools",
    "policyType": "tool_invocation",
    "enforcementMode": "block",
    "ruleDefinition": {"deny": ["delete_*", "drop_*"]},
}
INJECTION_BLOCK = {
    "id": "block-injection",
    "name": "Block injection",
    "policyType": "injection_scan",
    "enforcementMode": "block",
    "ruleDefinition": {
        "scan_input": True,
        "scan_output": True,
        "patterns": ["ignore previous instructions", "rm -rf /"],
    },
}


def require_agentchat() -> ModuleType:
    """Skip when autogen-agentchat is absent (an error in the AgentChat nox sessions)."""
    return require("autogen_agentchat")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


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


def spans_named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


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

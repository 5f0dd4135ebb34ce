"""Fixtures for the classic AutoGen adapter: real ConversableAgents (llm_config=False) driven by
scripted reply functions, an SDK TracerProvider with an in-memory exporter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave import Execlave
from execlave.policy import baseline_policies, load_policies

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


def spans_named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


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

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from execlave.policy.types import Decision
from execlave.telemetry import Telemetry, TelemetryConfig


def block(policy_id: str = "deny-shell", mode: str = "block", **extra: Any) -> dict[str, Any]:
    return {
        "policyId": policy_id,
        "policyName": policy_id.replace("-", " "),
        "policyType": "tool_invocation",
        "enforcementMode": mode,
        "severity": "high",
        "message": f"{policy_id} violated",
        "target": "tool_call",
        "toolName": "shell",
        **extra,
    }


def decision(outcome: str, *violations: dict[str, Any]) -> Decision:
    return Decision(outcome, tuple(violations), 3, tuple(v["policyId"] for v in violations))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _isolated_otel_env(clean_otel_env: None) -> None:
    """Every telemetry test runs without the machine's OTel variables (tests/conftest.py)."""


@pytest.fixture
def set_global(no_global_provider: None) -> Callable[[Any], None]:
    return trace.set_tracer_provider


@pytest.fixture
def memory() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def make_telemetry() -> Iterator[Callable[..., Telemetry]]:
    made: list[Telemetry] = []

    def make(
        masker: Callable[[str], str] = lambda s: s.replace("alice@example.com", "[EMAIL]"), **kw: Any
    ) -> Telemetry:
        tel = Telemetry(TelemetryConfig(**kw), masker=masker)
        made.append(tel)
        return tel

    yield make
    for tel in made:
        tel.shutdown(1.0)

"""Our spans nest with autogen-core's own ``invoke_agent`` / ``execute_tool`` spans (0.7.x emits
them on the global provider). Runs in a subprocess: it sets the global tracer provider."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import require_agentchat

require_agentchat()

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, {tests!r})
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from agentchat.conftest import replay_client, tool_calls
    from autogen_agentchat.agents import AssistantAgent
    from execlave import Execlave
    from execlave.integrations.autogen import instrument_autogen_agent
    from execlave.policy import NO_POLICIES

    async def get_status(service: str) -> str:
        "Return a service's status."
        return "ok"

    exe = Execlave(policies=NO_POLICIES, tracer_provider=provider)
    client = replay_client([tool_calls(("c1", "get_status", '{{"service": "db"}}')), "fine"])
    agent = AssistantAgent("ops", model_client=client, tools=[get_status], reflect_on_tool_use=True)
    instrument_autogen_agent(agent, exe, agent_id="ops")
    asyncio.run(agent.run(task="status?"))
    spans = exporter.get_finished_spans()
    by_id = {{s.context.span_id: s for s in spans}}
    rows = []
    for s in spans:
        parent = by_id.get(s.parent.span_id) if s.parent else None
        rows.append([s.name, s.instrumentation_scope.name,
                     parent.name if parent else None, parent.instrumentation_scope.name if parent else None])
    print(json.dumps(rows))
    """
)


def test_spans_nest_with_autogen_core() -> None:
    code = SCRIPT.format(tests=str(ROOT / "tests"))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = [r for r in rows if r[1] == "execlave"]
    assert ["check_tool get_status", "execlave", "invoke_agent ops", "execlave"] in ours
    core_tools = [r for r in rows if r[1] == "autogen-core" and r[0].startswith("execute_tool")]
    for row in core_tools:  # autogen-core's tool execution runs inside our round span
        assert row[2:] == ["invoke_agent ops", "execlave"]
    core_agent = [r for r in rows if r[1] == "autogen-core" and r[0] == "invoke_agent ops"]
    if core_agent:  # 0.7.x: run() opens its own invoke_agent span around ours
        (round_row,) = [r for r in ours if r[0] == "invoke_agent ops"]
        assert round_row[2:] == ["invoke_agent ops", "autogen-core"]
